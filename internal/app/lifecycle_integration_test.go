package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

func (e *env) lifecycle(apply bool) contract.LifecycleResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: contract.TaskQueue}, contract.WorkflowLifecycle,
		contract.LifecycleInput{Apply: apply})
	require.NoError(e.t, err)
	var res contract.LifecycleResult
	require.NoError(e.t, run.Get(ctx, &res))
	return res
}

// With a real worker, catalog and local provider: the lifecycle sweep keeps
// the live image and deprecates an unused one; a rollout of the deprecated
// image is refused before anything is provisioned, and goes through with
// allowDeprecated; a later rule deletes an unused image's archive and SBOM and
// leaves its tombstone, while the images deployed stay (live, retained).
func TestLifecycleDeprecatesAndDeletesWithAWorker(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	cat := e.deps.Catalog
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	live, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	_, err = cat.SetLifecycle(ctx, contract.LifecycleRule{Service: "hello", DeprecateAfter: contract.Duration(time.Nanosecond)})
	require.NoError(t, err)

	dry := e.lifecycle(false)
	assert.True(t, dry.DryRun)
	assert.Equal(t, "dry run: would deprecate 1 ["+v2+"], delete 0 []; kept 1", dry.Summary)
	img, err := cat.Get(ctx, v2)
	require.NoError(t, err)
	assert.Nil(t, img.Deprecated, "a dry run marks nothing")

	res := e.lifecycle(true)
	assert.Equal(t, []string{v2}, res.Deprecated)
	img, err = cat.Get(ctx, v2)
	require.NoError(t, err)
	require.NotNil(t, img.Deprecated)
	assert.Equal(t, "lifecycle rule hello#1", img.Deprecated.Rule)

	_, err = e.rollout(e.spec(v2))
	require.Error(t, err, "a rollout of a deprecated image fails")
	assert.Contains(t, err.Error(), "image "+v2+" is deprecated by lifecycle rule hello#1 since")
	assert.Contains(t, err.Error(), "--allow-deprecated")
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{live.FleetID: 3}, byFleet, "nothing was provisioned")
	assert.Equal(t, "hello from v1", e.get())

	_, err = e.rollout(e.spec(v2, func(r *spec.Rollout) { r.Image.AllowDeprecated = true }))
	require.NoError(t, err, "allowDeprecated rolls the deprecated image out")
	assert.Equal(t, "hello from v2", e.get())

	v3 := e.importImage("v2slow") // a third image, never deployed
	v3img, err := cat.Get(ctx, v3)
	require.NoError(t, err)
	_, err = cat.SetLifecycle(ctx, contract.LifecycleRule{Service: "hello", DeleteAfter: contract.Duration(time.Nanosecond)})
	require.NoError(t, err)
	res = e.lifecycle(true)
	assert.Equal(t, []string{v3}, res.Deleted, "%s", res.Summary)
	kept := map[string]string{}
	for _, d := range res.Decisions {
		kept[d.ImageID] = d.Action + ": " + d.Why
	}
	assert.Equal(t, "keep: live in test", kept[v2])
	assert.Equal(t, "keep: within the rollback retain (5) of test", kept[v1])
	gone, err := cat.Get(ctx, v3)
	require.NoError(t, err, "the record stays")
	require.NotNil(t, gone.Deleted)
	assert.Equal(t, "lifecycle rule hello#2", gone.Deleted.Rule)
	_, err = cat.SBOM(ctx, v3)
	assert.Error(t, err, "the SBOM is gone")
	r, err := cat.OpenArchive(ctx, v3img)
	if err == nil {
		r.Close()
	}
	assert.Error(t, err, "the archive is gone")
}
