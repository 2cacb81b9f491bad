// Package rollouts is the client side of imago's rollouts: starting, inspecting and
// listing them on Temporal. The CLI and the REST API both go through it, so they
// refuse and report the same way.
package rollouts

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// AlreadyRunningError refuses a second rollout of the same service and environment.
type AlreadyRunningError struct {
	WorkflowID string
	RunID      string
	Service    string
	Env        string
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("%s is already running (run %s); watch it with: imago rollout status %s -e %s",
		e.WorkflowID, e.RunID, e.Service, e.Env)
}

// StartOptions are the parts of a start that are not in the spec.
type StartOptions struct {
	StartedBy string
	// Bake is the loaded bake spec when r.Image.Bake names one.
	Bake *spec.Bake
	// Action is "rollback" when this rollout returns to a previous image.
	Action string
	// Lines finds a field's line in the YAML file the spec came from (the
	// parsed spec's LineOf, kept from before Normalize): the worker's refusal
	// of a spec its provider cannot run names fields, and Start adds lines.
	Lines func(field string) int
}

// CheckTimeout bounds how long Start waits for the rollout to check its spec
// against the worker's provider. Without a worker polling (none runs yet, or
// all are busy), Start returns after it; the rollout checks when a worker
// takes it, and fails then, without changing anything, if it must.
var CheckTimeout = 10 * time.Second

// RefusedError is a spec the worker's provider cannot run (a canary on a
// provider without weighted routes, ...). The rollout's run ended at once
// without changing anything; Errs name the fields (with lines, from YAML).
type RefusedError struct {
	WorkflowID string
	RunID      string
	Errs       contract.FieldErrors
}

func (e *RefusedError) Error() string {
	return e.Errs.Error() + fmt.Sprintf("\n(the worker's provider refused it: %s, run %s, ended without changing anything)", e.WorkflowID, e.RunID)
}

// Unwrap makes a refusal a spec problem (spec.IsInvalid).
func (e *RefusedError) Unwrap() error { return e.Errs }

// Start validates r and starts its rollout. A rollout of the same service and
// environment that is still running makes it fail with *AlreadyRunningError.
func Start(ctx context.Context, c client.Client, r spec.Rollout, o StartOptions) (client.WorkflowRun, error) {
	if err := r.Normalize(); err != nil {
		return nil, err
	}
	if r.Image.Bake != "" && o.Bake == nil {
		return nil, contract.FieldErrors{{Field: "image.bake", Msg: "the bake spec " + r.Image.Bake + " was not loaded"}}
	}
	id := r.WorkflowID()
	opts := ExclusiveStart(id)
	opts.TypedSearchAttributes = workflows.RolloutAttributes(r.Rollout)
	opts.StaticSummary, opts.StaticDetails = workflows.RolloutSummary(r.Rollout), workflows.RolloutDetails(r.Rollout, o.StartedBy)
	in := contract.RolloutInput{Spec: r.Rollout, StartedBy: o.StartedBy, Action: o.Action}
	if o.Bake != nil {
		in.Bake = &o.Bake.Bake
	}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.Rollout, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, &AlreadyRunningError{WorkflowID: id, RunID: started.RunId, Service: r.Service, Env: r.Environment}
	}
	if err != nil {
		return nil, fmt.Errorf("start rollout %s: %w", id, err)
	}
	if es := awaitChecked(ctx, c, run); es != nil {
		return nil, &RefusedError{WorkflowID: run.GetID(), RunID: run.GetRunID(), Errs: es.WithLines(o.Lines)}
	}
	return run, nil
}

// awaitChecked waits (at most CheckTimeout) until the rollout has checked its
// spec against the worker's provider, and returns the problems the check
// found. Anything else (no worker in time, a worker whose rollouts predate
// the check) returns nil: the rollout goes on as it would have.
func awaitChecked(ctx context.Context, c client.Client, run client.WorkflowRun) contract.FieldErrors {
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	h, err := c.UpdateWorkflow(cctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: contract.UpdateChecked,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(cctx, nil)
	}
	if err == nil {
		return nil
	}
	if es, ok := contract.InvalidSpec(err); ok {
		return es
	}
	// The run may have ended before it answered (it failed its check): its
	// failure says why. A run still going (an older worker, without the
	// update) is not waited for.
	desc, derr := c.DescribeWorkflowExecution(cctx, run.GetID(), run.GetRunID())
	if derr == nil && desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if runErr := run.Get(cctx, nil); runErr != nil {
			if es, ok := contract.InvalidSpec(runErr); ok {
				return es
			}
		}
	}
	return nil
}

// ExclusiveStart are the start options of a workflow of which one run at a time
// may exist per ID (a rollout of a service to an environment, a bake of a
// channel, a pipeline): a second start fails with WorkflowExecutionAlreadyStarted,
// and a new run may start once the last one closed.
func ExclusiveStart(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                contract.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
}

// Reason is the message of a failed rollout, without the SDK's wrapping.
func Reason(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

// SendDecision sends a decision update (approve, abort, resume…) with who
// decided and why to workflow id (runID empty: its current run) and waits
// until the workflow has taken or refused it.
func SendDecision(ctx context.Context, c client.Client, id, runID, update, by, reason string) error {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, RunID: runID, UpdateName: update,
		Args:         []any{contract.DecisionInput{By: by, Reason: reason}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

// ResultOf is what a rollout that did not succeed carries as its result: a
// bake time that rolled it back puts a contract.RolloutResult, with the
// measurement that failed, in its failure's details. Nil when err has none.
func ResultOf(err error) *contract.RolloutResult {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.HasDetails() {
		return nil
	}
	var res contract.RolloutResult
	if app.Details(&res) != nil || res.FleetID == "" {
		return nil
	}
	return &res
}

// Run is one run of a workflow as the CLI and API show it.
type Run struct {
	WorkflowID string     `json:"workflowId"`
	RunID      string     `json:"runId"`
	Status     string     `json:"status"` // Running, Succeeded, Failed, ... (StatusName)
	Started    time.Time  `json:"started"`
	Closed     *time.Time `json:"closed,omitempty"`
}

// Status is a rollout's state as the CLI and API show it.
type Status struct {
	Run
	Progress *contract.RolloutProgress `json:"progress,omitempty"`
}

// Get returns the latest rollout of service to env, with its progress.
func Get(ctx context.Context, c client.Client, service, env string) (Status, error) {
	return GetLive(ctx, c, nil, service, env)
}

// GetLive is Get, and, given dc (the data converter c was dialled with), a
// running analysis shows the measurements taken so far, read from its
// activity's last heartbeat (the workflow learns them only at the end). The
// SDK sends a heartbeat at most every 80% of the heartbeat timeout (at least
// 10 s for an analysis), so they lag by up to that.
func GetLive(ctx context.Context, c client.Client, dc converter.DataConverter, service, env string) (Status, error) {
	id := contract.RolloutWorkflowID(service, env)
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return Status{}, fmt.Errorf("no rollout of %s to %s yet; start one with: imago rollout start -f FILE", service, env)
	}
	if err != nil {
		return Status{}, fmt.Errorf("describe %s: %w", id, err)
	}
	st := Status{Run: RunOf(desc.WorkflowExecutionInfo)}
	val, err := c.QueryWorkflow(ctx, id, st.RunID, contract.QueryProgress)
	if err == nil {
		var p contract.RolloutProgress
		if val.Get(&p) == nil {
			st.Progress = &p
		}
	}
	if dc != nil && st.Progress != nil {
		liveAnalysis(desc.GetPendingActivities(), dc, st.Progress)
	}
	return st, nil
}

// liveAnalysis gives the running analysis of p the measurements of its
// activity's last heartbeat. A heartbeat that cannot be read (no key, an
// older shape) leaves p as it is.
func liveAnalysis(pending []*workflowpb.PendingActivityInfo, dc converter.DataConverter, p *contract.RolloutProgress) {
	i := len(p.Analyses) - 1
	if i < 0 || p.Analyses[i].Phase != contract.AnalysisRunning {
		return
	}
	for _, pa := range pending {
		if pa.GetActivityType().GetName() != contract.ActivityRunAnalysis || len(pa.GetHeartbeatDetails().GetPayloads()) == 0 {
			continue
		}
		var prog activities.AnalysisProgress
		if err := dc.FromPayloads(pa.GetHeartbeatDetails(), &prog); err != nil {
			return
		}
		counts := analysis.CountOf(prog.Measurements)
		p.Analyses[i].Counts = &counts
		p.Analyses[i].Measurements = analysis.Latest(prog.Measurements, analysis.KeptMeasurements)
		return
	}
}

// RunOf reads a run from Temporal's description or listing of it.
func RunOf(info *workflowpb.WorkflowExecutionInfo) Run {
	st := Run{
		WorkflowID: info.GetExecution().GetWorkflowId(),
		RunID:      info.GetExecution().GetRunId(),
		Status:     StatusName(info.GetStatus()),
		Started:    info.GetStartTime().AsTime(),
	}
	if info.GetCloseTime() != nil {
		t := info.GetCloseTime().AsTime()
		st.Closed = &t
	}
	return st
}

// StatusName names a workflow status as imago shows it: Running, Succeeded,
// Failed, Canceled, Terminated, TimedOut.
func StatusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "Running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "Succeeded"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "Failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "Canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "Terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "TimedOut"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "ContinuedAsNew"
	}
	return s.String()
}

// Summary is one line of `imago rollout list`.
type Summary struct {
	Run
	Service     string         `json:"service"`
	Environment string         `json:"environment"`
	Image       string         `json:"image"`
	Phase       contract.Phase `json:"phase"`
}

// ListOptions filter List.
type ListOptions struct {
	Service     string
	Environment string
	Limit       int
}

// List returns rollouts, newest first.
func List(ctx context.Context, c client.Client, o ListOptions) ([]Summary, error) {
	q := "WorkflowType = 'Rollout'"
	if o.Service != "" {
		q += fmt.Sprintf(" AND %s = '%s'", contract.ServiceAttr.GetName(), o.Service)
	}
	if o.Environment != "" {
		q += fmt.Sprintf(" AND %s = '%s'", contract.EnvironmentAttr.GetName(), o.Environment)
	}
	if o.Limit <= 0 {
		o.Limit = 50
	}
	var out []Summary
	var token []byte
	for len(out) < o.Limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: int32(o.Limit), NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		for _, info := range resp.Executions {
			sa := info.GetSearchAttributes()
			s := Summary{Run: RunOf(info)}
			s.Service = activities.Keyword(sa, contract.ServiceAttr)
			s.Environment = activities.Keyword(sa, contract.EnvironmentAttr)
			s.Image = activities.Keyword(sa, contract.ImageAttr)
			s.Phase = contract.Phase(activities.Keyword(sa, contract.PhaseAttr))
			out = append(out, s)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	if len(out) > o.Limit {
		out = out[:o.Limit]
	}
	return out, nil
}
