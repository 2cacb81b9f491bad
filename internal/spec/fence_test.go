package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// A bake file whose passEnv names the API's tokens is refused at validation, the
// problem naming the field and its line; so is every other secret's prefix, in
// any case, while ordinary build variables pass.
func TestPassEnvOfSecretsIsRefusedWithFieldAndLine(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644))
	file := filepath.Join(dir, "bake.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`service: hello
files: [main.go]
passEnv:
  - PATH
  - IMAGO_API_TOKENS
  - GOCACHE
entrypoint: [./hello]
`), 0o644))
	b, err := LoadBake(file)
	require.NoError(t, err)
	err = b.Normalize()
	require.True(t, IsInvalid(err), "%v", err)
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	require.Len(t, es, 1)
	assert.Equal(t, "passEnv[1]", es[0].Field)
	assert.Equal(t, 5, es[0].Line)
	assert.True(t, strings.HasPrefix(es[0].Error(), "passEnv[1]: line 5: IMAGO_API_TOKENS may not be passed: a bake never sees the worker's IMAGO_*, TEMPORAL_*"), es[0].Msg)

	for _, name := range []string{"IMAGO_SECRETS_URL", "TEMPORAL_API_KEY", "TEMPORAL_TLS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
		"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "VAULT_TOKEN", "AZURE_CLIENT_SECRET",
		"OTEL_EXPORTER_OTLP_HEADERS", "imago_api_tokens"} {
		es := PassEnvErrors([]string{"HOME", name})
		require.Len(t, es, 1, name)
		assert.Equal(t, "passEnv[1]", es[0].Field, name)
		assert.Contains(t, es[0].Msg, name+" may not be passed", name)
	}
	assert.Nil(t, PassEnvErrors([]string{"PATH", "HOME", "GOCACHE", "GOPROXY", "GOFLAGS", "HTTPS_PROXY"}))
	assert.Equal(t, contract.FieldErrors{{Field: "passEnv[0]", Msg: `"NOT-A-NAME" is not an environment variable name`}}, PassEnvErrors([]string{"NOT-A-NAME"}))

	// Sent as JSON (no YAML behind it), the same problem has no line.
	b = Bake{Bake: contract.Bake{Service: "hello", Files: []string{filepath.Join(dir, "main.go")}, Entrypoint: []string{"./hello"}, PassEnv: []string{"AWS_ACCESS_KEY_ID"}}}
	require.ErrorAs(t, b.Normalize(), &es)
	assert.True(t, strings.HasPrefix(es[0].Error(), "passEnv[0]: AWS_ACCESS_KEY_ID may not be passed"), es[0].Error())
}

// Every problem of a bake file names its line, not only passEnv's.
func TestBakeProblemsNameTheirLine(t *testing.T) {
	b, err := ParseBake([]byte("service: hello\nsource: /nonexistent/src\nchannel: Bad\nentrypoint: [./hello]\n"))
	require.NoError(t, err)
	err = b.Normalize()
	assert.ErrorContains(t, err, "source: line 2: /nonexistent/src is not a directory")
	assert.ErrorContains(t, err, `channel: line 3: "Bad" must be a lowercase name`)
}

func TestParseBakeRoots(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(a, link))
	roots, err := ParseBakeRoots(":" + link + ":" + b + ":")
	require.NoError(t, err)
	realA, _ := filepath.EvalSymlinks(a)
	realB, _ := filepath.EvalSymlinks(b)
	assert.Equal(t, realA+":"+realB, roots.String(), "a root is where its files really are")
	assert.False(t, roots.IsZero())

	roots, err = ParseBakeRoots("")
	require.NoError(t, err)
	assert.True(t, roots.IsZero())

	_, err = ParseBakeRoots("srv/imago")
	assert.EqualError(t, err, `IMAGO_BAKE_ROOTS: "srv/imago" is not an absolute directory`)
	_, err = ParseBakeRoots(a + ":/nonexistent/imago")
	assert.ErrorContains(t, err, "IMAGO_BAKE_ROOTS: lstat /nonexistent: no such file or directory")
	f := filepath.Join(a, "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err = ParseBakeRoots(f)
	assert.EqualError(t, err, "IMAGO_BAKE_ROOTS: "+f+" is not a directory")
}

// Every path a bake reads must lie in a root once its symlinks are resolved; a
// path outside is refused without saying whether it exists.
func TestBakeRootsCheckEveryPathABakeReads(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s3cret"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "src", "escape")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "out")))
	require.NoError(t, os.Symlink(filepath.Join(root, "src"), filepath.Join(outside, "in")))
	roots, err := ParseBakeRoots(root)
	require.NoError(t, err)
	realRoot, realOutside := roots.String(), mustEval(t, outside)
	in := func(p string) string { return filepath.Join(root, p) }

	ok := Bake{Bake: contract.Bake{Dir: root, Source: "src", Files: []string{in("src"), filepath.Join(outside, "in")}, Template: in("missing.pkr.hcl")}}
	assert.Nil(t, roots.Check(&ok), "in a root, a link into a root, and a path in a root that does not exist (Validate's to report)")

	b := Bake{Bake: contract.Bake{Dir: root, Source: "/", Files: []string{in("src/escape"), "out/secret", "/nonexistent/file"}, Template: "../x.pkr.hcl"}}
	assert.Equal(t, contract.FieldErrors{
		{Field: "source", Msg: "/ is outside IMAGO_BAKE_ROOTS (" + realRoot + ")"},
		{Field: "template", Msg: filepath.Join(filepath.Dir(root), "x.pkr.hcl") + " is outside IMAGO_BAKE_ROOTS (" + realRoot + ")"},
		{Field: "files[0]", Msg: in("src/escape") + " resolves to " + filepath.Join(realOutside, "secret") + ", outside IMAGO_BAKE_ROOTS (" + realRoot + ")"},
		{Field: "files[1]", Msg: in("out/secret") + " resolves to " + filepath.Join(realOutside, "secret") + ", outside IMAGO_BAKE_ROOTS (" + realRoot + ")"},
		{Field: "files[2]", Msg: "/nonexistent/file is outside IMAGO_BAKE_ROOTS (" + realRoot + ")"},
	}, roots.Check(&b))

	var none BakeRoots
	assert.Equal(t, contract.FieldErrors{{Field: "source", Msg: in("src") + " is outside IMAGO_BAKE_ROOTS (unset: the API bakes nothing from disk; set IMAGO_BAKE_ROOTS=/srv/imago/src)"}},
		none.Check(&Bake{Bake: contract.Bake{Dir: root, Source: "src"}}))

	parsed, err := ParseBake([]byte("service: hello\nsource: /\n"))
	require.NoError(t, err)
	assert.Equal(t, contract.FieldErrors{{Field: "source", Line: 2, Msg: "/ is outside IMAGO_BAKE_ROOTS (" + realRoot + ")"}}, roots.Check(&parsed))
}

func mustEval(t *testing.T, p string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(p)
	require.NoError(t, err)
	return real
}
