// Package pipelines is the client side of imago's pipelines (bake → rollouts to
// environments in order): starting one by hand, finding the latest run of a
// pipeline (started by hand or by its schedule), and deciding at its gates.
package pipelines

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/runs"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// AlreadyRunningError refuses a second run of the same pipeline (Kind "pipeline").
type AlreadyRunningError = runs.AlreadyRunningError

// kind names pipelines in the CLI's commands and in errors.
const kind = "pipeline"

// Start starts a loaded pipeline by hand. Always builds and rolls out even when
// nothing changed.
func Start(ctx context.Context, c client.Client, p spec.Pipeline, always bool, startedBy string) (client.WorkflowRun, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	id := p.WorkflowID()
	opts := rollouts.ExclusiveStart(id)
	opts.TypedSearchAttributes = temporal.NewSearchAttributes(
		contract.ServiceAttr.ValueSet(p.Service()), contract.PhaseAttr.ValueSet("pending"))
	opts.StaticSummary, opts.StaticDetails = Summary(p), "started by "+startedBy
	return runs.Start(ctx, c, kind, p.Name, opts, workflows.Pipeline, contract.PipelineInput{Spec: p.Pipeline, Always: always, Trigger: "manual", StartedBy: startedBy})
}

// Summary is the web UI's one-line summary of a pipeline: "pipeline hello: bake →
// staging → prod (approval)".
func Summary(p spec.Pipeline) string {
	parts := []string{"bake"}
	if p.Bake == nil && p.Image != nil {
		parts[0] = workflows.RolloutLabel(*p.Image)
	}
	for _, st := range p.Stages {
		s := st.Rollout.Environment
		if st.Approval.Required {
			s += " (approval)"
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("pipeline %s: %s", p.Name, strings.Join(parts, " → "))
}

// Run is the latest run of a pipeline and its progress.
type Run = runs.Run[contract.PipelineProgress]

// NotFoundError: no run of the pipeline exists.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no run of pipeline %q found; start one with: imago pipeline start -f FILE, or imago schedule trigger %s", e.Name, e.Name)
}

// Latest finds the newest run of pipeline name, started by hand (pipeline/NAME)
// or by its schedule (pipeline/NAME-<time>).
func Latest(ctx context.Context, c client.Client, name string) (Run, error) {
	id := contract.PipelineWorkflowID(name)
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		// Names are [a-z0-9-] (spec.Pipeline.Validate), so quoting is safe.
		Query: fmt.Sprintf("WorkflowType = 'Pipeline' AND WorkflowId STARTS_WITH '%s'", id), PageSize: 200,
	})
	if err != nil {
		return Run{}, fmt.Errorf("list pipelines: %w", err)
	}
	var best *Run
	for _, info := range resp.Executions {
		if wid := info.GetExecution().GetWorkflowId(); wid == id || strings.HasPrefix(wid, id+"-") {
			best = runs.Newest(best, info)
		}
	}
	// Visibility lags a start a little: a run just started by hand is described
	// directly, so status and decisions right after a start find it.
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
		best = runs.Newest(best, desc.GetWorkflowExecutionInfo())
	case !errors.As(err, &nf):
		return Run{}, fmt.Errorf("describe %s: %w", id, err)
	}
	if best == nil {
		return Run{}, &NotFoundError{Name: name}
	}
	return runs.WithProgress(ctx, c, kind, *best)
}

// Decide sends approve or abort to the latest run of pipeline name and waits
// until it is accepted; a refusal carries the pipeline's reason.
func Decide(ctx context.Context, c client.Client, name, update, by, reason string) error {
	run, err := Latest(ctx, c, name)
	if err != nil {
		return err
	}
	return runs.Refused(update, rollouts.SendDecision(ctx, c, run.WorkflowID, run.RunID, update, by, reason))
}
