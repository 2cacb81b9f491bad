package app

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

func buildHello(t *testing.T, name, ldflags string) string {
	dir := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", filepath.Join(dir, "hello"), "github.com/imago/imago/examples/hello").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return dir
}

func (e *env) importDir(dir string) string {
	img, err := e.deps.Catalog.Import(context.Background(), dir, "hello", []string{"./hello"}, nil)
	require.NoError(e.t, err)
	return img.ID
}

// waitStep polls the progress query until the rollout reaches a canary step.
func (e *env) waitStep(step string) {
	e.waitProgress("pause at step "+step, func(st rollouts.Status) bool {
		return st.Progress.Step == step && st.Progress.Phase == contract.PhasePaused
	})
}

func f64(v float64) *float64 { return &v }
func ip(v int) *int          { return &v }

// A canary 10 → 50 → 100 under continuous load: at each step the router's
// measured split is within 5 points of the weight, and no request fails.
func TestCanaryUnderLoadSplitsTrafficByWeight(t *testing.T) {
	e := newEnv(t)
	ctx, v2, load := e.v1ServingUnderLoad(16)
	r := e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{
			{SetWeight: ip(10)}, {Pause: &contract.Pause{}}, {SetWeight: ip(50)}, {Pause: &contract.Pause{}},
		}}
	})
	run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)

	for _, step := range []struct {
		weight int
		at     string
	}{{10, "2/4 pause (until approved)"}, {50, "4/4 pause (until approved)"}} {
		e.waitStep(step.at)
		load.Mark(fmt.Sprintf("weight %d", step.weight))
		e.waitRequests(load, 2000)
		p := load.Snapshot()
		share := 100 * float64(p.Bodies["hello from v2"]) / float64(p.Requests)
		assert.InDelta(t, step.weight, share, 5, "measured v2 share at weight %d: %.1f%% of %d requests", step.weight, share, p.Requests)
		require.NoError(t, rollouts.Decide(ctx, e.client, "hello", "test", contract.UpdateApprove, "integration-test", "split verified"))
	}
	var res contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res))
	e.recordHistory("rollout-canary-with-approvals", run.GetID(), run.GetRunID())
	load.Mark("after")
	e.waitRequests(load, 500)
	rep := load.Stop()
	assert.Zero(t, rep.Total.Failures(), "no request may fail during a canary: %s", rep.Total.String())
	after, _ := rep.Phase("after")
	assert.Equal(t, after.Requests, after.Bodies["hello from v2"], "after the canary everything is v2")
}

// A v2 that answers 500 on a share of requests is rolled back automatically by
// router analysis; after that every request is served by v1.
func TestFailingCanaryIsRolledBackByRouterAnalysis(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v1 := e.importImage("v1")
	bad := e.importDir(buildHello(t, "v2bad", "-X main.version=v2 -X main.failRate=0.3"))
	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: 8})
	_, err = e.rollout(e.spec(bad, func(r *spec.Rollout) {
		r.Checks = nil // the smoke check would pass on most requests anyway
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: ip(50)}, {Analysis: "errors"}, {SetWeight: ip(100)}}}
		r.Analyses = map[string]contract.Analysis{"errors": {Provider: "router", Metric: "errorRate", Max: f64(0.05),
			Interval: contract.Duration(time.Second), Count: 3, MinRequests: 20}}
	}))
	require.Error(t, err)
	e.recordHistory("rollout-canary-auto-rollback", e.last.GetID(), e.last.GetRunID())
	assert.Contains(t, rollouts.Reason(err), "rolled back automatically: analysis errors failed")

	load.Mark("after rollback")
	e.waitRequests(load, 1000)
	rep := load.Stop()
	after, _ := rep.Phase("after rollback")
	assert.Zero(t, after.Failures(), "after the rollback no request may fail: %s", after.String())
	assert.Equal(t, after.Requests, after.Bodies["hello from v1"], "after the rollback every request is served by v1")
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res1.FleetID: 3}, byFleet, "the bad fleet is torn down")

	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseRolledBack, st.Progress.Phase)
	live, err := e.deps.Catalog.Live(ctx, "hello", "test")
	require.NoError(t, err)
	assert.Equal(t, v1, live.ImageID, "the inventory says v1 is live")
}

// v1ServingUnderLoad starts the worker, rolls v1 out and starts clients load
// clients on its router (stopped when the test ends); it returns the context
// they run in, v2's image and the load.
func (e *env) v1ServingUnderLoad(clients int) (context.Context, string, *loadgen.Run) {
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	_, err := e.rollout(e.spec(v1))
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	return ctx, v2, loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: clients})
}

// waitRequests polls until the current load phase has at least n requests.
func (e *env) waitRequests(load *loadgen.Run, n int) {
	deadline := time.Now().Add(time.Minute)
	for load.Snapshot().Requests < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("load phase never reached %d requests: %s", n, load.Snapshot().String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A rolling rollout of 3 instances in waves of 1 under load: no request fails, the
// old fleet shrinks as the new one grows, and in the end only v2 serves.
func TestRollingUnderLoadReplacesTheFleetWaveByWave(t *testing.T) {
	e := newEnv(t)
	ctx, v2, load := e.v1ServingUnderLoad(8)
	res, err := e.rollout(e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Rolling, Waves: "1"}
	}))
	require.NoError(t, err)
	e.recordHistory("rollout-rolling-by-count", e.last.GetID(), e.last.GetRunID())
	load.Mark("after")
	e.waitRequests(load, 300)
	rep := load.Stop()
	assert.Zero(t, rep.Total.Failures(), "no request may fail during a rolling rollout: %s", rep.Total.String())
	after, _ := rep.Phase("after")
	assert.Equal(t, after.Requests, after.Bodies["hello from v2"])
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res.FleetID: 3}, byFleet)

	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	var resized int
	for _, ev := range st.Progress.Events {
		if strings.Contains(ev.Message, "now has") {
			resized++
		}
	}
	assert.Equal(t, 4, resized, "two waves grow the new fleet (2, 3) and shrink the old one (2, 1)")
}

// stoppedRollout is a v2 rollout that alice stopped (see stopAt).
type stoppedRollout struct {
	v1, v2  string // the images
	v1Fleet string // the fleet of v1, which serves again
	reason  string // why the v2 rollout ended
}

// stopAt rolls out v1, then a rollout of v2 (mutate) which alice stops with
// update (abort or rollback) once it reaches phase, after there(v1's fleet) ran;
// it records the v2 rollout's history as name. In the end v1 serves alone, with
// its 3 instances, and v2's fleet is torn down.
func (e *env) stopAt(name string, phase contract.Phase, update string, mutate func(*spec.Rollout), there func(v1Fleet string)) stoppedRollout {
	e.t.Helper()
	s := stoppedRollout{v1: e.importImage("v1"), v2: e.importImage("v2")}
	res1, err := e.rollout(e.spec(s.v1))
	require.NoError(e.t, err)
	s.v1Fleet = res1.FleetID
	ctx := context.Background()
	run, err := rollouts.Start(ctx, e.client, e.spec(s.v2, mutate), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(e.t, err)
	e.waitPhase(phase)
	there(s.v1Fleet)
	require.NoError(e.t, rollouts.Decide(ctx, e.client, "hello", "test", update, "alice", "latency regression"))
	err = run.Get(ctx, nil)
	require.Error(e.t, err)
	e.recordHistory(name, run.GetID(), run.GetRunID())
	s.reason = rollouts.Reason(err)
	assert.Equal(e.t, "hello from v1", e.get())
	byFleet, _ := e.instances()
	assert.Equal(e.t, map[string]int{s.v1Fleet: 3}, byFleet, "v1's fleet serves with its 3 instances; v2's is torn down")
	return s
}

func soakAnHour(r *spec.Rollout) {
	d := contract.Duration(time.Hour)
	r.Soak = &d
}

// Rollback during the soak is one route switch back to the warm old fleet; after
// the rollout ended, rollback starts a new rollout of the previous image.
func TestRollbackDuringSoakAndAfterDecommission(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	s := e.stopAt("rollout-rollback-during-soak", contract.PhaseSoaking, contract.UpdateRollback, soakAnHour, func(string) {
		assert.Equal(t, "hello from v2", e.get())
	})
	assert.Contains(t, s.reason, "rolled back by alice: latency regression")

	// Now v2 fully, then roll back after decommission: a new rollout of v1.
	ctx := context.Background()
	_, err := e.rollout(e.spec(s.v2))
	require.NoError(t, err)
	assert.Equal(t, "hello from v2", e.get())
	back, prev, err := rollouts.RollbackToPrevious(ctx, e.client, e.deps.Catalog, "hello", "test", "alice")
	require.NoError(t, err)
	assert.Equal(t, s.v1, prev.Image.ID)
	var res contract.RolloutResult
	require.NoError(t, back.Get(ctx, &res))
	e.recordHistory("rollout-rollback-to-previous", back.GetID(), back.GetRunID())
	assert.Equal(t, s.v1, res.ImageID)
	assert.Equal(t, "hello from v1", e.get())
	// The rollback found v1 itself and says so: in its progress and its history.
	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	require.NotNil(t, st.Progress)
	assert.Equal(t, "rollback", st.Progress.Action)
	assert.Equal(t, s.v2, st.Progress.RollbackFrom)
	assert.Equal(t, s.v1, st.Progress.ImageID)
	assert.True(t, slices.ContainsFunc(st.Progress.Events, func(ev contract.ProgressEvent) bool {
		return ev.Message == fmt.Sprintf("rolling back from %s to %s, the previous deployable image", s.v2, s.v1)
	}), "events: %+v", st.Progress.Events)
	var scheduled []string
	for _, ev := range e.history(back.GetID(), back.GetRunID()) {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled = append(scheduled, a.GetActivityType().GetName())
		}
	}
	assert.Contains(t, scheduled, "PreviousImage", "the rollback's history shows how it found its image")
	hist, err := e.deps.Catalog.History(ctx, "hello", "test", 10)
	require.NoError(t, err)
	require.NotEmpty(t, hist)
	assert.Equal(t, "rollback", hist[0].Action)
	assert.Equal(t, contract.OutcomeSucceeded, hist[0].Outcome)
	assert.Equal(t, contract.OutcomeRolledBack, hist[2].Outcome)
}

// An abort at the approval gate, before any traffic moved, tears the new fleet
// down: v1 never stopped serving, and the inventory says aborted.
func TestAbortAtTheApprovalGateLeavesTheOldFleetServing(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	s := e.stopAt("rollout-aborted-at-approval", contract.PhaseAwaitingApproval, contract.UpdateAbort, func(r *spec.Rollout) {
		r.Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(time.Hour)}
	}, func(string) {
		assert.Equal(t, "hello from v1", e.get(), "no traffic moved before the approval")
	})
	assert.Contains(t, s.reason, "aborted by alice: latency regression")
	hist, err := e.deps.Catalog.History(context.Background(), "hello", "test", 1)
	require.NoError(t, err)
	require.Len(t, hist, 1)
	assert.Equal(t, contract.OutcomeAborted, hist[0].Outcome)
}

// A rolling rollout shrinks the old fleet as the new one grows. Rolled back
// during the soak, it grows the old fleet back to its size, then routes all
// traffic to it and tears the new fleet down.
func TestRollingRolledBackDuringSoakGrowsTheOldFleetBack(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	s := e.stopAt("rollout-rolling-rolled-back", contract.PhaseSoaking, contract.UpdateRollback, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Rolling, Waves: "1"}
		soakAnHour(r)
	}, func(v1Fleet string) {
		assert.Equal(t, "hello from v2", e.get())
		byFleet, _ := e.instances()
		assert.Equal(t, 1, byFleet[v1Fleet], "the old fleet shrank to the one instance kept warm")
	})
	assert.Contains(t, s.reason, "rolled back by alice: latency regression")
}
