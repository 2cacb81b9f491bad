package bake

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/bake/runas"
)

// workerSecrets are fake secrets in the environment of the process running
// packer, as a worker's would be.
var workerSecrets = map[string]string{
	"IMAGO_API_TOKENS":               "tok-imago-api-0123",
	"IMAGO_SECRETS_URL":              "hashivault://imago-key",
	"TEMPORAL_API_KEY":               "tok-temporal-4567",
	"AWS_SECRET_ACCESS_KEY":          "aws-secret-89ab",
	"GOOGLE_APPLICATION_CREDENTIALS": "/etc/imago/gcp.json",
	"VAULT_TOKEN":                    "hvs.vault-cdef",
}

// probeOutput runs testdata/probe.pkr.hcl, copied into r.Dir, and returns the
// lines its provisioner wrote: the environment and uid of a template's code.
func probeOutput(t *testing.T, r PackerRun) ([]string, error) {
	t.Helper()
	template, err := os.ReadFile(filepath.Join("testdata", "probe.pkr.hcl"))
	require.NoError(t, err)
	writeFile(t, r.Dir, "probe.pkr.hcl", string(template))
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777)) // a bake user writes there too
	r.Packer, r.Template, r.Vars = packerBinary(t), "probe.pkr.hcl", map[string]string{"out": out}
	if _, err := RunPacker(context.Background(), r); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(out, "env.txt"))
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(data)), "\n"), nil
}

// Packer, its plugins and the template's provisioners see a clean environment:
// none of the worker's secrets, only PATH, HOME, packer's own settings, the
// bake's passEnv and what RunPacker sets.
func TestRunPackerEnvironmentIsClean(t *testing.T) {
	for k, v := range workerSecrets {
		t.Setenv(k, v)
	}
	plugins := t.TempDir()
	t.Setenv("PACKER_PLUGIN_PATH", plugins)
	t.Setenv("BUILD_FLAVOUR", "blue")
	t.Setenv("NOT_PASSED", "stays-home")

	out, err := probeOutput(t, PackerRun{Dir: t.TempDir(), PassEnv: []string{"BUILD_FLAVOUR", "UNSET_NAME"}})
	require.NoError(t, err)
	printed := strings.Join(out, "\n")
	for _, want := range []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PACKER_PLUGIN_PATH=" + plugins,
		"BUILD_FLAVOUR=blue", "CHECKPOINT_DISABLE=1", "uid=" + strconv.Itoa(os.Geteuid())} {
		assert.Contains(t, out, want, "the template's env:\n%s", printed)
	}
	for k, v := range workerSecrets {
		assert.NotContains(t, printed, k, "the template's env:\n%s", printed)
		assert.NotContains(t, printed, v, "the template's env:\n%s", printed)
	}
	assert.NotContains(t, printed, "NOT_PASSED")
	assert.NotContains(t, printed, "UNSET_NAME")
}

// With a bake user, packer and what it runs have that user's uid, the HOME (and
// TMPDIR) of its own it was given, and still none of the worker's secrets. A
// worker that is not root is refused before packer starts.
func TestRunPackerAsTheBakeUser(t *testing.T) {
	for k, v := range workerSecrets {
		t.Setenv(k, v)
	}
	nobody, err := runas.Parse("nobody")
	require.NoError(t, err)
	work := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(work), 0o755)) // nobody must reach work
	if os.Geteuid() != 0 {
		_, err := RunPacker(context.Background(), PackerRun{Packer: packerBinary(t), Template: ".", Dir: work, User: nobody})
		assert.ErrorContains(t, err, "IMAGO_BAKE_USER=nobody (uid 65534, gid 65534): this worker runs as uid "+strconv.Itoa(os.Geteuid())+" and cannot run bakes as another user")
		return
	}
	require.NoError(t, nobody.Own(work))
	out, err := probeOutput(t, PackerRun{Dir: work, Home: work, User: nobody})
	require.NoError(t, err)
	printed := strings.Join(out, "\n")
	for _, want := range []string{"uid=" + strconv.Itoa(int(nobody.UID)), "HOME=" + work, "TMPDIR=" + filepath.Join(work, "tmp")} {
		assert.Contains(t, out, want, "the template's env:\n%s", printed)
	}
	for k := range workerSecrets {
		assert.NotContains(t, printed, k)
	}
}
