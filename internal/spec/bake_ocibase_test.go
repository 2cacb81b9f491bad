package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBakeOCIBase(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bake.yaml"), []byte(
		"service: hello\nfiles: [main.go]\nentrypoint: [./hello]\nformat: oci\n"+
			"destinations: [oci-layout://out/hello-oci]\nbase: {oci: oci-layout://base:debian:12}\n"), 0o600))
	b, err := LoadBake(filepath.Join(dir, "bake.yaml"))
	require.NoError(t, err)
	require.NoError(t, b.Normalize())
	assert.Equal(t, "oci-layout://"+filepath.Join(dir, "base")+":debian:12", b.Base.OCI, "resolved against the file")

	src := t.TempDir()
	for yaml, want := range map[string]string{
		"format: oci\ndestinations: [oci-layout://x]\nbase: {oci: docker://debian}\n":                 `base.oci: line 6: "docker://debian": want oci-layout://DIR`,
		"format: oci\ndestinations: [oci-layout://x]\nbase: {oci: oci-layout://b@sha256:12}\n":        `base.oci: line 6: "oci-layout://b@sha256:12"`,
		"format: oci\ndestinations: [oci-layout://x]\nbase: {oci: oci-layout://b, channel: stable}\n": "base.oci: line 6: an OCI base is the whole base",
		"base: {oci: oci-layout://b}\n":                                      "base.oci: line 4: an OCI base is for format: oci",
		"format: vm\nbase: {oci: oci-layout://b}\n":                          "base.oci: line 5: an OCI base is for format: oci",
		"format: oci\ndestinations: [oci-layout://x]\nbase: {service: os}\n": "base: line 6: set exactly one of id or channel (or oci:",
	} {
		doc := "service: hello\nsource: " + src + "\nentrypoint: [./hello]\n" + yaml
		b, err := ParseBake([]byte(doc))
		require.NoError(t, err, yaml)
		assert.ErrorContains(t, b.Normalize(), want, yaml)
	}
}
