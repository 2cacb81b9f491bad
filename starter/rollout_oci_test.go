package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A rollout spec whose image names an OCI image beside its id is refused with
// the field and its line, before anything is contacted: the OCI image is not
// silently dropped for the id.
func TestRolloutStartRefusesAnOCIImage(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing may be contacted
	f := filepath.Join(t.TempDir(), "rollout.yaml")
	require.NoError(t, os.WriteFile(f, []byte("service: hello\nlisten: 127.0.0.1:9080\nimage:\n  id: img-000000000001\n  oci: oci-layout://out/hello-oci\n"), 0o600))
	for _, args := range [][]string{{"rollout", "start", "-f", f}, {"plan", "-f", f}} {
		_, code, err := run(t, args...)
		require.Error(t, err, "%v", args)
		assert.Equal(t, 2, code, "%v: %v", args, err)
		assert.Contains(t, err.Error(), "image.oci: line 5: an OCI image is a bake's base only", "%v", args)
		assert.NotContains(t, err.Error(), "connect to Temporal", "%v", args)
	}
}
