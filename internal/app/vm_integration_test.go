package app

import (
	"context"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/vmimage"
)

// TestVMBakeAndBlueGreenOfTwoVMs bakes examples/hello/bake-vm.yaml (v1, then
// v2) into VM images through the Bake workflow, rolls v1 out as a fleet of 2
// real VMs (QEMU under TCG, 128 MB each) on the qemu provider, then v2 as a
// canary of 2 VMs with examples/hello/canary-vm.yaml's steps (50%, the
// router's error rate, an approve) and v1 again blue/green, through the
// router, with requests flowing all along: none fails, and during the canary's
// pause the router answers with both versions. Then what the status commands
// read names v1's new fleet of 2 VMs, and the reaper finds a VM fleet
// provisioned outside any rollout, lists it on a dry run and terminates it
// with apply, leaving the serving fleet alone.
func TestVMBakeAndBlueGreenOfTwoVMs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.useQemu() // the same worker, with the qemu provider for rollouts
	deps := e.deps

	bakeVM := func(version string) contract.Image {
		res, err := e.bake(helloVMBake(t, version, nil))
		requireOK(t, err)
		img, err := deps.Catalog.Get(ctx, res.ImageID)
		require.NoError(t, err)
		require.NotEmpty(t, img.Artifacts[vmimage.ArtifactDisk], "a format: vm image records its disk")
		return img
	}
	start := time.Now()
	v1, v2 := bakeVM("v1"), bakeVM("v2")
	t.Logf("two VM bakes: %s", time.Since(start).Round(time.Millisecond))

	vmSpec := func(img contract.Image, version string, mutate ...func(*spec.Rollout)) spec.Rollout {
		return e.spec(img.ID, append([]func(*spec.Rollout){func(r *spec.Rollout) {
			r.Service, r.Provider = "hello-vm", "qemu"
			r.Fleet.Size = 2
			r.Health.Timeout = contract.Duration(3 * time.Minute)
			r.Checks = []contract.Check{{Path: "/", ExpectBody: version}}
		}}, mutate...)...)
	}
	start = time.Now()
	res1, err := e.rolloutWithin(vmSpec(v1, "v1"), 5*time.Minute)
	requireOK(t, err)
	t.Logf("rollout of 2 VMs (v1): %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, "hello from v1", e.get())

	// Load through the router from here on: one client, a request every 20 ms
	// or so (a tight loop would compete with the emulated VMs for the CPU).
	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: 1, ThinkTime: 20 * time.Millisecond})
	t.Cleanup(func() { load.Stop() })

	// A canary of v2 with the steps of examples/hello/canary-vm.yaml.
	_, file, _, _ := runtime.Caller(0)
	canary, err := spec.LoadRollout(filepath.Join(filepath.Dir(file), "..", "..", "examples", "hello", "canary-vm.yaml"))
	require.NoError(t, err)
	start = time.Now()
	load.Mark("canary")
	run, err := rollouts.Start(ctx, e.client, vmSpec(v2, "v2", func(r *spec.Rollout) {
		r.Strategy, r.Analyses = canary.Strategy, canary.Analyses
	}), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	e.waitProgressOf("hello-vm", 5*time.Minute, "wait for an approve at 50%", func(st rollouts.Status) bool {
		return st.Progress.Phase == contract.PhasePaused
	})
	load.Mark("split")
	e.waitRequests(load, 40)
	load.Mark("approved")
	require.NoError(t, rollouts.Decide(ctx, e.client, "hello-vm", "test", contract.UpdateApprove, "integration-test", "v2 answers fine"))
	var res2 contract.RolloutResult
	requireOK(t, run.Get(ctx, &res2))
	t.Logf("canary of 2 VMs (v2): %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, []string{res1.FleetID}, res2.Decommissioned)
	load.Mark("v2")
	e.waitRequests(load, 20)

	// v1 again, blue/green (as redeploying the previous version does).
	start = time.Now()
	load.Mark("blue/green")
	res3, err := e.rolloutWithin(vmSpec(v1, "v1"), 5*time.Minute)
	requireOK(t, err)
	load.Mark("v1")
	e.waitRequests(load, 20)
	rep := load.Stop()
	t.Logf("blue/green to 2 VMs (v1): %s; load: %s", time.Since(start).Round(time.Millisecond), rep.Total.String())
	assert.Zero(t, rep.Total.Failures(), "requests failed during the canary or the blue/green switch: %s", rep.Total.String())
	assert.Equal(t, rep.Total.Requests, rep.Total.Status[http.StatusOK], "every answer is a 200: %v", rep.Total.Status)
	split, _ := rep.Phase("split")
	t.Logf("answers while the canary waits at 50%%: %v", split.Bodies)
	assert.Positive(t, split.Bodies["hello from v1"], "at 50%% the router sends some requests to v1: %v", split.Bodies)
	assert.Positive(t, split.Bodies["hello from v2"], "at 50%% the router sends some requests to v2: %v", split.Bodies)
	assert.Equal(t, split.Requests, split.Bodies["hello from v1"]+split.Bodies["hello from v2"], "%v", split.Bodies)
	for phase, body := range map[string]string{"v2": "hello from v2", "v1": "hello from v1"} {
		p, _ := rep.Phase(phase)
		assert.Equal(t, map[string]int{body: p.Requests}, p.Bodies, "once the %s rollout ended, only %s answers", phase, phase)
	}
	assert.Equal(t, []string{res2.FleetID}, res3.Decommissioned)
	byFleet, routers := e.instances()
	assert.Equal(t, map[string]int{res3.FleetID: 2}, byFleet, "only the new v1 fleet's two VMs may run")
	assert.Equal(t, 1, routers)

	start = time.Now()
	// What `imago status` reads: the inventory's live deployment, v1 on its new fleet.
	live, err := deps.Catalog.Live(ctx, "hello-vm", "test")
	require.NoError(t, err)
	assert.Equal(t, v1.ID, live.ImageID)
	assert.Equal(t, res3.FleetID, live.FleetID)
	// What `imago rollout status` reads: the rollout's fleet and its 2 instances.
	st, err := rollouts.Get(ctx, e.client, "hello-vm", "test")
	require.NoError(t, err)
	require.NotNil(t, st.Progress)
	assert.Equal(t, res3.FleetID, st.Progress.NewFleet)
	assert.Equal(t, 2, st.Progress.Instances)
	// The provider's view of that fleet: 2 running VMs, each a QEMU process.
	fleet, err := deps.Provider.Describe(ctx, res3.FleetID)
	require.NoError(t, err)
	require.Len(t, fleet.Instances, 2)
	for _, in := range fleet.Instances {
		assert.Equal(t, contract.InstanceRunning, in.State, "%+v", in)
		assert.NotEmpty(t, in.Address)
		assert.Positive(t, in.PID)
	}

	// A VM fleet nothing references, as a rollout that died before cleaning up
	// leaves one (1 VM, from v2's image: no new bake).
	orphan, err := deps.Provider.Provision(ctx, contract.ProvisionRequest{
		Token: "left-behind-vm", Service: "hello-vm", Environment: "test", ImageID: v2.ID, Size: 1,
	})
	require.NoError(t, err)
	dry := e.reap(false)
	require.Len(t, dry.Found.Orphans, 1, "%+v", dry.Found)
	assert.Equal(t, orphan.ID, dry.Found.Orphans[0].FleetID)
	assert.Empty(t, dry.Terminated)
	assert.Contains(t, dry.Summary, "dry run: would terminate 1 leaked fleets ["+orphan.ID+"]")
	byFleet, _ = e.instances()
	assert.Equal(t, map[string]int{res3.FleetID: 2, orphan.ID: 1}, byFleet, "a dry run terminates nothing")
	applied := e.reap(true)
	assert.Equal(t, []string{orphan.ID}, applied.Terminated)
	byFleet, _ = e.instances()
	assert.Equal(t, map[string]int{res3.FleetID: 2}, byFleet, "the orphan's VM is gone; the serving fleet runs")
	assert.Equal(t, "hello from v1", e.get())
	t.Logf("status reads and the reaper on an orphaned VM: %s", time.Since(start).Round(time.Millisecond))
}

// requireOK fails the test with the workflow's reason when err is not nil.
func requireOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s", rollouts.Reason(err))
	}
}
