package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An OCI image is a bake's base only: a rollout, a pipeline or a campaign's
// select.base that names one is refused by field and line, not silently rolled
// out as its id or channel.
func TestAnImageRefNamingOCIOutsideABakeBaseIsRefused(t *testing.T) {
	for doc, want := range map[string]string{
		"service: hello\nlisten: 127.0.0.1:9080\nimage:\n  id: img-3f2a00000000\n  oci: oci-layout://out/hello-oci\n": "image.oci: line 5: an OCI image is a bake's base only",
		"service: hello\nlisten: 127.0.0.1:9080\nimage: {channel: stable, oci: oci-layout://x}\n":                     "image.oci: line 3: an OCI image is a bake's base only",
		"service: hello\nlisten: 127.0.0.1:9080\nimage: {oci: oci-layout://x}\n":                                      "image.oci: line 3: an OCI image is a bake's base only",
	} {
		r, err := ParseRollout([]byte(doc))
		require.NoError(t, err, doc)
		err = r.Normalize()
		require.Error(t, err, doc)
		assert.Contains(t, err.Error(), want, doc)
		assert.Contains(t, err.Error(), "set image.id, image.channel or image.bake", doc)
	}

	c, err := ParseCampaign([]byte("name: base\nselect: {base: {service: base-os, channel: stable, oci: oci-layout://x}}\nimage: {channel: stable}\nrings: [{environments: [prod]}]\n"))
	require.NoError(t, err)
	assert.ErrorContains(t, c.Normalize(), "select.base: line 2: names a channel: {service, channel}")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "staging.yaml"), []byte("service: hello\nenvironment: staging\nlisten: 127.0.0.1:9081\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(
		"name: hello\nimage: {channel: stable, oci: oci-layout://x}\nstages: [{rollout: staging.yaml}]\n"), 0o600))
	_, err = LoadPipeline(filepath.Join(dir, "pipeline.yaml"))
	assert.ErrorContains(t, err, "image.oci: line 2: an OCI image is a bake's base only")
}
