package readme

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomarkdown/markdown"
	"github.com/gomarkdown/markdown/ast"
	"github.com/gomarkdown/markdown/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/bench"
	"github.com/imago/imago/internal/provider/local"
)

// The README's quick start (make run) and "Try it" block, taken from README.md as
// text and run line by line with bash, as a user types them into two shells; then
// make demo beside that running worker. The commands use the default ports
// (Temporal 7233, UI 8233, codec 8234, metrics 9464, router 9080), so the user runs
// in a network namespace of its own: nothing on the machine can collide with it,
// a `make run` of the machine's own included.
func TestREADMECommandsRunAsWritten(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	quick := shBlock(t, src, "Quick start")
	try := shBlock(t, src, "Try it")
	var makeRun []string
	for _, l := range commands(quick) {
		if strings.HasPrefix(l, "make run") {
			makeRun = append(makeRun, l)
		}
	}
	require.Len(t, makeRun, 1, "the quick start has one `make run` line:\n%s", quick)
	tryIt := commands(try)
	require.NotEmpty(t, tryIt)

	// The Try it block builds into the checkout's build/ (gitignored), as it
	// does for a user; what the test made there goes again.
	if _, err := os.Stat(filepath.Join(root, "build")); os.IsNotExist(err) {
		t.Cleanup(func() { os.RemoveAll(filepath.Join(root, "build")) })
	}

	u := newNewcomer(t, root)
	u.start(t, makeRun[0])

	t.Run("quick start and Try it", func(t *testing.T) {
		var img string
		for _, line := range tryIt {
			// img-… in a command (not in its comment) is the ID the import printed.
			if cmd, comment := splitComment(line); strings.Contains(cmd, "img-…") {
				require.NotEmpty(t, img, "%q needs the image ID an earlier line printed", line)
				line = strings.ReplaceAll(cmd, "img-…", img) + comment
			}
			out := u.run(t, line)
			switch {
			case strings.HasPrefix(line, "bin/imago image import"):
				img = strings.TrimSpace(out)
				require.Regexp(t, `^img-[0-9a-f]{12}$`, img, "image import prints the image's ID")
			case strings.HasPrefix(line, "bin/imago rollout start"):
				assert.Contains(t, out, "rollout succeeded: "+img+" serves")
			case strings.HasPrefix(line, "curl"):
				assert.Equal(t, "hello from v1\n", out)
			}
		}
		assert.NotEmpty(t, img, "the Try it block imports an image")
	})

	t.Run("make demo beside a running worker", func(t *testing.T) {
		out := u.run(t, "make demo")
		assert.Regexp(t, `(?m)^hello from v2$`, out, "the router answers the baked v2")
		assert.NotContains(t, out, "starting imago-worker", "the running worker is used")
		assert.NotContains(t, out, "make stop", "this demo started no worker to stop")
	})
}

// shBlock is the first ```sh block of the README section whose heading is title.
func shBlock(t *testing.T, src []byte, title string) string {
	t.Helper()
	doc := markdown.Parse(src, parser.NewWithExtensions(parser.CommonExtensions))
	level := 0
	for _, n := range doc.GetChildren() {
		if h, ok := n.(*ast.Heading); ok {
			if level > 0 && h.Level <= level {
				break // the next section
			}
			if headingText(h) == title {
				level = h.Level
			}
			continue
		}
		if c, ok := n.(*ast.CodeBlock); ok && level > 0 && string(c.Info) == "sh" {
			return string(c.Literal)
		}
	}
	require.FailNow(t, "README.md has no ```sh block under the heading "+title)
	return ""
}

// splitComment splits a command line before its trailing comment (blank, #, blank).
func splitComment(line string) (cmd, comment string) {
	if loc := trailingComment.FindStringIndex(line); loc != nil {
		return line[:loc[0]], line[loc[0]:]
	}
	return line, ""
}

var trailingComment = regexp.MustCompile(`\s#(\s|$)`)

func headingText(h *ast.Heading) string {
	var b strings.Builder
	ast.WalkFunc(h, func(n ast.Node, entering bool) ast.WalkStatus {
		if l := n.AsLeaf(); entering && l != nil {
			b.Write(l.Literal)
		}
		return ast.GoToNext
	})
	return b.String()
}

// commands are a block's lines that are not empty or only a comment.
func commands(block string) []string {
	var out []string
	for _, l := range strings.Split(block, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// newcomer is a new user of a fresh checkout: a new HOME, a clean environment (no
// GOTOOLCHAIN, no IMAGO_*), and a network namespace of its own.
type newcomer struct {
	root, home string
	env        []string
	nsenter    []string // the prefix that runs a command in the user's network namespace
	runLog     string   // make run's output
}

func newNewcomer(t *testing.T, root string) *newcomer {
	u := &newcomer{root: root, home: t.TempDir()}
	u.env = cleanEnv(t, u.home)
	u.nsenter = netns(t)
	t.Cleanup(func() {
		// Instances and routers are detached (as VMs outlive their orchestrator):
		// they are found by their IMAGO_HOME marker.
		if err := local.KillAll(filepath.Join(u.home, ".imago")); err != nil {
			t.Errorf("stop the instances and routers: %v", err)
		}
	})
	return u
}

// cleanEnv is the environment of a login shell on a fresh machine, plus the
// machine's Go caches (GOCACHE, GOMODCACHE) and GOFLAGS so nothing is rebuilt or
// downloaded. PATH is the test's, without the toolchain go test puts first: a
// bare go is the machine's own.
func cleanEnv(t *testing.T, home string) []string {
	out, err := exec.Command("go", "env", "-json", "GOCACHE", "GOMODCACHE", "GOFLAGS").Output()
	require.NoError(t, err)
	var goenv map[string]string
	require.NoError(t, json.Unmarshal(out, &goenv))
	path := filepath.SplitList(os.Getenv("PATH"))
	if goroot := os.Getenv("GOROOT"); len(path) > 0 && goroot != "" && path[0] == filepath.Join(goroot, "bin") {
		path = path[1:]
	}
	me, err := user.Current()
	require.NoError(t, err)
	env := []string{"HOME=" + home, "PATH=" + strings.Join(path, string(filepath.ListSeparator)),
		"USER=" + me.Username, "LOGNAME=" + me.Username, "SHELL=/bin/bash"}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOFLAGS"} {
		if goenv[k] != "" {
			env = append(env, k+"="+goenv[k])
		}
	}
	return env
}

// netns makes a network namespace with loopback up, held by a sleeping process
// the cleanup kills, and returns the nsenter prefix that runs commands in it.
// As root it is a plain network namespace; otherwise a user namespace owns it.
func netns(t *testing.T) []string {
	unshare := []string{"unshare", "--net"}
	enter := []string{"nsenter", "--net"}
	if os.Geteuid() != 0 {
		unshare = append(unshare, "--map-root-user")
		enter = append(enter, "--user", "--preserve-credentials")
	}
	holder := exec.Command(unshare[0], append(unshare[1:], "sleep", "infinity")...)
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, holder.Start())
	t.Cleanup(func() {
		syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
		holder.Wait()
	})
	self, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = bench.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid))
		return err == nil && ns != self, nil
	})
	require.NoError(t, err, "%s made no network namespace (it needs root or unprivileged user namespaces)", strings.Join(unshare, " "))
	prefix := append(enter, "--target", fmt.Sprint(holder.Process.Pid), "--")
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "/usr/sbin/ip"
	}
	up := exec.Command(prefix[0], append(prefix[1:], ip, "link", "set", "lo", "up")...)
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up in the namespace: %v\n%s", err, out)
	}
	return prefix
}

func (u *newcomer) command(line string) *exec.Cmd {
	cmd := exec.Command(u.nsenter[0], append(u.nsenter[1:], "bash", "-c", line)...)
	cmd.Dir, cmd.Env = u.root, u.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own process group, stopped as one
	return cmd
}

// start runs line (make run) in the background, as in a first terminal, and
// returns when it says what a user waits for: the worker polls.
func (u *newcomer) start(t *testing.T, line string) {
	u.runLog = filepath.Join(t.TempDir(), "make-run.log")
	log, err := os.Create(u.runLog)
	require.NoError(t, err)
	defer log.Close()
	cmd := u.command(line)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // Ctrl-C's signal to the whole job
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(u.runLog)
			t.Logf("%s:\n%s", line, tail(b, 40))
		}
	})

	// Polling: it may build bin/ first, and the embedded server takes seconds.
	want := "imago: worker polling task queue"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err = bench.Poll(ctx, 200*time.Millisecond, func() (bool, error) {
		b, _ := os.ReadFile(u.runLog)
		if bytes.Contains(b, []byte(want)) {
			return true, nil
		}
		select {
		case <-exited:
			return false, fmt.Errorf("%s exited before its worker polled:\n%s", line, tail(b, 40))
		default:
			return false, nil
		}
	})
	require.NoError(t, err, "waiting for %q", want)
	b, _ := os.ReadFile(u.runLog)
	require.Contains(t, string(b), "(IMAGO_HOME="+filepath.Join(u.home, ".imago")+")",
		"make run keeps its state in the default home, ~/.imago, as bin/imago in another shell does")
}

// run runs line to its end, as typed in a second terminal, and returns what it
// printed on stdout; it must succeed.
func (u *newcomer) run(t *testing.T, line string) string {
	t.Helper()
	cmd := u.command(line)
	var stdout, out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, &out), &out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = fmt.Errorf("still running after 10 minutes: %w", <-done)
	}
	require.NoError(t, err, "$ %s\n%s", line, out.String())
	t.Logf("$ %s\n%s", line, out.String())
	return stdout.String()
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
