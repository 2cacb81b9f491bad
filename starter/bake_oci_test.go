package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/ociimage"
	"github.com/imago/imago/internal/ociimage/skopeo"
	"github.com/imago/imago/internal/sbom"
)

// examples/hello/bake-oci.yaml, baked through the CLI by a real worker (the
// imago-local builder compiles main.go, the image test boots it): the OCI layout
// and the docker archive it names read back with skopeo, showing the entrypoint,
// labels and manifest digest that `imago image show` prints from the catalog.
// The local image of the very same files (examples/hello/bake.yaml, baked first)
// keeps the ID of its files, service and entrypoint; the OCI image has an ID of
// its own, so the catalog never hands the local record (no OCI digest) to it.
func TestBakeFormatOCIWritesImagesSkopeoReads(t *testing.T) {
	newImagoEnv(t)
	// The example's destinations are relative to its file: bake a copy of it, so
	// they land in a temporary directory rather than in the source tree.
	dir := copyExample(t, "bake.yaml", "bake-oci.yaml", "main.go")

	localID := bakeToLatest(t, filepath.Join(dir, "bake.yaml"))
	local := showImage(t, localID)
	assert.Equal(t, image.ID(local.Digest, "hello", []string{"./hello"}), localID, "a local image's ID is unchanged")
	assert.Empty(t, local.OCIDigest)

	id := bakeToLatest(t, filepath.Join(dir, "bake-oci.yaml"))
	img := showImage(t, id)
	require.Equal(t, local.Digest, img.Digest, "the same files")
	require.NotEqual(t, localID, id, "an OCI image of the same files is an image of its own")
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, img.OCIDigest)
	out, _, err := run(t, "image", "show", localID, "-o", "json")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "ociDigest", "the local image's record is left as it was")
	out, _, err = run(t, "image", "show", id)
	require.NoError(t, err, out)
	assert.Regexp(t, `(?m)^OCI digest:\s+`+img.OCIDigest+`$`, out)
	// The SBOM names the same manifest: a property and the pkg:oci purl of its image.
	out, _, err = run(t, "image", "sbom", id)
	require.NoError(t, err, out)
	var bom struct {
		Metadata struct {
			Component struct {
				Purl       string
				Properties []struct{ Name, Value string }
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &bom), out)
	assert.Equal(t, "pkg:oci/hello@"+img.OCIDigest, bom.Metadata.Component.Purl)
	assert.Contains(t, bom.Metadata.Component.Properties, struct{ Name, Value string }{sbom.PropOCIDigest, img.OCIDigest})

	// So does the provenance: the OCI manifest is one of its subjects.
	out, _, err = run(t, "image", "provenance", id, "--envelope")
	require.NoError(t, err, out)
	var env struct{ Payload []byte }
	require.NoError(t, json.Unmarshal([]byte(out), &env), out)
	assert.Contains(t, string(env.Payload), strings.TrimPrefix(img.OCIDigest, "sha256:"), "the provenance names the OCI digest")

	layoutDir, archive := filepath.Join(dir, "out", "hello-oci"), filepath.Join(dir, "out", "hello.tar")
	for _, p := range []string{layoutDir, archive} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Zero(t, fi.Mode().Perm()&0o077, "%s is the bake user's only (%s)", p, fi.Mode())
	}
	for _, ref := range []string{"oci:" + layoutDir, "docker-archive:" + archive} {
		ins := skopeo.Inspect(t, ref)
		assert.Equal(t, id, ins.Labels[ociimage.LabelImageID], ref)
		assert.Equal(t, img.Digest, ins.Labels[ociimage.LabelDigest], ref)
		assert.Equal(t, img.InputDigest, ins.Labels[ociimage.LabelInputDigest], ref)
		assert.Equal(t, "hello", ins.Labels["org.opencontainers.image.title"], ref)
		assert.Equal(t, "platform", ins.Labels["team"], ref)
		cfg := skopeo.InspectConfig(t, ref)
		assert.Equal(t, []string{"./hello"}, cfg.Config.Entrypoint, ref)
		assert.Equal(t, []string{"PORT=8080"}, cfg.Config.Env, ref)
		assert.Contains(t, cfg.Config.ExposedPorts, "8080/tcp", ref)
	}
	// The layout holds the very manifest whose digest the catalog records, and its
	// one layer is the local image's archive.
	ins := skopeo.Inspect(t, "oci:"+layoutDir)
	assert.Equal(t, img.OCIDigest, ins.Digest)
	assert.Equal(t, []string{img.Digest}, ins.Layers)
}

// showImage is the catalog record `imago image show ID -o json` prints.
func showImage(t *testing.T, id string) contract.Image {
	t.Helper()
	out, _, err := run(t, "image", "show", id, "-o", "json")
	require.NoError(t, err, out)
	var detail struct{ Image contract.Image }
	require.NoError(t, json.Unmarshal([]byte(out), &detail), out)
	return detail.Image
}
