package runs_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/devserver"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/runs"
)

type progress struct{ Phase string }

// probe answers the progress query and takes an approve unless its reason is "no".
func probe(ctx workflow.Context, phase string) error {
	p := progress{Phase: phase}
	if err := workflow.SetQueryHandler(ctx, contract.QueryProgress, func() (progress, error) { return p, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, contract.UpdateApprove,
		func(ctx workflow.Context, d contract.DecisionInput) error {
			p.Phase = "approved by " + d.By
			return nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d contract.DecisionInput) error {
			if d.Reason == "no" {
				return errors.New("no gate waits")
			}
			return nil
		}}); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return p.Phase != "waiting" })
}

// A second start of the same ID is refused with the CLI's words for the kind,
// the progress query fills Run.Progress, and a refused decision carries the
// workflow's reason: against a real Temporal server and worker.
func TestStartProgressAndRefusalAgainstTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := devserver.Start(ctx, devserver.Config{DBPath: filepath.Join(t.TempDir(), "temporal.db"), Listen: "127.0.0.1:0", Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Stop()) })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := worker.New(c, contract.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(probe, workflow.RegisterOptions{Name: "Probe"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	opts := rollouts.ExclusiveStart("pipeline/hello")
	run, err := runs.Start(ctx, c, "pipeline", "hello", opts, "Probe", "waiting")
	require.NoError(t, err)
	_, err = runs.Start(ctx, c, "pipeline", "hello", opts, "Probe", "waiting")
	var ar *runs.AlreadyRunningError
	require.ErrorAs(t, err, &ar)
	assert.Equal(t, "pipeline/hello is already running (run "+run.GetRunID()+"); watch it with: imago pipeline status hello --watch", err.Error())

	desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	require.NoError(t, err)
	got, err := runs.WithProgress(ctx, c, "pipeline", runs.Of[progress](desc.GetWorkflowExecutionInfo()))
	require.NoError(t, err)
	assert.Equal(t, runs.Run[progress]{WorkflowID: "pipeline/hello", RunID: run.GetRunID(), Status: "Running",
		Started: desc.GetWorkflowExecutionInfo().GetStartTime().AsTime(), Progress: progress{Phase: "waiting"}}, got)

	err = runs.Refused(contract.UpdateApprove, rollouts.SendDecision(ctx, c, run.GetID(), run.GetRunID(), contract.UpdateApprove, "ana", "no"))
	assert.EqualError(t, err, "approve refused: no gate waits")
	require.NoError(t, runs.Refused(contract.UpdateApprove, rollouts.SendDecision(ctx, c, run.GetID(), run.GetRunID(), contract.UpdateApprove, "ana", "ok")))
	require.NoError(t, run.Get(ctx, nil))
}

func TestAlreadyRunningNamesTheKindsCommand(t *testing.T) {
	err := &runs.AlreadyRunningError{Kind: "campaign", WorkflowID: "campaign/base", RunID: "r1", Name: "base"}
	assert.EqualError(t, err, "campaign/base is already running (run r1); watch it with: imago campaign status base --watch")
}

func TestNewestKeepsTheLaterStart(t *testing.T) {
	info := func(id string, at time.Time) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id}, StartTime: timestamppb.New(at)}
	}
	early, late := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC), time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)
	best := runs.Newest[progress](nil, info("pipeline/hello-1", early))
	best = runs.Newest(best, info("pipeline/hello-2", late))
	best = runs.Newest(best, info("pipeline/hello", early))
	assert.Equal(t, "pipeline/hello-2", best.WorkflowID)
	assert.Equal(t, late, best.Started)
}
