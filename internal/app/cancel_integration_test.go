package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/pipelines"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// A pipeline cancelled while its rollout runs ends only after the rollout has
// undone itself (its new fleet torn down), and says the pipeline, the stage and
// the rollout were canceled (before: failed).
func TestCancelledPipelineWaitsForItsRolloutToUndo(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v2 := e.importImage("v2")
	st := e.stageSpec("staging", false)
	st.Rollout.Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(time.Hour)} // the rollout holds before cutover
	p := spec.Pipeline{Pipeline: contract.Pipeline{Name: "hello", Image: &contract.ImageRef{ID: v2}, Stages: []contract.Stage{st}}}
	run, err := pipelines.Start(ctx, e.client, p, false, "integration-test")
	require.NoError(t, err)

	var rollout rollouts.Status
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		rollout, err = rollouts.Get(ctx, e.client, "hello", "staging")
		if err == nil && rollout.Progress != nil && rollout.Progress.Phase == contract.PhaseAwaitingApproval {
			break
		}
		require.True(t, time.Now().Before(deadline), "the staging rollout did not reach its approval gate within a minute (%v)", err)
	}
	require.NotEmpty(t, e.fleetIDs(), "the rollout provisioned its fleet")

	require.NoError(t, e.client.CancelWorkflow(ctx, run.GetID(), run.GetRunID()))
	err = run.Get(ctx, nil)
	require.Error(t, err)
	assert.True(t, temporal.IsCanceledError(err), "the pipeline ends canceled: %v", err)
	e.recordHistory("pipeline-canceled", run.GetID(), run.GetRunID())
	e.recordHistory("rollout-canceled-by-pipeline", rollout.WorkflowID, rollout.RunID)
	assert.Empty(t, e.fleetIDs(), "when the pipeline has ended, its rollout has torn its fleet down")

	closed := func(id, runID string) (enumspb.WorkflowExecutionStatus, time.Time) {
		d, err := e.client.DescribeWorkflowExecution(ctx, id, runID)
		require.NoError(t, err)
		info := d.GetWorkflowExecutionInfo()
		return info.GetStatus(), info.GetCloseTime().AsTime()
	}
	pStatus, pClosed := closed(run.GetID(), run.GetRunID())
	rStatus, rClosed := closed(rollout.WorkflowID, rollout.RunID)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, pStatus)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, rStatus)
	assert.False(t, pClosed.Before(rClosed), "the pipeline closed at %s, before its rollout at %s", pClosed, rClosed)

	last, err := pipelines.Latest(ctx, e.client, "hello")
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseCanceled, last.Progress.Phase)
	assert.Equal(t, contract.StageCanceled, last.Progress.Stages[0].State)
	d, err := e.deps.Catalog.History(ctx, "hello", "staging", 1)
	require.NoError(t, err)
	require.Len(t, d, 1)
	assert.Equal(t, contract.OutcomeCanceled, d[0].Outcome, "the inventory records the rollout as canceled")
}
