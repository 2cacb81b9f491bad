package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// bakeTime gives a rollout a bake time of d on router analysis errors (every
// second, at most 5% errors).
func bakeTime(d time.Duration) func(*spec.Rollout) {
	return func(r *spec.Rollout) {
		r.Analyses = map[string]contract.Analysis{"errors": {Provider: "router", Metric: "errorRate", Max: f64(0.05),
			Interval: contract.Duration(time.Second), MinRequests: 20}}
		r.BakeTime = &contract.BakeTime{Duration: contract.Duration(d), Analysis: "errors"}
	}
}

// setRoutes counts the route switches a run made: its SetRoute activities.
func (e *env) setRoutes(workflowID, runID string) int {
	it := e.client.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == contract.ActivitySetRoute {
			n++
		}
	}
	return n
}

// Under load, with the router's real analysis: a good build passes its bake
// time and is decommissioned into; a build that starts failing once it takes
// all traffic is rolled back during its bake time with one route switch back
// to the old fleet, which was still warm, and the failed measurement is in
// the rollout's result.
func TestBakeTimePassesAGoodBuildAndRollsBackOneThatStartsFailing(t *testing.T) {
	e := newEnv(t)
	ctx, v2, load := e.v1ServingUnderLoad(8)

	good, err := e.rollout(e.spec(v2, bakeTime(3*time.Second)))
	require.NoError(t, err)
	e.recordHistory("rollout-bake-time-passed", e.last.GetID(), e.last.GetRunID())
	require.NotNil(t, good.BakeTime)
	assert.Equal(t, analysis.PhaseSuccessful, good.BakeTime.Phase, "%+v", good.BakeTime)
	assert.Equal(t, 3, good.BakeTime.Counts.Successful, "a measurement every second for 3s")
	assert.Nil(t, good.BakeTime.Failed)

	// v3 answers its first 300 requests (smoke checks included), then half fail.
	bad := e.importDir(buildHello(t, "v3bad", "-X main.version=v3 -X main.failRate=0.5 -X main.failAfter=300"))
	load.Mark("v3")
	_, err = e.rollout(e.spec(bad, bakeTime(time.Minute)))
	require.Error(t, err)
	e.recordHistory("rollout-bake-time-rolled-back", e.last.GetID(), e.last.GetRunID())
	assert.Contains(t, rollouts.Reason(err), "rolled back automatically: bake-time analysis errors failed")
	res := rollouts.ResultOf(err) // what the CLI's -o json and the API's done event show
	require.NotNil(t, res, "the result travels in the failure's details: %v", err)
	require.NotNil(t, res.BakeTime)
	require.NotNil(t, res.BakeTime.Failed, "the failed measurement: %+v", res.BakeTime)
	assert.Equal(t, analysis.PhaseFailed, res.BakeTime.Failed.Phase)
	require.NotNil(t, res.BakeTime.Failed.Value)
	assert.Greater(t, *res.BakeTime.Failed.Value, 0.05, "the error rate that failed: %s", res.BakeTime.Failed.Message)
	assert.Equal(t, 2, e.setRoutes(e.last.GetID(), e.last.GetRunID()), "two route switches: the cutover, and one back")

	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseRolledBack, st.Progress.Phase)
	phases := map[contract.Phase]bool{}
	for _, ev := range st.Progress.Events {
		phases[ev.Phase] = true
	}
	assert.True(t, phases[contract.PhaseBakeTime], "the rollout showed its bake time: %v", phases)

	load.Mark("after rollback")
	e.waitRequests(load, 500)
	rep := load.Stop()
	after, _ := rep.Phase("after rollback")
	assert.Zero(t, after.Failures(), "after the rollback no request fails: %s", after.String())
	assert.Equal(t, after.Requests, after.Bodies["hello from v2"], "v2 serves again, alone")
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{good.FleetID: 3}, byFleet, "the bad fleet is torn down")
}
