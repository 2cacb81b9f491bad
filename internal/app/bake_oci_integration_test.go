package app

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// An OCI bake whose image fails its test writes no OCI image anywhere: the
// destinations are written when the image is published, after its test.
func TestOCIBakeFailingItsImageTestWritesNoOCIImage(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	_, file, _, _ := runtime.Caller(0)
	b, err := spec.LoadBake(filepath.Join(filepath.Dir(file), "..", "..", "examples", "hello", "bake-oci.yaml"))
	require.NoError(t, err)
	out := t.TempDir()
	b.Destinations = []string{"oci-layout://" + filepath.Join(out, "layout"), "docker-archive://" + filepath.Join(out, "hello.tar")}
	b.Test.Checks = []contract.Check{{Path: "/", ExpectBody: "v3"}}
	require.NoError(t, b.Normalize())

	_, err = e.bake(b)
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "bake of hello failed while testing the image")
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Empty(t, entries, "no OCI image is written for an image that failed its test")
	imgs, err := e.deps.Catalog.List(context.Background(), "hello")
	require.NoError(t, err)
	assert.Empty(t, imgs)
}
