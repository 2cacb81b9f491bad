package app

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/proto"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// simImage imports a sim image of service hello answering version (see
// local.IsSimImage): thousands of instances in one process per fleet.
func (e *env) simImage(version string) string {
	dir := e.t.TempDir()
	require.NoError(e.t, os.WriteFile(filepath.Join(dir, "README"), []byte("sim image "+version+"\n"), 0o600))
	img, err := e.deps.Catalog.Import(context.Background(), dir, "hello", []string{local.SimEntrypoint},
		map[string]string{"version": version, local.SimKindLabel: local.SimKind})
	require.NoError(e.t, err)
	return img.ID
}

// historyStats returns the number of events of a run and the sum of their sizes
// as Temporal stores them (the limits are 51,200 events and 50 MB).
func (e *env) historyStats(id, runID string) (events int, bytes int64) {
	it := e.client.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		events++
		bytes += int64(proto.Size(ev))
	}
	return events, bytes
}

// Temporal warns at 10,240 events or 10 MB of history and terminates a run at
// 51,200 events or 50 MB; a terminated rollout never reverts. A rolling
// rollout's history must stay below the warnings whatever the fleet's size.
const (
	historyEventsWarning = 10240
	historyBytesWarning  = 10 << 20
)

func TestRolling1000SimInstancesAtTheDefaultWaveSize(t *testing.T)  { testRollingAtScale(t, 1000) }
func TestRolling10000SimInstancesAtTheDefaultWaveSize(t *testing.T) { testRollingAtScale(t, 10000) }

// testRollingAtScale replaces a fleet of size sim instances (v1) by v2 with
// the rolling strategy at its default wave size, then rolls v3 whose
// verification fails after the last wave. Each rolling history stays below
// Temporal's warning thresholds, v2 ends serving on size instances, and the
// failed v3 reverts: the route back on the whole v2 fleet, not split.
func testRollingAtScale(t *testing.T, size int) {
	// A sim host listens once per instance; Go raises its soft limit to the hard one.
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	require.Greater(t, lim.Max, uint64(size+1024),
		"a sim fleet of %d needs more open files than the hard limit allows (%d): raise it (ulimit -Hn, LimitNOFILE)", size, lim.Max)
	e := newEnv(t)
	e.startWorker()
	v1, v2, v3 := e.simImage("v1"), e.simImage("v2"), e.simImage("v3")
	ctx := context.Background()
	rolling := func(img string, mutate ...func(*spec.Rollout)) spec.Rollout {
		return e.spec(img, append([]func(*spec.Rollout){func(r *spec.Rollout) {
			r.Fleet.Size = size
			r.Strategy = contract.Strategy{Type: contract.Rolling} // waves: the default
			noSoak := contract.Duration(0)
			r.Soak = &noSoak
		}}, mutate...)...)
	}
	run := func(r spec.Rollout) (contract.RolloutResult, error) {
		start := time.Now()
		res, err := e.rolloutWithin(r, 10*time.Minute)
		events, bytes := e.historyStats(e.last.GetID(), e.last.GetRunID())
		t.Logf("rolling %d sim instances to %s: %d events, %.2f MB of history, %s",
			size, r.Image.ID, events, float64(bytes)/(1<<20), time.Since(start).Round(time.Millisecond))
		assert.Less(t, events, historyEventsWarning, "events in the history of a rolling rollout of %d instances", size)
		assert.Less(t, bytes, int64(historyBytesWarning), "bytes of the history of a rolling rollout of %d instances", size)
		return res, err
	}

	// The fleet v2 replaces, made and routed directly: what a rollout of v1 leaves.
	v1Fleet, err := e.deps.Provider.Provision(ctx, contract.ProvisionRequest{Token: "v1", Service: "hello", Environment: "test", ImageID: v1, Size: size})
	require.NoError(t, err)
	require.NoError(t, e.deps.Provider.SetRoute(ctx, contract.RouteKey{Service: "hello", Environment: "test"},
		contract.Route{Listen: e.listen, Backends: []contract.Backend{{FleetID: v1Fleet.ID, Weight: 100, Targets: v1Fleet.Addresses()}}}))
	require.Equal(t, "v1", e.get())

	res2, err := run(rolling(v2))
	require.NoError(t, err)
	assert.Equal(t, size, res2.Instances)
	assert.Equal(t, "v2", e.get())
	e.assertServing(res2.FleetID, size)
	assert.Equal(t, []string{res2.FleetID}, e.fleetIDs(), "v1's fleet was decommissioned")

	// v3 rolls to the last wave, then its verification fails: at least half
	// of the requests must fail, and none does. A trickle of requests gives it
	// some to count.
	stopTrickle := e.trickle()
	_, err = run(rolling(v3, func(r *spec.Rollout) {
		r.Analyses = map[string]contract.Analysis{"impossible": {Provider: "router", Metric: "errorRate", Min: f64(0.5),
			Interval: contract.Duration(time.Second), Count: 1, MinRequests: 1}}
		r.Verify = &contract.Verify{Analysis: "impossible"}
	}))
	stopTrickle()
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "rolled back automatically: analysis impossible failed")
	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseRolledBack, st.Progress.Phase)
	assert.Equal(t, "v2", e.get())
	e.assertServing(res2.FleetID, size)
	assert.Equal(t, []string{res2.FleetID}, e.fleetIDs(), "v3's fleet is torn down")
}

// trickle sends a request through the router every 20 ms until the returned
// function is called: enough for a router analysis to count, too few to slow
// a rollout down (a load generator's clients in a tight loop would).
func (e *env) trickle() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.listen+"/", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// assertServing checks that the router sends all traffic to every instance of
// fleetID, and that the fleet has want running instances.
func (e *env) assertServing(fleetID string, want int) {
	e.t.Helper()
	ctx := context.Background()
	route, err := e.deps.Provider.Route(ctx, contract.RouteKey{Service: "hello", Environment: "test"})
	require.NoError(e.t, err)
	require.Len(e.t, route.Backends, 1, "one fleet serves: %v", route.FleetIDs())
	assert.Equal(e.t, fleetID, route.Backends[0].FleetID)
	assert.Equal(e.t, 100, route.Backends[0].Weight)
	assert.Len(e.t, route.Backends[0].Targets, want, "the route sends traffic to every instance")
	f, err := e.deps.Provider.Describe(ctx, fleetID)
	require.NoError(e.t, err)
	running := 0
	for _, in := range f.Instances {
		if in.State == contract.InstanceRunning {
			running++
		}
	}
	assert.Equal(e.t, want, running, "running instances of %s", fleetID)
}
