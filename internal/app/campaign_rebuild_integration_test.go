package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
)

// A campaign that selects by base and names no image channel rebuilds each
// service on the base's new image (a child Bake of the spec that built its
// image, which the catalog kept), then rolls what the bake made; run again,
// every bake is a cache hit and nothing is rolled.
func TestCampaignRebuildsEachServiceOnTheNewBaseOnceThenHitsTheCache(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	f := &campaignFleet{e: e, listen: map[string]string{}, v1: map[string]string{}}

	base, baseMain := copiedHelloBake(t, "base", "stable")
	b1, err := e.bake(base)
	require.NoError(t, err)
	f.services = []string{"api", "web", "worker"}
	for _, svc := range f.services {
		app, _ := copiedHelloBake(t, svc, "stable")
		app.Base = &contract.ImageRef{Service: "base", Channel: "stable"}
		// The image records its base, as a real one carries the base's layers.
		app.Provision = append(app.Provision, contract.ShellSteps(`echo "$IMAGO_BASE_IMAGE" > base-image`)...)
		app.Include = append(app.Include, "base-image")
		res, err := e.bake(app)
		require.NoError(t, err, svc)
		f.v1[svc] = res.ImageID
		f.listen[svc+"/staging"] = freeAddr(t)
		_, err = e.rolloutWithin(f.spec(svc, "staging", res.ImageID, "hello from v2"), 2*time.Minute)
		require.NoError(t, err, svc)
	}

	// A patched base moves base/stable.
	b2 := e.bakePatched(base, baseMain, b1)

	c := contract.CampaignSpec{Name: "base-rebuild", Select: &contract.CampaignSelect{Base: &contract.ImageRef{Service: "base", Channel: "stable"}},
		Rings: []contract.Ring{{Environments: []string{"staging"}, Parallel: 3}}, ErrorBudget: contract.ErrorBudget{MaxFailed: 1}}
	runCampaign := func(record string) (contract.CampaignResult, campaigns.Run) {
		run, err := campaigns.Start(ctx, e.client, c, "integration-test")
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()
		var res contract.CampaignResult
		require.NoError(t, run.Get(wctx, &res))
		done, err := campaigns.Latest(ctx, e.client, c.Name)
		require.NoError(t, err)
		if record != "" {
			e.recordHistory(record, run.GetID(), run.GetRunID())
		}
		return res, done
	}

	res, done := runCampaign("campaign-rebuild")
	assert.Equal(t, 3, res.Succeeded, res.Reason)
	require.Len(t, done.Progress.Bakes, 3)
	rebuilt := map[string]string{}
	for _, b := range done.Progress.Bakes {
		assert.Equal(t, contract.TargetSucceeded, b.State, "%+v", b)
		assert.False(t, b.Cached, b.Service)
		assert.Equal(t, contract.BakeWorkflowID(b.Service, "stable"), b.BakeID)
		img, err := e.deps.Catalog.Get(ctx, b.ImageID)
		require.NoError(t, err)
		assert.Equal(t, b2.ImageID, img.Parent, "%s is rebuilt on the new base", b.Service)
		assert.NotEqual(t, f.v1[b.Service], b.ImageID)
		rebuilt[b.Service] = b.ImageID
	}
	for _, svc := range f.services {
		d, err := e.deps.Catalog.Live(ctx, svc, "staging")
		require.NoError(t, err)
		assert.Equal(t, rebuilt[svc], d.ImageID, "%s: the rebuilt image is live", svc)
		assert.Equal(t, "hello from v2", f.get(svc, "staging"))
		imgs, err := e.deps.Catalog.List(ctx, svc)
		require.NoError(t, err)
		assert.Len(t, imgs, 2, "%s: rebuilt once", svc)
	}

	// Again: every bake hits the cache, every rollout is already live.
	res, done = runCampaign("")
	assert.Equal(t, 0, res.Succeeded, res.Reason)
	assert.Equal(t, 3, res.Unchanged, res.Reason)
	for _, b := range done.Progress.Bakes {
		assert.Equal(t, contract.TargetSucceeded, b.State, "%+v", b)
		assert.True(t, b.Cached, "%s: a cache hit", b.Service)
		assert.Equal(t, rebuilt[b.Service], b.ImageID)
	}
	for _, svc := range f.services {
		imgs, err := e.deps.Catalog.List(ctx, svc)
		require.NoError(t, err)
		assert.Len(t, imgs, 2, "%s: nothing baked the second time", svc)
	}
}
