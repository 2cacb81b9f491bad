package packerplugin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/bake/runas"
	"github.com/imago/imago/internal/image"
)

// With a bake user (IMAGO_BAKE_USER=nobody) the provision commands run as nobody,
// with no supplementary group, in a staging directory nobody owns; the image
// holds what they wrote and the staging directory is gone afterwards. A worker
// that is not root cannot, and refuses before staging anything.
func TestBuildAsRunsProvisioningAsTheBakeUser(t *testing.T) {
	nobody, err := runas.Parse("nobody")
	require.NoError(t, err)
	app := helloApp(t)
	out := filepath.Join(t.TempDir(), "out")
	cfg := map[string]any{
		"service": "hello", "source_dir": app, "entrypoint": []string{"./hello"}, "output_dir": out,
		"provision": []string{
			"echo \"provisioning as $(id -u):$(id -g) groups $(id -G)\"",
			"id -u > uid.txt && mkdir -p bin && echo nobody > bin/greeting",
		},
	}
	var shown lines
	a, err := BuildAs(t.Context(), cfg, NewLineUi(shown.add), nobody)
	if os.Geteuid() != 0 {
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "err = %v", err)
		assert.ErrorContains(t, err, "IMAGO_BAKE_USER=nobody (uid 65534, gid 65534): this worker runs as uid "+strconv.Itoa(os.Geteuid())+
			" and cannot run bakes as another user; run imago-worker as root, or unset IMAGO_BAKE_USER")
		assert.NotContains(t, shown.text(), "Staging in", "nothing is staged")
		return
	}
	require.NoError(t, err, shown.text())
	uid, gid := strconv.Itoa(int(nobody.UID)), strconv.Itoa(int(nobody.GID))
	assert.Contains(t, shown.text(), "provisioning as "+uid+":"+gid+" groups "+gid)

	data, err := a.ReadArchive()
	require.NoError(t, err)
	unpacked := filepath.Join(t.TempDir(), "img")
	require.NoError(t, image.Unpack(bytes.NewReader(data), unpacked, image.Digest(data), image.Limits{}))
	assert.Equal(t, uid+"\n", mustRead(t, filepath.Join(unpacked, "uid.txt")))

	staged := regexp.MustCompile(`Staging in (\S+)`).FindStringSubmatch(shown.text())
	require.NotNil(t, staged, shown.text())
	_, err = os.Stat(staged[1])
	assert.True(t, errors.Is(err, os.ErrNotExist), "the staging directory %s is removed: %v", staged[1], err)
}
