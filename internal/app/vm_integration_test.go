package app

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/vmimage"
)

// TestVMBakeAndBlueGreenOfTwoVMs bakes examples/hello/bake-vm.yaml (v1, then
// v2) into VM images through the Bake workflow, then rolls out v1 and v2 as
// fleets of 2 real VMs (QEMU under TCG, 128 MB each) on the qemu provider,
// through the router, with requests flowing during the switch: none fails.
// Then what the status commands read names v2's fleet of 2 VMs, and the reaper
// finds a VM fleet provisioned outside any rollout, lists it on a dry run and
// terminates it with apply, leaving the serving fleet alone.
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

	vmSpec := func(img contract.Image, version string) spec.Rollout {
		return e.spec(img.ID, func(r *spec.Rollout) {
			r.Service, r.Provider = "hello-vm", "qemu"
			r.Fleet.Size = 2
			r.Health.Timeout = contract.Duration(3 * time.Minute)
			r.Checks = []contract.Check{{Path: "/", ExpectBody: version}}
		})
	}
	start = time.Now()
	res1, err := e.rolloutWithin(vmSpec(v1, "v1"), 5*time.Minute)
	requireOK(t, err)
	t.Logf("rollout of 2 VMs (v1): %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, "hello from v1", e.get())

	// Load through the router during the v2 rollout.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get("http://" + e.listen + "/")
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	start = time.Now()
	res2, err := e.rolloutWithin(vmSpec(v2, "v2"), 5*time.Minute)
	close(stop)
	wg.Wait()
	requireOK(t, err)
	t.Logf("blue/green to 2 VMs (v2): %s, %d requests, %d failed", time.Since(start).Round(time.Millisecond), ok.Load(), failed.Load())
	assert.Zero(t, failed.Load(), "requests failed during the blue/green switch")
	assert.Positive(t, ok.Load())
	assert.Equal(t, "hello from v2", e.get())
	assert.Equal(t, []string{res1.FleetID}, res2.Decommissioned)
	byFleet, routers := e.instances()
	assert.Equal(t, map[string]int{res2.FleetID: 2}, byFleet, "only v2's two VMs may run")
	assert.Equal(t, 1, routers)

	start = time.Now()
	// What `imago status` reads: the inventory's live deployment, v2 on its fleet.
	live, err := deps.Catalog.Live(ctx, "hello-vm", "test")
	require.NoError(t, err)
	assert.Equal(t, v2.ID, live.ImageID)
	assert.Equal(t, res2.FleetID, live.FleetID)
	// What `imago rollout status` reads: the rollout's fleet and its 2 instances.
	st, err := rollouts.Get(ctx, e.client, "hello-vm", "test")
	require.NoError(t, err)
	require.NotNil(t, st.Progress)
	assert.Equal(t, res2.FleetID, st.Progress.NewFleet)
	assert.Equal(t, 2, st.Progress.Instances)
	// The provider's view of that fleet: 2 running VMs, each a QEMU process.
	fleet, err := deps.Provider.Describe(ctx, res2.FleetID)
	require.NoError(t, err)
	require.Len(t, fleet.Instances, 2)
	for _, in := range fleet.Instances {
		assert.Equal(t, contract.InstanceRunning, in.State, "%+v", in)
		assert.NotEmpty(t, in.Address)
		assert.Positive(t, in.PID)
	}

	// A VM fleet nothing references, as a rollout that died before cleaning up
	// leaves one (1 VM, from v1's image: no new bake).
	orphan, err := deps.Provider.Provision(ctx, contract.ProvisionRequest{
		Token: "left-behind-vm", Service: "hello-vm", Environment: "test", ImageID: v1.ID, Size: 1,
	})
	require.NoError(t, err)
	dry := e.reap(false)
	require.Len(t, dry.Found.Orphans, 1, "%+v", dry.Found)
	assert.Equal(t, orphan.ID, dry.Found.Orphans[0].FleetID)
	assert.Empty(t, dry.Terminated)
	assert.Contains(t, dry.Summary, "dry run: would terminate 1 leaked fleets ["+orphan.ID+"]")
	byFleet, _ = e.instances()
	assert.Equal(t, map[string]int{res2.FleetID: 2, orphan.ID: 1}, byFleet, "a dry run terminates nothing")
	applied := e.reap(true)
	assert.Equal(t, []string{orphan.ID}, applied.Terminated)
	byFleet, _ = e.instances()
	assert.Equal(t, map[string]int{res2.FleetID: 2}, byFleet, "the orphan's VM is gone; the serving fleet runs")
	assert.Equal(t, "hello from v2", e.get())
	t.Logf("status reads and the reaper on an orphaned VM: %s", time.Since(start).Round(time.Millisecond))
}

// requireOK fails the test with the workflow's reason when err is not nil.
func requireOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s", rollouts.Reason(err))
	}
}
