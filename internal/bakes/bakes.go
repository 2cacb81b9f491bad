// Package bakes is the client side of imago's bakes: starting one on Temporal.
// The CLI, the REST API and schedules go through it.
package bakes

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
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
	opts := rollouts.ExclusiveStart(id)
	opts.TypedSearchAttributes = workflows.BakeAttributes(b.Bake)
	opts.StaticSummary, opts.StaticDetails = workflows.BakeSummary(b.Bake), workflows.BakeDetails(b.Bake, startedBy)
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.Bake, contract.BakeInput{Spec: b.Bake, StartedBy: startedBy})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, &AlreadyRunningError{WorkflowID: id, RunID: started.RunId}
	}
	if err != nil {
		return nil, fmt.Errorf("start bake %s: %w", id, err)
	}
	return run, nil
}

// State is a bake's state as the CLI and API show it.
type State struct {
	rollouts.Run
	Progress *contract.BakeProgress `json:"progress,omitempty"`
}

// NotFoundError: the service's channel was never baked.
type NotFoundError struct{ Service, Channel string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no bake of %s for channel %s yet", e.Service, e.Channel)
}

// Get returns the latest bake of service's channel, with its progress when a
// worker answers the query.
func Get(ctx context.Context, c client.Client, service, channel string) (State, error) {
	id := contract.BakeWorkflowID(service, channel)
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return State{}, &NotFoundError{Service: service, Channel: channel}
	}
	if err != nil {
		return State{}, fmt.Errorf("describe %s: %w", id, err)
	}
	st := State{Run: rollouts.RunOf(desc.GetWorkflowExecutionInfo())}
	if val, err := c.QueryWorkflow(ctx, id, st.RunID, contract.QueryProgress); err == nil {
		var p contract.BakeProgress
		if val.Get(&p) == nil {
			st.Progress = &p
		}
	}
	return st, nil
}
