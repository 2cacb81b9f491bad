package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/ociimage"
	"github.com/imago/imago/internal/ociimage/skopeo"
)

// writeBaseLayout writes an OCI layout at dir holding one image of two random
// layers, with an env variable and a label of its own; it returns the image's
// manifest digest and its layers' digests.
func writeBaseLayout(t *testing.T, dir string) (string, []string) {
	t.Helper()
	require.NoError(t, os.RemoveAll(dir))
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for range 2 {
		l, err := random.Layer(512, types.OCILayer)
		require.NoError(t, err)
		img, err = mutate.AppendLayers(img, l)
		require.NoError(t, err)
	}
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"BASE_OS=test", "PORT=9999"}
	cf.Config.Labels = map[string]string{"base-label": "kept"}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	p, err := layout.Write(dir, empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendImage(img))
	h, err := img.Digest()
	require.NoError(t, err)
	ls, err := img.Layers()
	require.NoError(t, err)
	var digests []string
	for _, l := range ls {
		d, err := l.Digest()
		require.NoError(t, err)
		digests = append(digests, d.String())
	}
	return h.String(), digests
}

// examples/hello/bake-oci.yaml with base: {oci: oci-layout://base}, baked through
// the CLI by a real worker on a base layout made with go-containerregistry: skopeo
// reads the written image's layers as the base's followed by the bake's, the base
// labels and the base's env; the catalog record and the provenance name the base.
// A changed base is a new input digest (no cache hit) and a new OCI image.
func TestBakeFormatOCIOnAnOCIBaseReusesItsLayers(t *testing.T) {
	newImagoEnv(t)
	dir := copyExample(t, "bake-oci.yaml", "main.go")
	specPath := filepath.Join(dir, "bake-oci.yaml")
	data, err := os.ReadFile(specPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(specPath, append(data, []byte("base: {oci: oci-layout://base}\n")...), 0o600))
	baseDir := filepath.Join(dir, "base")
	baseDigest, baseLayers := writeBaseLayout(t, baseDir)

	id := bakeToLatest(t, specPath)
	img := showImage(t, id)
	assert.Equal(t, baseDigest, img.Labels[ociimage.LabelBaseDigest])
	assert.Equal(t, "oci-layout://"+baseDir, img.Labels[ociimage.LabelBaseName])
	out, _, err := run(t, "image", "provenance", id)
	require.NoError(t, err, out)
	assert.Contains(t, out, baseDigest, "the provenance's materials name the base")

	layoutDir := filepath.Join(dir, "out", "hello-oci")
	for _, ref := range []string{"oci:" + layoutDir, "docker-archive:" + filepath.Join(dir, "out", "hello.tar")} {
		ins := skopeo.Inspect(t, ref)
		if strings.HasPrefix(ref, "oci:") {
			assert.Equal(t, append(append([]string{}, baseLayers...), img.Digest), ins.Layers, ref)
		} else {
			assert.Len(t, ins.Layers, 3, "a docker archive's layers are uncompressed: %s", ref)
		}
		assert.Equal(t, baseDigest, ins.Labels[ociimage.LabelBaseDigest], ref)
		assert.Equal(t, "oci-layout://"+baseDir, ins.Labels[ociimage.LabelBaseName], ref)
		assert.Equal(t, "kept", ins.Labels["base-label"], ref)
		assert.Equal(t, id, ins.Labels[ociimage.LabelImageID], ref)
		cfg := skopeo.InspectConfig(t, ref)
		assert.Equal(t, []string{"./hello"}, cfg.Config.Entrypoint, ref)
		assert.Equal(t, []string{"PORT=8080", "BASE_OS=test"}, cfg.Config.Env, ref)
	}
	first := skopeo.Inspect(t, "oci:"+layoutDir)
	assert.Equal(t, img.OCIDigest, first.Digest)

	// Another base: a new input digest, so the bake builds again, a new OCI image
	// and a new image ID (the same files on another base are another image),
	// whose record has the new OCI digest, not the first one's.
	baseDigest2, baseLayers2 := writeBaseLayout(t, baseDir)
	require.NotEqual(t, baseDigest, baseDigest2)
	id2 := bakeToLatest(t, specPath)
	assert.NotEqual(t, id, id2)
	// The layout holds both images now, each named <service>:<image ID>.
	assert.Equal(t, first.Digest, skopeo.Inspect(t, "oci:"+layoutDir+":hello:"+id).Digest)
	second := skopeo.Inspect(t, "oci:"+layoutDir+":hello:"+id2)
	assert.NotEqual(t, first.Digest, second.Digest)
	assert.Equal(t, baseLayers2, second.Layers[:2])
	assert.Equal(t, baseDigest2, second.Labels[ociimage.LabelBaseDigest])
	img2 := showImage(t, id2)
	assert.Equal(t, img.Digest, img2.Digest, "the same files")
	assert.Equal(t, second.Digest, img2.OCIDigest)
	assert.Equal(t, baseDigest2, img2.Labels[ociimage.LabelBaseDigest])
	assert.Equal(t, id2, second.Labels[ociimage.LabelImageID])
}
