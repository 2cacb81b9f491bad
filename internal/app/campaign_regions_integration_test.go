package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// regionSpec is f.spec of svc in env's region: its own router address.
func (f *campaignFleet) regionSpec(svc, env, region, img, body string) spec.Rollout {
	// f.spec reads the router's address under svc/env: lend it the region's.
	key := svc + "/" + env
	saved, had := f.listen[key]
	f.listen[key] = f.listen[svc+"/"+contract.Place(env, region)]
	r := f.spec(svc, env, img, body)
	if delete(f.listen, key); had {
		f.listen[key] = saved
	}
	r.Target = &contract.Target{Region: region}
	require.NoError(f.e.t, r.Normalize())
	return r
}

// Two services deployed to two regions of prod (real rollouts: each region
// its own workflow, inventory and router on the local provider) and, for
// svc1, to prod without a region. A campaign whose ring names both regions
// rolls each service once per region, the region-less prod deployment
// untouched; each region's router serves v2, the inventory keeps the region.
func TestCampaignRollsEachServiceOncePerRegion(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	f := importCampaignServices(e, 2)
	regions := []string{"eu-west-1", "us-east-1"}
	var runs []client.WorkflowRun
	start := func(r spec.Rollout) {
		run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "integration-test"})
		require.NoError(t, err)
		runs = append(runs, run)
	}
	for _, svc := range f.services {
		for _, region := range regions {
			f.listen[svc+"/prod@"+region] = freeAddr(t)
			start(f.regionSpec(svc, "prod", region, f.v1[svc], "hello from"))
		}
	}
	f.listen["svc1/prod"] = freeAddr(t)
	start(f.spec("svc1", "prod", f.v1["svc1"], "hello from"))
	for _, run := range runs {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		require.NoError(t, run.Get(wctx, nil), run.GetID())
		cancel()
	}
	ids := map[string]bool{}
	for _, run := range runs {
		ids[run.GetID()] = true
	}
	assert.True(t, ids["rollout/prod@eu-west-1/svc1"] && ids["rollout/prod@us-east-1/svc2"] && ids["rollout/prod/svc1"], "%v", ids)

	c := contract.CampaignSpec{Name: "regions", Services: f.services, Image: contract.CampaignImage{Channel: "stable"},
		Rings: []contract.Ring{{Environments: []string{"prod"}, Regions: regions, Parallel: 2}},
	}
	run, err := campaigns.Start(ctx, e.client, c, "integration-test")
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var res contract.CampaignResult
	require.NoError(t, e.client.GetWorkflow(wctx, run.GetID(), "").Get(wctx, &res))
	assert.Equal(t, 4, res.Succeeded, res.Reason)
	assert.Equal(t, 0, res.Failed)
	require.Len(t, res.Rings, 1)
	got := map[string]int{}
	for _, tg := range res.Rings[0].Targets {
		got[tg.Service+" "+tg.Place()]++
		assert.Equal(t, "rollout/"+tg.Place()+"/"+tg.Service, tg.RolloutID)
	}
	assert.Equal(t, map[string]int{"svc1 prod@eu-west-1": 1, "svc1 prod@us-east-1": 1, "svc2 prod@eu-west-1": 1, "svc2 prod@us-east-1": 1}, got)

	for _, svc := range f.services {
		for _, region := range regions {
			place := contract.Place("prod", region)
			assert.Equal(t, "hello from v2", f.get(svc, place), "%s in %s", svc, place)
			hist, err := e.deps.Catalog.History(ctx, svc, place, 0)
			require.NoError(t, err)
			require.Len(t, hist, 2, "%s in %s: the first deployment and the campaign's", svc, place)
			assert.Equal(t, f.v2[svc], hist[0].ImageID)
			assert.Equal(t, region, hist[0].Region)
			assert.Equal(t, "prod", hist[0].Environment)
			var recorded spec.Rollout
			require.NoError(t, json.Unmarshal(hist[0].Spec, &recorded))
			assert.Equal(t, region, recorded.Region())
			assert.Equal(t, f.listen[svc+"/"+place], recorded.Listen)
		}
	}
	// prod without a region is its own deployment, not in the ring: untouched.
	assert.Equal(t, "hello from v1", f.get("svc1", "prod"))
	live, err := e.deps.Catalog.Live(ctx, "svc1", "prod")
	require.NoError(t, err)
	assert.Equal(t, f.v1["svc1"], live.ImageID)
	assert.Empty(t, live.Region)
	envs, err := e.deps.Catalog.Environments(ctx, "svc1")
	require.NoError(t, err)
	assert.Equal(t, []string{"prod", "prod@eu-west-1", "prod@us-east-1"}, envs)
	runsByID := e.rolloutRuns()
	for _, svc := range f.services {
		for _, region := range regions {
			assert.Equal(t, 2, runsByID[contract.RolloutWorkflowID(svc, contract.Place("prod", region))], "%s in %s: the first rollout and the campaign's", svc, region)
		}
	}
	assert.Equal(t, 1, runsByID["rollout/prod/svc1"])
}
