package runas

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	u, err := Parse("")
	require.NoError(t, err)
	assert.Nil(t, u, "unset: bakes run as the worker")

	nobody, err := user.Lookup("nobody")
	require.NoError(t, err, "the test needs the nobody user")
	for _, s := range []string{"nobody", nobody.Uid, "nobody:" + nobody.Gid, nobody.Uid + ":" + nobody.Gid} {
		u, err := Parse(s)
		require.NoError(t, err, s)
		assert.Equal(t, nobody.Uid, itoa(u.UID), s)
		assert.Equal(t, nobody.Gid, itoa(u.GID), s)
		assert.Equal(t, s, u.Spec)
	}
	u, err = Parse("4242:4243")
	require.NoError(t, err)
	assert.Equal(t, &User{Spec: "4242:4243", UID: 4242, GID: 4243}, u, "a uid without a user works with its group named")

	for s, want := range map[string]string{
		"root":                       "IMAGO_BAKE_USER=root: bakes must not run as root (uid and gid 0); name an unprivileged user such as nobody",
		"0":                          "IMAGO_BAKE_USER=0: bakes must not run as root (uid and gid 0); name an unprivileged user such as nobody",
		"nobody:0":                   "IMAGO_BAKE_USER=nobody:0: bakes must not run as root (uid and gid 0); name an unprivileged user such as nobody",
		"no-such-user-imago":         "IMAGO_BAKE_USER=no-such-user-imago: user: unknown user no-such-user-imago",
		"nobody:no-such-group-imago": "IMAGO_BAKE_USER=nobody:no-such-group-imago: group: unknown group no-such-group-imago",
		"4242":                       "IMAGO_BAKE_USER=4242: uid 4242 is not in the user database; name its group too, e.g. 4242:4242",
	} {
		_, err := Parse(s)
		assert.EqualError(t, err, want, s)
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// A worker that is not root cannot run bakes as another user, and says what to
// do; root can, and so can the user itself.
func TestCheckRefusesAWorkerThatCannotSwitchUsers(t *testing.T) {
	u := &User{Spec: "nobody", UID: 65534, GID: 65534}
	assert.EqualError(t, u.check(1000, 1000), "IMAGO_BAKE_USER=nobody (uid 65534, gid 65534): this worker runs as uid 1000 and cannot run bakes as another user; run imago-worker as root, or unset IMAGO_BAKE_USER")
	assert.NoError(t, u.check(0, 0))
	assert.NoError(t, u.check(65534, 65534))
	var none *User
	assert.NoError(t, none.check(1000, 1000))
}

// Run as nobody, a command has nobody's uid and gid and no supplementary group,
// writes where Own gave it, and what it leaves running dies with it, even
// outside its session. Without root the same command is refused, saying why.
func TestApplyRunsTheCommandAsTheUser(t *testing.T) {
	u, err := Parse("nobody")
	require.NoError(t, err)
	dir := t.TempDir()
	// The stray process records its pid as this test sees it (/proc is the
	// host's), and the command ends only once it did.
	cmd := exec.Command("/bin/sh", "-c", `echo "$(id -u) $(id -g) $(id -G)"; echo written > given
setsid sh -c 'cut -d" " -f4 /proc/self/stat > stray.tmp && mv stray.tmp stray && exec sleep 3600' < /dev/null > /dev/null 2>&1 &
i=0; while [ ! -s stray ] && [ $i -lt 1000000 ]; do i=$((i+1)); done`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = u.Apply(cmd)
	if os.Geteuid() != 0 {
		assert.ErrorContains(t, err, "cannot run bakes as another user; run imago-worker as root, or unset IMAGO_BAKE_USER")
		return
	}
	require.NoError(t, err)
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755)) // nobody must reach dir
	require.NoError(t, os.WriteFile(filepath.Join(dir, "given"), nil, 0o600))
	require.NoError(t, u.Own(dir))

	cmd.Dir = dir
	out, err := cmd.Output()
	require.NoError(t, err)
	want := itoa(u.UID) + " " + itoa(u.GID) + " " + itoa(u.GID) + "\n"
	assert.Equal(t, want, string(out))
	got, err := os.ReadFile(filepath.Join(dir, "given"))
	require.NoError(t, err)
	assert.Equal(t, "written\n", string(got))
	stray, err := os.ReadFile(filepath.Join(dir, "stray"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(stray)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // only if it outlived the command
	assert.Eventually(t, func() bool { return gone(pid) }, 5*time.Second, 20*time.Millisecond,
		"process %d, left running by the command in a session of its own, must end with the command's PID namespace", pid)
}

// gone reports whether process pid no longer runs (a zombie counts as gone).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(stat), ") Z ")
}
