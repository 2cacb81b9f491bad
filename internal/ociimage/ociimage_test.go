package ociimage

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/ociimage/skopeo"
)

func TestOCIImageFromAnArchiveAsSkopeoReadsIt(t *testing.T) {
	dir := t.TempDir()
	archivePath, digest := testArchive(t, dir)

	img, err := FromArchive(archivePath, Config{ImageID: "img-0123456789ab", Service: "hello", Digest: digest,
		InputDigest: "sha256:feed", Entrypoint: []string{"./hello", "-v"}, Labels: map[string]string{"team": "platform"}})
	require.NoError(t, err)
	manifestDigest, err := img.Digest()
	require.NoError(t, err)
	again, err := FromArchive(archivePath, Config{ImageID: "img-0123456789ab", Service: "hello", Digest: digest,
		InputDigest: "sha256:feed", Entrypoint: []string{"./hello", "-v"}, Labels: map[string]string{"team": "platform"}})
	require.NoError(t, err)
	againDigest, err := again.Digest()
	require.NoError(t, err)
	assert.Equal(t, manifestDigest, againDigest, "the same archive and config give the same manifest")

	layoutDest, err := ParseDestination("oci-layout://out/layout", dir)
	require.NoError(t, err)
	archiveDest, err := ParseDestination("docker-archive://out/hello.tar", dir)
	require.NoError(t, err)
	for _, d := range []Destination{layoutDest, archiveDest} {
		require.NoError(t, Write(img, d, "hello", "img-0123456789ab"))
	}
	// Writing again replaces the tagged image in the layout rather than adding one.
	require.NoError(t, Write(img, layoutDest, "hello", "img-0123456789ab"))
	fi, err := os.Stat(archiveDest.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(layoutDest.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	for _, ref := range []string{"oci:" + layoutDest.Path, "docker-archive:" + archiveDest.Path} {
		ins := skopeo.Inspect(t, ref)
		assert.Len(t, ins.Layers, 1, ref)
		assert.Equal(t, "platform", ins.Labels["team"], ref)
		assert.Equal(t, "img-0123456789ab", ins.Labels[LabelImageID], ref)
		assert.Equal(t, "sha256:feed", ins.Labels[LabelInputDigest], ref)
		assert.Equal(t, "hello", ins.Labels[LabelTitle], ref)
		cfg := skopeo.InspectConfig(t, ref)
		assert.Equal(t, []string{"./hello", "-v"}, cfg.Config.Entrypoint, ref)
		assert.Equal(t, []string{"PORT=8080"}, cfg.Config.Env, ref)
		assert.Contains(t, cfg.Config.ExposedPorts, "8080/tcp", ref)
		assert.Equal(t, "/", cfg.Config.WorkingDir, ref)
	}
	// In the layout, skopeo shows the manifest digest imago computed, and the
	// layer is imago's archive as is (a docker archive holds it uncompressed).
	ins := skopeo.Inspect(t, "oci:"+layoutDest.Path)
	assert.Equal(t, manifestDigest.String(), ins.Digest)
	assert.Equal(t, []string{digest}, ins.Layers)
}

// testArchive packs a tree holding one script into dir/img.tar.gz, an imago
// image archive, and returns its path and digest.
func testArchive(t *testing.T, dir string) (path, digest string) {
	t.Helper()
	tree := filepath.Join(dir, "tree")
	require.NoError(t, os.MkdirAll(tree, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "hello"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	archive, err := image.Pack(tree)
	require.NoError(t, err)
	path = filepath.Join(dir, "img.tar.gz")
	require.NoError(t, os.WriteFile(path, archive, 0o600))
	return path, image.Digest(archive)
}

func TestParseDestinationNamesWhatIsWrong(t *testing.T) {
	for in, want := range map[string]string{
		"out/layout":            "is not a destination URL",
		"registry://hello":      "want registry://HOST[:PORT]/REPO[:TAG]",
		"registry://h/Repo:tag": "want registry://HOST[:PORT]/REPO[:TAG]",
		"s3://bucket/x":         `unknown scheme "s3"`,
		"oci-layout://":         "names no path",
		"docker-archive://":     "names no path",
	} {
		_, err := ParseDestination(in, "/tmp")
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
	d, err := ParseDestination("docker-archive:///abs/x.tar", "/tmp")
	require.NoError(t, err)
	assert.Equal(t, Destination{Scheme: SchemeDockerArchive, Path: "/abs/x.tar"}, d)
	d, err = ParseDestination("registry://127.0.0.1:5000/acme/hello", "/tmp")
	require.NoError(t, err)
	assert.Equal(t, Destination{Scheme: SchemeRegistry, Path: "127.0.0.1:5000/acme/hello:latest"}, d)
	assert.False(t, d.IsFile())
}
