// Package runs is what the client sides of imago's named, one-at-a-time
// workflows (campaigns, pipelines) share: their run with its progress, the
// refusal of a second run, a start, the progress query and a decision's
// refusal. Each keeps what differs (how its latest run is found, its texts).
package runs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// Run is the latest run of a campaign or pipeline with its progress P.
type Run[P any] struct {
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Status     string    `json:"status"`
	Started    time.Time `json:"started"`
	Progress   P         `json:"progress"`
}

// AlreadyRunningError refuses a second run of the same campaign or pipeline
// (Kind: "campaign", "pipeline", as the CLI's command names it).
type AlreadyRunningError struct{ Kind, WorkflowID, RunID, Name string }

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("%s is already running (run %s); watch it with: imago %s status %s --watch", e.WorkflowID, e.RunID, e.Kind, e.Name)
}

// Start starts workflow wf with input in under opts (rollouts.ExclusiveStart's,
// with the kind's attributes and summary): a run of opts.ID still going makes
// it fail with *AlreadyRunningError.
func Start(ctx context.Context, c client.Client, kind, name string, opts client.StartWorkflowOptions, wf, in any) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, opts, wf, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, &AlreadyRunningError{Kind: kind, WorkflowID: opts.ID, RunID: started.RunId, Name: name}
	}
	if err != nil {
		return nil, fmt.Errorf("start %s %s: %w", kind, opts.ID, err)
	}
	return run, nil
}

// Of reads a run, without its progress, from Temporal's description or
// listing of it.
func Of[P any](info *workflowpb.WorkflowExecutionInfo) Run[P] {
	r := rollouts.RunOf(info)
	return Run[P]{WorkflowID: r.WorkflowID, RunID: r.RunID, Status: r.Status, Started: r.Started}
}

// Newest is the run info describes, unless best is already a newer one.
func Newest[P any](best *Run[P], info *workflowpb.WorkflowExecutionInfo) *Run[P] {
	if best != nil && !info.GetStartTime().AsTime().After(best.Started) {
		return best
	}
	r := Of[P](info)
	return &r
}

// WithProgress asks run for its progress (the progress query). Run comes back
// as it was on an error, with what was read.
func WithProgress[P any](ctx context.Context, c client.Client, kind string, run Run[P]) (Run[P], error) {
	v, err := c.QueryWorkflow(ctx, run.WorkflowID, run.RunID, contract.QueryProgress)
	if err != nil {
		return run, fmt.Errorf("query %s %s: %w", kind, run.WorkflowID, err)
	}
	return run, v.Get(&run.Progress)
}

// Refused words a decision's refusal with the workflow's reason; nil stays nil.
func Refused(update string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s refused: %s", update, rollouts.Reason(err))
}
