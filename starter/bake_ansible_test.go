package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// copyExample copies files of examples/hello into a temporary directory (the
// example's relative paths then resolve there) and returns it.
func copyExample(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("..", "examples", "hello", f))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), data, 0o600))
	}
	return dir
}

// bakeToLatest bakes the spec at path through the CLI, watching, and returns the
// ID of the image it built, tested and put on channel latest.
func bakeToLatest(t *testing.T, path string) string {
	t.Helper()
	out, code, err := run(t, "bake", "start", "-f", path, "--watch")
	require.NoError(t, err, out)
	require.Equal(t, 0, code, out)
	m := regexp.MustCompile(`(?m)^(img-[0-9a-f]{12}) built and tested; channel latest`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	return m[1]
}

// examples/hello/bake-ansible.yaml, baked through the CLI by a real worker with
// Debian's ansible-playbook: the playbook's role writes greeting.txt into the
// image (the SBOM lists it with the hash of what the role wrote). The same
// playbook told to fail stops the bake at the task that failed, and nothing is
// published.
func TestBakeWithAnAnsiblePlaybook(t *testing.T) {
	newImagoEnv(t)
	dir := copyExample(t, "bake-ansible.yaml", "main.go", "ansible/site.yml", "ansible/roles/motd/tasks/main.yml")

	id := bakeToLatest(t, filepath.Join(dir, "bake-ansible.yaml"))

	out, _, err := run(t, "image", "sbom", id)
	require.NoError(t, err, out)
	var bom struct {
		Components []struct {
			Name   string
			Hashes []struct{ Content string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &bom), out)
	want := sha256.Sum256([]byte("hello from v2\n"))
	var got string
	for _, c := range bom.Components {
		if c.Name == "greeting.txt" && len(c.Hashes) == 1 {
			got = c.Hashes[0].Content
		}
	}
	assert.Equal(t, hex.EncodeToString(want[:]), got, "greeting.txt, as the role wrote it")
	// The provenance's materials list the playbook's directory (its roles too).
	out, _, err = run(t, "image", "provenance", id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "ansible:site.yml", "the playbook is a material")
	assert.Contains(t, out, "file://"+filepath.Join(dir, "ansible"), "the playbook's directory is a material")

	// A failing task: the bake stops there, naming it, and publishes nothing.
	failing := filepath.Join(dir, "bake-fail.yaml")
	require.NoError(t, os.WriteFile(failing, []byte(`service: hello
builder: imago-local
files: [main.go]
passEnv: [PATH, HOME]
provision:
  - ansible: ansible/site.yml
    extraVars: {greeting: hi, fail_reason: on purpose}
entrypoint: [./hello]
channel: failing
`), 0o600))
	out, _, err = run(t, "bake", "start", "-f", failing, "--watch")
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), `failed at task "motd : fail when asked to": fatal: [localhost]: FAILED!`)
	assert.Contains(t, err.Error(), "asked to fail (on purpose)")
	assert.Regexp(t, `(?m)^\S+\s+failed · inputs sha256:[0-9a-f]{12} · error bake of hello failed while building: ansible playbook`, out)
	out, _, err = run(t, "image", "list", "-o", "json")
	require.NoError(t, err, out)
	assert.Equal(t, 1, strings.Count(out, `"id": "img-`), "the failed bake published nothing: %s", out)
}
