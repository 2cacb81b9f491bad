// Package bakes is the client side of imago's bakes: starting one on Temporal.
// The CLI, the REST API and schedules go through it.
package bakes

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// AlreadyRunningError refuses a second bake of the same service and channel.
type AlreadyRunningError struct{ WorkflowID, RunID string }

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("%s is already running (run %s); wait for it, or bake to another channel", e.WorkflowID, e.RunID)
}

// Start validates b and starts its bake.
func Start(ctx context.Context, c client.Client, b spec.Bake, startedBy string) (client.WorkflowRun, error) {
	if err := b.Normalize(); err != nil {
		return nil, err
	}
	id := b.WorkflowID()
	opts := client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    workflows.BakeAttributes(b),
		StaticSummary:                            workflows.BakeSummary(b),
		StaticDetails:                            workflows.BakeDetails(b, startedBy),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.Bake, workflows.BakeInput{Spec: b, StartedBy: startedBy})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, &AlreadyRunningError{WorkflowID: id, RunID: started.RunId}
	}
	if err != nil {
		return nil, fmt.Errorf("start bake %s: %w", id, err)
	}
	return run, nil
}
