package workflows

import (
	"fmt"
	"time"

	"github.com/imago/imago/internal/contract"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ErrBakeFailed is the error type of a failed bake.
const ErrBakeFailed = "BakeFailed"

// bakeTaskQueue is the workflow change that runs a bake's build and image
// test on contract.BakeTaskQueue.
const bakeTaskQueue = "bake-task-queue"

// bakeChildAsBake is the workflow change that starts a rollout's bake as any
// other bake: its own workflow ID and search attributes (bakeChildOptions),
// not <rollout>/bake.
const bakeChildAsBake = "bake-child-as-bake"

// bakeChildOptions start a bake as a child of a pipeline or rollout (parent
// says which) as it would start by hand: the bake's own workflow ID, so one
// bake per service and channel runs at a time, and its search attributes,
// summary and details.
func bakeChildOptions(b contract.Bake, by, parent string) workflow.ChildWorkflowOptions {
	return workflow.ChildWorkflowOptions{
		WorkflowID:            b.WorkflowID(),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         BakeSummary(b) + " · " + parent,
		StaticDetails:         BakeDetails(b, by),
		TypedSearchAttributes: BakeAttributes(b),
	}
}

// Bake builds an image from a bake spec, unless the catalog already has one with
// the same input digest: digest → cache → build → test → publish → move channel.
func Bake(ctx workflow.Context, in contract.BakeInput) (res contract.BakeResult, err error) {
	b := &baker{spec: in.Spec, by: in.StartedBy}
	b.tracker = newTracker(ctx, &b.progress.Story, trackedKind{
		noun: "bake", phaseEvent: contract.EventBakePhase, finishedEvent: contract.EventBakeFinished,
		describe: b.describe, outcome: func(ph contract.Phase) (contract.Outcome, bool) { return BakeOutcome(ph, b.progress.Cached) },
		failed: func() string { return "bake of " + b.spec.Service }, failType: ErrBakeFailed,
	})
	b.progress = contract.BakeProgress{Service: in.Spec.Service, StartedAt: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, contract.QueryProgress, func() (contract.BakeProgress, error) { return b.progress, nil }); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			b.progress.Error = reason(err)
			b.setPhase(ctx, BakeEnd(err), b.progress.Error)
		}
	}()

	dig, err := b.digest(ctx)
	if err != nil {
		return res, err
	}
	res = contract.BakeResult{InputDigest: dig.InputDigest, Channel: in.Spec.Channel}
	if !in.Spec.Force {
		cached, err := b.cached(ctx, dig.InputDigest)
		if err != nil {
			return res, err
		}
		if cached != nil {
			res.ImageID, res.Cached = cached.ID, true
			b.progress.ImageID, b.progress.Cached = cached.ID, true
			if err := b.moveChannel(ctx, cached.ID); err != nil {
				return res, err
			}
			b.setPhase(ctx, contract.PhaseSucceeded, fmt.Sprintf("cache hit: %s already built from these inputs", cached.ID))
			return res, nil
		}
	}
	built, err := b.build(ctx, dig)
	if err != nil {
		return res, err
	}
	if res.Tested, err = b.test(ctx, built); err != nil {
		return res, err
	}
	img, err := b.publish(ctx, built)
	if err != nil {
		return res, err
	}
	res.ImageID = img.ID
	b.progress.ImageID = img.ID
	if err := b.moveChannel(ctx, img.ID); err != nil {
		return res, err
	}
	b.setPhase(ctx, contract.PhaseSucceeded, fmt.Sprintf("%s published on %s/%s", img.ID, in.Spec.Service, in.Spec.Channel))
	return res, nil
}

type baker struct {
	spec     contract.Bake
	by       string
	progress contract.BakeProgress
	tracker         // phase, events, current details, ImagoPhase, phase CloudEvents (tracker.go)
	queue    string // the task queue of the build and the image test; "" the workflow's (bakeTaskQueue)
}

// describe is the bake as its phase events say it.
func (b *baker) describe() (subject string, data contract.EventData, failure string) {
	p := b.progress
	return p.Service, contract.EventData{Service: p.Service, Image: p.ImageID, InputDigest: p.InputDigest, StartedBy: b.by}, p.Error
}

func (b *baker) digest(ctx workflow.Context) (contract.BakeDigestResult, error) {
	b.setPhase(ctx, contract.PhaseDigest, "computing the input digest")
	var out contract.BakeDigestResult
	if err := workflow.ExecuteActivity(quickOptions(ctx, "input digest of "+b.spec.Service), contract.ActivityBakeDigest, b.spec).Get(ctx, &out); err != nil {
		return out, b.fail("computing the input digest", err)
	}
	b.progress.InputDigest = out.InputDigest
	return out, nil
}

func (b *baker) cached(ctx workflow.Context, digest string) (*contract.Image, error) {
	var out contract.FindCachedResult
	err := workflow.ExecuteActivity(quickOptions(ctx, "cache lookup "+shortDigest(digest)), contract.ActivityFindCached,
		contract.FindCachedInput{Service: b.spec.Service, InputDigest: digest}).Get(ctx, &out)
	if err != nil {
		return nil, b.fail("looking up the cache", err)
	}
	if !out.Found {
		return nil, nil
	}
	return &out.Image, nil
}

func (b *baker) build(ctx workflow.Context, dig contract.BakeDigestResult) (contract.BakeBuildResult, error) {
	b.setPhase(ctx, contract.PhaseBuilding, fmt.Sprintf("building with %s (inputs %s)", b.spec.Builder, shortDigest(dig.InputDigest)))
	if workflow.GetVersion(ctx, bakeTaskQueue, workflow.DefaultVersion, 1) >= 1 {
		b.queue = contract.BakeTaskQueue
	}
	opts := workflow.ActivityOptions{
		TaskQueue:              b.queue,
		StartToCloseTimeout:    2 * time.Hour,
		HeartbeatTimeout:       30 * time.Second,
		ScheduleToCloseTimeout: 5 * time.Hour, // a failed build retries; two full ones at most
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
		Summary:                fmt.Sprintf("build %s with %s", b.spec.Service, b.spec.Builder),
	}
	info := workflow.GetInfo(ctx)
	var out contract.BakeBuildResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), contract.ActivityBakeBuild, contract.BakeBuildInput{
		Spec: b.spec, InputDigest: dig.InputDigest, BaseImageID: dig.BaseImageID, BaseOCIDigest: dig.BaseOCIDigest,
		BuildID: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID,
	}).Get(ctx, &out)
	if err != nil {
		return out, b.fail("building", err)
	}
	return out, nil
}

func (b *baker) test(ctx workflow.Context, built contract.BakeBuildResult) (bool, error) {
	if b.spec.Builder != contract.BuilderLocal {
		return false, nil // a cloud image boots in its cloud; its rollout's checks test it there
	}
	b.setPhase(ctx, contract.PhaseTesting, fmt.Sprintf("booting one instance of %s", built.Image.ID))
	info := workflow.GetInfo(ctx)
	t := b.spec.Test
	attempt := t.Health.Timeout.D() + 2*time.Minute
	opts := workflow.ActivityOptions{
		TaskQueue:              b.queue,
		StartToCloseTimeout:    attempt,
		HeartbeatTimeout:       10 * time.Second,
		ScheduleToCloseTimeout: 3 * attempt,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 3},
		Summary:                "test " + built.Image.ID,
	}
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), contract.ActivityTestImage, contract.TestImageInput{
		Image: built.Image, Token: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/test",
		Health: t.Health, Checks: t.Checks,
	}).Get(ctx, nil)
	if err != nil {
		return false, b.fail("testing the image", err)
	}
	return true, nil
}

func (b *baker) publish(ctx workflow.Context, built contract.BakeBuildResult) (contract.Image, error) {
	b.setPhase(ctx, contract.PhasePublishing, "publishing "+built.Image.ID)
	var img contract.Image
	err := workflow.ExecuteActivity(quickOptions(ctx, "publish "+built.Image.ID), contract.ActivityPublishImage,
		contract.PublishImageInput{Image: built.Image, ArchivePath: built.ArchivePath, OCIDestinations: built.OCIDestinations, Spec: &b.spec}).Get(ctx, &img)
	if err != nil {
		return img, b.fail("publishing", err)
	}
	return img, nil
}

func (b *baker) moveChannel(ctx workflow.Context, imageID string) error {
	err := workflow.ExecuteActivity(quickOptions(ctx, fmt.Sprintf("channel %s → %s", b.spec.Channel, imageID)), contract.ActivityMoveChannel,
		contract.MoveChannelInput{Service: b.spec.Service, Channel: b.spec.Channel, ImageID: imageID, By: b.by, Reason: "bake"}).Get(ctx, nil)
	if err != nil {
		return b.fail("moving channel "+b.spec.Channel, err)
	}
	b.startDependents(ctx, imageID)
	return nil
}

// startDependents starts the pipelines that opted in to changes of this channel
// (images built on it are now outdated). Their failure to start never fails the bake.
func (b *baker) startDependents(ctx workflow.Context, imageID string) {
	if workflow.GetVersion(ctx, "start-dependents", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return // a bake recorded before pipelines existed
	}
	var out contract.StartDependentsResult
	err := workflow.ExecuteActivity(quickOptions(ctx, "start pipelines built on "+b.spec.Service+"/"+b.spec.Channel), contract.ActivityStartDependents,
		contract.StartDependentsInput{Service: b.spec.Service, Channel: b.spec.Channel, ImageID: imageID}).Get(ctx, &out)
	switch {
	case err != nil:
		workflow.GetLogger(ctx).Warn("start dependent pipelines", "error", err)
	case len(out.Triggered) > 0 || len(out.Paused) > 0:
		workflow.GetLogger(ctx).Info("dependent pipelines", "triggered", out.Triggered, "paused", out.Paused)
	}
}

func shortDigest(d string) string {
	const n = len("sha256:") + 12
	if len(d) > n {
		return d[:n]
	}
	return d
}
