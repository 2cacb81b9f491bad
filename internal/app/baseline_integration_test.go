package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// baselineCanary is a canary with a baseline fleet: 20% to the canary, 20% to
// a baseline of v1, 60% to v1's fleet, then a compare of the canary's latency
// and errors with the baseline's over 6 intervals of a second. p50 is
// critical and tolerates twice the baseline (100%): hello answers in a few
// milliseconds on a loaded machine, and the slow build adds 30 ms to each.
func baselineCanary(r *spec.Rollout) {
	r.Checks = nil
	r.Strategy = contract.Strategy{Type: contract.Canary, Baseline: true, Steps: []contract.Step{{SetWeight: ip(20)}, {Analysis: "judge"}}}
	r.Analyses = map[string]contract.Analysis{"judge": {Kind: contract.AnalysisCompare, Provider: "router",
		Interval: contract.Duration(time.Second), Count: 6, MinRequests: 5,
		Metrics: []contract.CompareMetric{
			{Metric: "p50", Direction: "increase", Tolerance: "100%", Critical: true},
			{Metric: "p99", Direction: "increase", Tolerance: "100%"},
			{Metric: "errorRate", Direction: "increase", Tolerance: "10%"},
		}}}
}

// runBaselineCanary rolls v1 out, puts it under load, and rolls next out as
// a baseline canary; it returns v1's fleet, the rollout's error and its status.
func (e *env) runBaselineCanary(name, next string) (string, rollouts.Status, error) {
	e.t.Helper()
	v1 := e.importImage("v1")
	res1, err := e.rollout(e.spec(v1))
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: 8})
	defer load.Stop()

	run, err := rollouts.Start(ctx, e.client, e.spec(next, baselineCanary), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(e.t, err)
	// While the analysis runs, the baseline is a fleet of v1's image with v1's
	// size, labelled as the baseline, taking the canary's share.
	e.waitProgress("start the compare", func(st rollouts.Status) bool { return st.Progress.Phase == contract.PhaseAnalyzing })
	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(e.t, err)
	base := st.Progress.BaselineFleet
	require.NotEmpty(e.t, base, "progress shows the baseline fleet")
	f, err := e.deps.Provider.Describe(ctx, base)
	require.NoError(e.t, err)
	assert.Equal(e.t, v1, f.ImageID, "the baseline runs the live image")
	assert.Len(e.t, f.Instances, 3, "the baseline has the canary's size")
	assert.Equal(e.t, contract.LabelRoleBaseline, f.Labels[contract.LabelRole])
	weights := map[string]int{}
	for _, w := range st.Progress.Weights {
		weights[w.FleetID] = w.Weight
	}
	assert.Equal(e.t, map[string]int{st.Progress.NewFleet: 20, base: 20, res1.FleetID: 60}, weights)

	err = run.Get(ctx, nil)
	e.recordHistory(name, run.GetID(), run.GetRunID())
	st, gerr := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(e.t, gerr)
	assert.Equal(e.t, base, st.Progress.BaselineFleet)

	// The baseline is gone, whatever the outcome: no fleet of the provider has its role.
	fleets, lerr := e.deps.Provider.ListFleets(ctx, provider.Filter{})
	require.NoError(e.t, lerr)
	for _, f := range fleets {
		assert.NotEqual(e.t, contract.LabelRoleBaseline, f.Labels[contract.LabelRole], "baseline fleet %s is left", f.ID)
	}
	byFleet, _ := e.instances()
	assert.NotContains(e.t, byFleet, base, "no instance of the baseline runs")
	return res1.FleetID, st, err
}

// judgment returns the compare's judgment from the status, and checks that
// the web UI's current details show it.
func (e *env) judgment(st rollouts.Status) *contract.Judgment {
	e.t.Helper()
	require.Len(e.t, st.Progress.Analyses, 1)
	an := st.Progress.Analyses[0]
	require.NotNil(e.t, an.Judgment, "status has the judgment: %+v", an)
	assert.Equal(e.t, st.Progress.BaselineFleet, an.BaselineFleetID)
	val, err := e.client.QueryWorkflow(context.Background(), st.WorkflowID, st.RunID, "__temporal_workflow_metadata")
	require.NoError(e.t, err)
	var meta sdkpb.WorkflowMetadata
	require.NoError(e.t, val.Get(&meta))
	assert.Contains(e.t, meta.GetCurrentDetails(), "judgment: score ", "the UI's details show the judgment")
	assert.Contains(e.t, meta.GetCurrentDetails(), "| p50 | ")
	return an.Judgment
}

// A v3 that answers 30 ms later than v1 is judged High on p50 against a
// baseline of v1, and rolled back; the baseline and the canary are torn down
// and v1 serves alone.
func TestBaselineCanaryOfASlowerVersionIsRolledBackByTheJudgment(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	slow := e.importDir(buildHello(t, "v3slow", "-X main.version=v3 -X main.latency=30ms"))
	v1Fleet, st, err := e.runBaselineCanary("rollout-canary-baseline-rolled-back", slow)
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "rolled back automatically: analysis judge failed: judgment: score ")
	assert.Contains(t, rollouts.Reason(err), "(fail)")
	assert.Equal(t, contract.PhaseRolledBack, st.Progress.Phase)

	j := e.judgment(st)
	assert.Equal(t, contract.JudgmentFail, j.Decision)
	p50 := j.Metrics[0]
	assert.Equal(t, "p50", p50.Name)
	assert.Equal(t, contract.MetricHigh, p50.Verdict, "%+v", p50)
	assert.Greater(t, p50.CanaryMedian, p50.BaselineMedian)
	assert.Less(t, p50.P, 0.05)
	assert.GreaterOrEqual(t, p50.CanarySamples, 4)

	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{v1Fleet: 3}, byFleet, "v1's fleet alone runs: canary and baseline are torn down")
	assert.Equal(t, "hello from v1", strings.TrimSpace(e.get()))
}

// A v2 that answers as fast as v1 passes the judgment; the baseline is torn
// down at cutover and v2 serves alone.
func TestBaselineCanaryOfAnEqualVersionPasses(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v2 := e.importImage("v2")
	_, st, err := e.runBaselineCanary("rollout-canary-baseline-passed", v2)
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseSucceeded, st.Progress.Phase)
	j := e.judgment(st)
	assert.Equal(t, contract.JudgmentPass, j.Decision, "%+v", j)
	for _, m := range j.Metrics {
		assert.Equal(t, contract.MetricPass, m.Verdict, "%+v", m)
	}
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{st.Progress.NewFleet: 3}, byFleet, "v2's fleet alone runs")
	assert.Equal(t, "hello from v2", strings.TrimSpace(e.get()))
}
