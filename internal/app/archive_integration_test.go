package app

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/rollouts"
)

// TestSwappedArchiveFailsTheRolloutBeforeAnythingIsProvisioned swaps v2's archive
// object in the file:// catalog for another valid tarball (v1's) after v2 was
// imported, as someone with write access to the bucket could. Without the digest
// check the v2 rollout would unpack and serve those bytes as v2; with it, the
// rollout fails in provisioning before any instance starts, and v1 keeps serving.
func TestSwappedArchiveFailsTheRolloutBeforeAnythingIsProvisioned(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	require.Equal(t, "hello from v1", e.get())

	ctx := context.Background()
	img1, err := e.deps.Catalog.Get(ctx, v1)
	require.NoError(t, err)
	img2, err := e.deps.Catalog.Get(ctx, v2)
	require.NoError(t, err)
	bucket := strings.TrimPrefix(e.cfg.CatalogURL, "file://")
	other, err := os.ReadFile(filepath.Join(bucket, filepath.FromSlash(img1.Archive)))
	require.NoError(t, err)
	swap := filepath.Join(bucket, filepath.FromSlash(img2.Archive))
	require.NoError(t, os.WriteFile(swap+".swap", other, 0o600))
	require.NoError(t, os.Rename(swap+".swap", swap))

	_, err = e.rollout(e.spec(v2))
	require.Error(t, err)
	msg := rollouts.Reason(err)
	assert.Contains(t, msg, "failed while provisioning the new fleet: image "+v2+" archive does not match its digest: the catalog was modified")
	assert.Contains(t, msg, "(the record says "+img2.Digest+", the archive is "+img1.Digest+")")
	assert.Contains(t, msg, "the previous fleet keeps serving")

	for i := 0; i < 5; i++ {
		require.Equal(t, "hello from v1", e.get())
	}
	byFleet, routers := e.instances()
	assert.Equal(t, map[string]int{res1.FleetID: 3}, byFleet, "no v2 instance may have started")
	assert.Equal(t, 1, routers)
	assert.Equal(t, []string{res1.FleetID}, e.fleetIDs(), "no v2 fleet may have been made")

	// images/ holds v1's tree and the unpack locks; nothing of v2, no temporary file.
	entries, err := os.ReadDir(filepath.Join(e.cfg.Home, "images"))
	require.NoError(t, err)
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	want := []string{v1, v1 + ".lock", v2 + ".lock"}
	sort.Strings(want)
	assert.Equal(t, want, names)
}
