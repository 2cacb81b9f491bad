package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Error types of pipelines that did not succeed.
const (
	ErrPipelineFailed  = "PipelineFailed"
	ErrPipelineAborted = "PipelineAborted"
)

// Pipeline bakes an image (or resolves an existing one) and rolls it out to each
// stage's environment in order, each rollout a child workflow of its own. A stage
// starts only when the one before succeeded, after its approval gate if it has
// one; a failed stage stops the pipeline, and later environments are never
// touched. When the bake was a cache hit and the image is live everywhere already,
// the pipeline skips, saying so.
func Pipeline(ctx workflow.Context, in contract.PipelineInput) (res contract.PipelineResult, err error) {
	p, err := newPipeline(ctx, in)
	if err != nil {
		return res, err
	}
	defer func() { err = p.finish(ctx, err); res = p.result }()

	img, built, err := p.image(ctx)
	if err != nil {
		return p.result, err
	}
	live, err := p.liveImages(ctx)
	if err != nil {
		return p.result, err
	}
	if p.unchanged(img, built, live) {
		return p.skip(ctx, img)
	}
	for i := range p.spec.Stages {
		if err := p.stage(ctx, i, img, live); err != nil {
			return p.result, err
		}
	}
	return p.result, nil
}

type pipeline struct {
	spec     contract.Pipeline
	in       contract.PipelineInput
	progress contract.PipelineProgress
	result   contract.PipelineResult

	approved *contract.Decision // the approval that released the open gate
	stop     *contract.Decision // abort requested
	tracker                     // phase, events, current details, ImagoPhase, phase CloudEvents (tracker.go)
}

func newPipeline(ctx workflow.Context, in contract.PipelineInput) (*pipeline, error) {
	p := &pipeline{spec: in.Spec, in: in}
	p.tracker = newTracker(ctx, &p.progress.Story, trackedKind{
		noun: "pipeline", phaseEvent: contract.EventPipelinePhase, finishedEvent: contract.EventPipelineFinished,
		describe: p.describe, outcome: PipelineOutcome,
		failed: func() string { return "pipeline " + p.spec.Name }, failType: ErrPipelineFailed,
	})
	p.progress = contract.PipelineProgress{
		Name: in.Spec.Name, Service: in.Spec.Service(), Trigger: in.Trigger, StartedBy: in.StartedBy,
		StartedAt: workflow.Now(ctx), Stages: make([]contract.StageStatus, len(in.Spec.Stages)),
	}
	for i, st := range in.Spec.Stages {
		p.progress.Stages[i] = contract.StageStatus{Environment: st.Rollout.Place(), State: contract.StagePending}
	}
	if err := workflow.SetQueryHandler(ctx, contract.QueryProgress, func() (contract.PipelineProgress, error) { return p.progress, nil }); err != nil {
		return nil, err
	}
	if err := p.registerUpdates(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// image bakes (or resolves) the image the stages ship; built is false for a cache
// hit or an existing image.
func (p *pipeline) image(ctx workflow.Context) (img string, built bool, err error) {
	if b := p.spec.Bake; b != nil {
		p.setPhase(ctx, contract.PhaseBaking, fmt.Sprintf("baking %s from %s", b.Service, p.spec.BakeFile))
		bake := *b
		bake.Force = bake.Force || p.in.Always
		// The usual bake ID: a bake by hand of the same channel cannot run beside it.
		opts := bakeChildOptions(bake, p.by(), "pipeline "+p.spec.Name)
		var out contract.BakeResult
		if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Bake,
			contract.BakeInput{Spec: bake, StartedBy: p.by()}).Get(ctx, &out); err != nil {
			return "", false, p.fail("baking", err)
		}
		p.setImage(ctx, out.ImageID)
		p.result.Built = !out.Cached
		if out.Cached {
			p.event(ctx, fmt.Sprintf("bake: cache hit, %s was built from these inputs (%s)", out.ImageID, shortDigest(out.InputDigest)))
		} else {
			p.event(ctx, fmt.Sprintf("bake: built %s (inputs %s)", out.ImageID, shortDigest(out.InputDigest)))
		}
		return out.ImageID, !out.Cached, nil
	}
	ref := *p.spec.Image
	p.setPhase(ctx, contract.PhaseResolving, "resolving image "+RolloutLabel(ref))
	var out contract.ResolveImageResult
	if err := workflow.ExecuteActivity(quickOptions(ctx, "resolve image "+RolloutLabel(ref)), contract.ActivityResolveImage,
		contract.ResolveImageInput{Service: p.progress.Service, Ref: ref}).Get(ctx, &out); err != nil {
		return "", false, p.fail("resolving the image", err)
	}
	p.setImage(ctx, out.ImageID)
	return out.ImageID, false, nil
}

func (p *pipeline) setImage(ctx workflow.Context, img string) {
	p.progress.ImageID, p.result.ImageID = img, img
	if err := workflow.UpsertTypedSearchAttributes(ctx, contract.ImageAttr.ValueSet(img)); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
}

func (p *pipeline) liveImages(ctx workflow.Context) (map[string]string, error) {
	envs := make([]string, len(p.spec.Stages))
	for i, st := range p.spec.Stages {
		envs[i] = st.Rollout.Place() // the environment, or environment@region
	}
	live := map[string]string{}
	if len(envs) == 0 {
		return live, nil
	}
	err := workflow.ExecuteActivity(quickOptions(ctx, "live images of "+p.progress.Service), contract.ActivityLiveImages,
		contract.LiveImagesInput{Service: p.progress.Service, Environments: envs}).Get(ctx, &live)
	if err != nil {
		return nil, p.fail("reading the inventory", err)
	}
	return live, nil
}

// unchanged: nothing to do unless something changed (or --always): no new build,
// and the image already live in every stage.
func (p *pipeline) unchanged(img string, built bool, live map[string]string) bool {
	if p.in.Always || built {
		return false
	}
	for _, st := range p.spec.Stages {
		if live[st.Rollout.Place()] != img {
			return false
		}
	}
	return true
}

func (p *pipeline) skip(ctx workflow.Context, img string) (contract.PipelineResult, error) {
	where := "baked"
	if n := len(p.spec.Stages); n > 0 {
		envs := make([]string, n)
		for i, st := range p.spec.Stages {
			envs[i] = st.Rollout.Place()
			p.progress.Stages[i].State = contract.StageUnchanged
		}
		where = "live in " + strings.Join(envs, ", ")
	}
	p.result.Skipped = true
	p.result.Reason = fmt.Sprintf("skipped: inputs unchanged; %s is already %s", img, where)
	p.setPhase(ctx, contract.PhaseSkipped, p.result.Reason)
	p.result.Stages = p.progress.Stages
	return p.result, nil
}

// stage rolls the image out to stage i's environment, after its gate.
func (p *pipeline) stage(ctx workflow.Context, i int, img string, live map[string]string) error {
	st := p.spec.Stages[i]
	r := st.Rollout
	status := &p.progress.Stages[i]
	if !p.in.Always && live[r.Place()] == img {
		status.State = contract.StageUnchanged
		p.event(ctx, fmt.Sprintf("%s: %s is already live there", r.Place(), img))
		return nil
	}
	if st.Approval.Required {
		if err := p.gate(ctx, i, st.Approval.Timeout.D()); err != nil {
			return err
		}
	}
	if err := p.stopped(); err != nil {
		return err
	}
	r.Image = contract.ImageRef{ID: img}
	p.setPhase(ctx, contract.PhaseRollingOut, fmt.Sprintf("stage %d/%d: rolling %s out to %s", i+1, len(p.spec.Stages), img, r.Environment))
	opts := rolloutChildOptions(r, p.by(), "pipeline "+p.spec.Name)
	child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Rollout,
		contract.RolloutInput{Spec: r, StartedBy: p.by(), Action: "rollout"})
	var exec workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		status.State, status.Error = contract.StageFailed, reason(err)
		return p.stageFailed(ctx, i, err)
	}
	status.State, status.RolloutID, status.RunID = contract.StageRunning, exec.ID, exec.RunID
	if err := child.Get(ctx, nil); err != nil {
		status.State, status.Error = contract.StageFailed, reason(err)
		if temporal.IsCanceledError(err) {
			status.State = contract.StageCanceled
		}
		return p.stageFailed(ctx, i, err)
	}
	status.State = contract.StageSucceeded
	p.event(ctx, fmt.Sprintf("%s: %s is live", r.Environment, img))
	return nil
}

// stageFailed stops the pipeline: the stages after i are never started.
func (p *pipeline) stageFailed(ctx workflow.Context, i int, err error) error {
	env := p.spec.Stages[i].Rollout.Environment
	var later []string
	for j := i + 1; j < len(p.spec.Stages); j++ {
		p.progress.Stages[j].State = contract.StageNotStarted
		later = append(later, p.progress.Stages[j].Environment)
	}
	msg := fmt.Sprintf("pipeline %s stopped: stage %s failed: %s", p.spec.Name, env, reason(err))
	if temporal.IsCanceledError(err) {
		msg = fmt.Sprintf("pipeline %s canceled during stage %s, once its rollout ended (imago rollout status %s -e %s)",
			p.spec.Name, env, p.progress.Service, env)
	}
	if len(later) > 0 {
		msg += fmt.Sprintf("; %s not touched", strings.Join(later, ", "))
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrPipelineFailed, err)
}

// gate holds the pipeline before stage i until approve, abort or the timeout.
func (p *pipeline) gate(ctx workflow.Context, i int, timeout time.Duration) error {
	env := p.spec.Stages[i].Rollout.Environment
	p.progress.Gate, p.approved = env, nil
	p.progress.Stages[i].State = contract.StageWaiting
	defer func() { p.progress.Gate = "" }()
	p.setPhase(ctx, contract.PhaseAwaitingApproval, fmt.Sprintf("waiting for approval to roll out to %s (imago pipeline approve %s), at most %s", env, p.spec.Name, timeout))
	ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: timeout, TimerOptions: workflow.TimerOptions{Summary: "approval for " + env}},
		func() bool { return p.approved != nil || p.stop != nil })
	if err != nil {
		return err
	}
	if err := p.stopped(); err != nil {
		p.markNotStarted(i)
		return err
	}
	if !ok {
		p.markNotStarted(i)
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("pipeline %s stopped: nobody approved %s within %s", p.spec.Name, env, timeout), ErrPipelineAborted, nil)
	}
	p.progress.Stages[i].Approval = p.approved
	return nil
}

func (p *pipeline) markNotStarted(from int) {
	for j := from; j < len(p.spec.Stages); j++ {
		p.progress.Stages[j].State = contract.StageNotStarted
	}
}

func (p *pipeline) stopped() error {
	if p.stop == nil {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("pipeline %s aborted by %s%s", p.spec.Name, p.stop.By, because(p.stop.Reason)), ErrPipelineAborted, nil)
}

// registerUpdates installs approve (releases the open gate) and abort (stops the
// pipeline at its gate or before the next stage; a running rollout is aborted on
// its own, which stops the pipeline too).
func (p *pipeline) registerUpdates(ctx workflow.Context) error {
	return p.setDecisionUpdates(ctx,
		decisionUpdate{contract.UpdateApprove, func(contract.DecisionInput) error {
			if p.progress.Gate == "" {
				return fmt.Errorf("nothing waits for approval: the pipeline is %s", p.progress.Phase)
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			p.approved = decide(ctx, in)
			p.event(ctx, fmt.Sprintf("%s approved by %s%s", p.progress.Gate, in.By, because(in.Reason)))
		}},
		decisionUpdate{contract.UpdateAbort, func(contract.DecisionInput) error {
			for _, st := range p.progress.Stages {
				if st.State == contract.StageRunning {
					return fmt.Errorf("stage %s is rolling out; abort that rollout (imago rollout abort %s -e %s), which stops the pipeline",
						st.Environment, p.progress.Service, st.Environment)
				}
			}
			if p.stop != nil {
				return fmt.Errorf("an abort was already requested by %s", p.stop.By)
			}
			return nil
		}, func(ctx workflow.Context, in contract.DecisionInput) {
			p.stop = decide(ctx, in)
			p.event(ctx, fmt.Sprintf("abort requested by %s%s", in.By, because(in.Reason)))
		}},
	)
}

func (p *pipeline) finish(ctx workflow.Context, err error) error {
	p.result.Stages = p.progress.Stages
	switch {
	case err == nil && p.result.Skipped:
		return nil
	case err == nil:
		p.result.Reason = fmt.Sprintf("%s rolled out to %s", p.result.ImageID, p.rolledOut())
		if len(p.spec.Stages) == 0 {
			p.result.Reason = p.result.ImageID + " baked"
		}
		p.setPhase(ctx, contract.PhaseSucceeded, p.result.Reason)
		return nil
	}
	p.progress.Error = reason(err)
	p.setPhase(ctx, PipelineEnd(err), p.progress.Error)
	return err
}

func (p *pipeline) rolledOut() string {
	var envs []string
	for _, st := range p.progress.Stages {
		envs = append(envs, st.Environment+" ("+string(st.State)+")")
	}
	return strings.Join(envs, ", ")
}

func (p *pipeline) by() string {
	if p.in.StartedBy != "" {
		return "pipeline " + p.spec.Name + " (" + p.in.StartedBy + ")"
	}
	return "pipeline " + p.spec.Name
}

// describe is the pipeline as its phase events say it.
func (p *pipeline) describe() (subject string, data contract.EventData, failure string) {
	pr := p.progress
	return pr.Service, contract.EventData{Service: pr.Service, Image: pr.ImageID, StartedBy: pr.StartedBy}, pr.Error
}

// rolloutChildOptions are the options of a rollout a pipeline or campaign
// (parent) starts: the usual rollout ID, so `imago rollout status`, windows and
// freezes work as for one started by hand, and its search attributes, summary
// and details.
func rolloutChildOptions(r contract.Rollout, by, parent string) workflow.ChildWorkflowOptions {
	return workflow.ChildWorkflowOptions{
		WorkflowID:            r.WorkflowID(),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Closing the parent asks the rollout to stop, which routes back and
		// tears the new fleet down; it is never cut off mid-way.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		TypedSearchAttributes: RolloutAttributes(r),
		StaticSummary:         RolloutSummary(r) + " · " + parent,
		StaticDetails:         RolloutDetails(r, by),
		// A cancelled parent waits for its rollout to undo itself, and says how it
		// ended. (The Go SDK's child future already settles only when the child
		// closes, v1.50 does not read this option: no command or event changes.)
		WaitForCancellation: true,
	}
}
