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

func TestBakeFormatOCIResolvesDestinationsAgainstTheFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bake.yaml"), []byte(
		"service: hello\nfiles: [main.go]\nentrypoint: [./hello]\nformat: oci\n"+
			"destinations: [oci-layout://out/hello-oci, docker-archive:///srv/hello.tar]\n"), 0o600))
	b, err := LoadBake(filepath.Join(dir, "bake.yaml"))
	require.NoError(t, err)
	require.NoError(t, b.Normalize())
	assert.Equal(t, FormatOCI, b.Format)
	assert.Equal(t, []string{"oci-layout://" + filepath.Join(dir, "out", "hello-oci"), "docker-archive:///srv/hello.tar"}, b.Destinations)
}

func TestBakeFormatProblemsNameTheirFieldAndLine(t *testing.T) {
	src := t.TempDir()
	for yaml, want := range map[string]string{
		"format: docker\n":                                `format: line 4: "docker": want local, oci or vm`,
		"format: oci\n":                                   "destinations: format: oci needs at least one",
		"destinations: [oci-layout://x]\n":                "destinations: line 4: are for format: oci",
		"format: oci\ndestinations: [registry://hello]\n": `destinations[0]: line 5: "registry://hello": want registry://HOST[:PORT]/REPO[:TAG]`,
		"format: oci\ndestinations: [out/dir]\n":          `destinations[0]: line 5: "out/dir" is not a destination URL`,
		"format: oci\ndestinations: [oci-layout://x]\nentrypoint: [./hello, --port, $PORT]\n": "entrypoint: line 6: an OCI image's entrypoint runs without a shell, so $PORT would not be expanded",
	} {
		doc := "service: hello\nsource: " + src + "\nchannel: latest\n" + yaml
		if !strings.Contains(yaml, "entrypoint") {
			doc += "entrypoint: [./hello]\n"
		}
		b, err := ParseBake([]byte(doc))
		require.NoError(t, err, yaml)
		assert.ErrorContains(t, b.Normalize(), want, yaml)
	}
	b, err := ParseBake([]byte("service: hello\nbuilder: packer\ntemplate: " + src + "\nformat: oci\ndestinations: [oci-layout://x]\n"))
	require.NoError(t, err)
	assert.ErrorContains(t, b.Normalize(), "format: line 4: oci is for the imago-local builder")
}

func TestBakeRootsCheckTheDestinationsABakeWrites(t *testing.T) {
	root := t.TempDir()
	roots, err := ParseBakeRoots(root)
	require.NoError(t, err)
	ok := Bake{Bake: contract.Bake{Dir: root, Format: FormatOCI, Destinations: []string{"oci-layout://out/oci", "docker-archive://" + filepath.Join(root, "hello.tar")}}}
	assert.Nil(t, roots.Check(&ok))
	pushed := Bake{Bake: contract.Bake{Dir: root, Format: FormatOCI, Destinations: []string{"registry://registry.example/etc/hello:v1"}}}
	assert.Nil(t, roots.Check(&pushed), "a registry reference is no path")
	b := Bake{Bake: contract.Bake{Dir: root, Format: FormatOCI, Destinations: []string{"oci-layout://out/oci", "docker-archive:///etc/hello.tar"}}}
	assert.Equal(t, contract.FieldErrors{{Field: "destinations[1]", Msg: "/etc/hello.tar is outside IMAGO_BAKE_ROOTS (" + roots.String() + ")"}}, roots.Check(&b))
}

func TestBakeFormatVM(t *testing.T) {
	src := t.TempDir()
	b, err := ParseBake([]byte("service: hello-vm\nsource: " + src + "\nentrypoint: [./hello]\nformat: vm\n"))
	require.NoError(t, err)
	require.NoError(t, b.Normalize())
	assert.Equal(t, FormatVM, b.Format)
	b, err = ParseBake([]byte("service: hello-vm\nsource: " + src + "\nentrypoint: [./hello]\nformat: vm\ndestinations: [oci-layout://x]\n"))
	require.NoError(t, err)
	assert.ErrorContains(t, b.Normalize(), "destinations: line 5: are for format: oci")
	b, err = ParseBake([]byte("service: hello\nbuilder: packer\ntemplate: " + src + "\nformat: vm\n"))
	require.NoError(t, err)
	assert.ErrorContains(t, b.Normalize(), "format: line 4: vm is for the imago-local builder")
}
