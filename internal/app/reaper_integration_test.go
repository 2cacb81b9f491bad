package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

func (e *env) reap(apply bool) contract.ReaperResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: contract.TaskQueue}, workflows.Reaper,
		contract.ReaperInput{Apply: apply, Grace: time.Millisecond})
	require.NoError(e.t, err)
	e.last = run
	var res contract.ReaperResult
	require.NoError(e.t, run.Get(ctx, &res))
	return res
}

// The reaper finds a fleet that nothing references — as a rollout that died
// before cleaning up leaves one — reports it on a dry run, terminates it with
// apply, and never touches the fleet that serves.
func TestReaperCleansADeliberatelyOrphanedFleet(t *testing.T) {
	e := newEnv(t)
	e.deps.Activities.Temporal = e.client
	e.startWorker()
	ctx := context.Background()
	v1 := e.importImage("v1")
	live, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	orphan, err := e.deps.Provider.Provision(ctx, contract.ProvisionRequest{
		Token: "left-behind", Service: "hello", Environment: "test", ImageID: v1, Size: 2,
	})
	require.NoError(t, err)

	dry := e.reap(false)
	assert.True(t, dry.DryRun)
	require.Len(t, dry.Found.Orphans, 1, "%+v", dry.Found)
	assert.Equal(t, orphan.ID, dry.Found.Orphans[0].FleetID)
	assert.Equal(t, 1, dry.Found.Routed, "the live fleet is kept: its route serves it")
	assert.Empty(t, dry.Terminated)
	assert.Contains(t, dry.Summary, "dry run: would terminate 1 leaked fleets ["+orphan.ID+"]")
	byFleet, _ := e.instances()
	assert.Equal(t, 2, byFleet[orphan.ID], "a dry run terminates nothing")

	applied := e.reap(true)
	e.recordHistory("reaper-terminates-an-orphan", e.last.GetID(), e.last.GetRunID())
	assert.Equal(t, []string{orphan.ID}, applied.Terminated)
	byFleet, _ = e.instances()
	assert.Equal(t, map[string]int{live.FleetID: 3}, byFleet, "the orphan's processes are gone; the live fleet runs")
	assert.Equal(t, "hello from v1", e.get())

	again := e.reap(true)
	assert.Empty(t, again.Found.Orphans)
	assert.Contains(t, again.Summary, "no leaked fleets")
}

// A canary's baseline fleet is kept while its rollout runs, and reaped, said
// to be a baseline, once the rollout died without cleaning up (terminated, as
// a rollout whose every worker is gone for good).
func TestReaperReapsTheBaselineOfARolloutThatDied(t *testing.T) {
	e := newEnv(t)
	e.deps.Activities.Temporal = e.client
	e.startWorker()
	ctx := context.Background()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	live, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	_, err = rollouts.Start(ctx, e.client, e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Baseline: true, Steps: []contract.Step{{Pause: &contract.Pause{}}, {SetWeight: ip(50)}}}
	}), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	e.waitStep("1/2 pause (until approved)")
	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	canary, base := st.Progress.NewFleet, st.Progress.BaselineFleet
	require.NotEmpty(t, base)

	dry := e.reap(false)
	assert.Empty(t, dry.Found.Orphans, "a running rollout's fleets are its own")
	assert.Equal(t, 2, dry.Found.Busy, "the canary and the baseline are kept: their rollout runs")

	require.NoError(t, e.client.TerminateWorkflow(ctx, st.WorkflowID, st.RunID, "its workers are gone for good"))
	applied := e.reap(true)
	roles := map[string]string{}
	for _, o := range applied.Found.Orphans {
		roles[o.FleetID] = o.Role
	}
	assert.Equal(t, map[string]string{canary: "", base: contract.LabelRoleBaseline}, roles)
	assert.ElementsMatch(t, []string{canary, base}, applied.Terminated)
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{live.FleetID: 3}, byFleet, "v1's fleet alone runs")
}
