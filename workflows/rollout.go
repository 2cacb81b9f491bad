package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/imago/imago/internal/contract"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// revertBeforeProvision is the workflow change that arms a rollout's undo before
// it provisions, tearing the new fleet down by its provision token.
const revertBeforeProvision = "revert-before-provision"

// checkSpecChange is the workflow change that checks the spec against the
// worker's provider (CheckSpec) before anything else; runs recorded before it
// went straight to resolving the image.
const checkSpecChange = "check-spec-against-provider"

// rollbackResolvesPrevious is the workflow change that makes a rollback
// (Action "rollback") find the image it rolls back to itself (the PreviousImage
// activity) instead of taking Spec.Image as its starter resolved it.
const rollbackResolvesPrevious = "rollback-resolves-previous-image"

// Error types of rollouts that did not succeed.
const (
	ErrRolloutFailed  = "RolloutFailed"
	ErrRolloutAborted = "RolloutAborted"
	ErrRolledBack     = "RolledBack"
)

// Rollout rolls a service out to an environment on a fresh fleet: the table of
// contents of a rollout. Until the old fleet is decommissioned, any failure, abort
// or rollback routes traffic back to it and tears the new fleet down.
func Rollout(ctx workflow.Context, in contract.RolloutInput) (res contract.RolloutResult, err error) {
	r, err := newRollout(ctx, in)
	if err != nil {
		return res, err
	}
	defer func() { err = r.finish(ctx, err) }()

	if err = r.checkSpec(ctx); err != nil {
		return res, err
	}
	img, err := r.resolveImage(ctx, in.Bake)
	if err != nil {
		return res, err
	}
	if err = r.hold(ctx, "provisioning"); err != nil { // windows and freezes (gates.go)
		return res, err
	}
	prev, err := r.currentRoute(ctx)
	if err != nil {
		return res, err
	}
	if err = r.checkBaseline(ctx, prev); err != nil { // a canary's baseline copies the live fleet (baseline.go)
		return res, err
	}
	if err = r.preRollout(ctx); err != nil {
		return res, err
	}
	// Until decommissioning begins, any failure, cancel, abort or rollback undoes
	// the rollout. The undo is armed before provisioning (runs recorded before
	// revertBeforeProvision arm it after): a cancel, or a provision that gave up
	// half way, still tears down what was made.
	var fleet contract.Fleet
	undo := func() {
		if err != nil && !r.committed {
			r.revert(ctx, prev, fleet)
		}
	}
	early := workflow.GetVersion(ctx, revertBeforeProvision, workflow.DefaultVersion, 1) >= 1
	if early {
		defer undo()
	}
	if fleet, err = r.provision(ctx, img, early); err != nil {
		return res, err
	}
	if !early {
		defer undo()
	}
	if err = r.waitHealthy(ctx, fleet.ID, 0, len(fleet.Instances)); err != nil {
		return res, err
	}
	if err = r.validate(ctx, fleet.ID, 0); err != nil {
		return res, err
	}
	if err = r.approvalGate(ctx); err != nil {
		return res, err
	}
	if fleet, err = r.shiftTraffic(ctx, prev, fleet); err != nil {
		return res, err
	}
	if err = r.verify(ctx, fleet); err != nil {
		return res, err
	}
	baked, err := r.bakeTime(ctx, fleet, img)
	if err != nil {
		return res, err
	}
	if err = r.soak(ctx); err != nil {
		return res, err
	}
	old, err := r.decommission(ctx, prev, fleet)
	if err != nil {
		return res, err
	}
	return contract.RolloutResult{ImageID: img, FleetID: fleet.ID, Instances: r.progress.Instances, Decommissioned: old, BakeTime: baked}, nil
}

// rollout is the state a rollout keeps for its queries and compensations.
type rollout struct {
	spec     contract.Rollout
	action   string
	key      contract.RouteKey
	progress contract.RolloutProgress

	token        string // the provision token when the undo tears down by it (revertBeforeProvision)
	routeTouched bool   // a route write toward the new fleet was attempted: revert restores the old route
	committed    bool   // decommissioning began: no more going back

	// People in the loop (see people.go).
	gate     string             // what an approve would release now; "" when nothing waits
	approved *contract.Decision // the approval that released the last gate
	promoted bool               // skip remaining pauses and the soak
	stop     *contract.Decision // abort or rollback requested
	stopKind string             // "abort" or "rollback"

	shrunk  map[string]int // rolling: old fleets shrunk so far, and their original sizes
	byCount bool           // rolling: the run passes counts and caps its waves (rollingByCountChange)
	waving  bool           // rolling: between the first wave and the last, where the phase stays rolling
	budget  *budgetRun     // rolling under a capacity budget (capacity.go); nil otherwise
	rules   canaryRules    // canary: header routes, mirror, stickiness set so far (rules.go)
	prev    contract.Route // the route before the rollout, as currentRoute read it

	baseline *baselineRun // a canary's baseline fleet (baseline.go); nil otherwise

	tracker // phase, events, current details, ImagoPhase, phase CloudEvents (tracker.go)

	checked  bool  // the spec was checked against the worker's provider (or the run predates the check)
	checkErr error // why the worker's provider cannot run the spec

	local bool // short steps run as local activities (localShortSteps)

	notifying int   // notifications being sent (hooks.go)
	gates     gates // deployment windows and freezes (gates.go)
}

func newRollout(ctx workflow.Context, in contract.RolloutInput) (*rollout, error) {
	r := &rollout{
		spec:   in.Spec,
		action: in.Action,
		key:    contract.RouteKey{Service: in.Spec.Service, Environment: in.Spec.Environment, Region: in.Spec.Region()},
	}
	r.tracker = newTracker(ctx, &r.progress.Story, trackedKind{
		noun: "rollout", phaseEvent: contract.EventRolloutPhase, finishedEvent: contract.EventRolloutFinished,
		describe: r.describe, outcome: RolloutOutcome,
		details: func() string { return AnalysesMarkdown(r.progress.Analyses) },
		notify:  r.notify,
	})
	if r.action == "" {
		r.action = contract.ActionRollout
	}
	r.progress = contract.RolloutProgress{
		Service:     in.Spec.Service,
		Environment: in.Spec.Environment,
		ImageID:     in.Spec.Image.ID,
		Strategy:    in.Spec.Strategy.Type,
		StartedBy:   in.StartedBy,
		StartedAt:   workflow.Now(ctx),
		Action:      r.action,
	}
	if err := workflow.SetQueryHandler(ctx, contract.QueryProgress, func() (contract.RolloutProgress, error) { return r.progress, nil }); err != nil {
		return nil, err
	}
	// The input, decoded by the caller's data converter (payloads may be encrypted):
	// what a rollback after decommission rolls out again.
	if err := workflow.SetQueryHandler(ctx, contract.QueryInput, func() (contract.RolloutInput, error) { return in, nil }); err != nil {
		return nil, err
	}
	if err := r.registerUpdates(ctx); err != nil {
		return nil, err
	}
	r.local = workflow.GetVersion(ctx, localShortSteps, workflow.DefaultVersion, 1) >= 1
	return r, nil
}

// checkSpec refuses a spec the worker's provider cannot run (a canary on a
// provider without weighted routes, ...) before anything is baked, resolved or
// made. The contract.UpdateChecked update answers with its outcome.
func (r *rollout) checkSpec(ctx workflow.Context) error {
	defer func() { r.checked = true }()
	if workflow.GetVersion(ctx, checkSpecChange, workflow.DefaultVersion, 1) < 1 {
		return nil
	}
	err := short(ctx, r.local, "check the spec against the worker's provider", contract.ActivityCheckSpec, r.spec).Get(ctx, nil)
	if err != nil {
		if es, ok := contract.InvalidSpec(err); ok {
			r.checkErr = temporal.NewNonRetryableApplicationError(es.Error(), contract.ErrInvalidSpec, nil, es)
		} else {
			r.checkErr = err
		}
		return r.fail("checking the spec against the worker's provider", err)
	}
	return nil
}

func (r *rollout) resolveImage(ctx workflow.Context, bake *contract.Bake) (string, error) {
	ref := r.spec.Image
	if r.action == contract.ActionRollback && workflow.GetVersion(ctx, rollbackResolvesPrevious, workflow.DefaultVersion, 1) >= 1 {
		var err error
		if ref, err = r.previousImage(ctx); err != nil {
			return "", err
		}
	}
	if bake != nil {
		r.setPhase(ctx, contract.PhaseResolving, "baking the image from "+ref.Bake)
		opts := workflow.ChildWorkflowOptions{
			WorkflowID:    workflow.GetInfo(ctx).WorkflowExecution.ID + "/bake",
			StaticSummary: fmt.Sprintf("bake %s for %s", bake.Service, r.key),
		}
		if workflow.GetVersion(ctx, bakeChildAsBake, workflow.DefaultVersion, 1) >= 1 {
			opts = bakeChildOptions(*bake, r.progress.StartedBy, "rollout "+r.key.String())
		}
		var res contract.BakeResult
		if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Bake,
			contract.BakeInput{Spec: *bake, StartedBy: r.progress.StartedBy}).Get(ctx, &res); err != nil {
			return "", r.fail("baking the image", err)
		}
		ref = contract.ImageRef{ID: res.ImageID}
	}
	what := ref.ID
	if ref.Channel != "" {
		what = "channel " + ref.Channel
	}
	r.setPhase(ctx, contract.PhaseResolving, "resolving image "+what)
	var img contract.ResolveImageResult
	err := short(ctx, r.local, "resolve image "+what, contract.ActivityResolveImage,
		contract.ResolveImageInput{Service: r.spec.Service, Ref: ref, Env: sortedKeys(r.spec.Env), Environment: r.spec.Environment}).Get(ctx, &img)
	if err != nil {
		return "", r.fail("resolving the image", err)
	}
	if img.Service != r.spec.Service {
		return "", r.fail("resolving the image", fmt.Errorf("image %s belongs to service %q, not %q", img.ImageID, img.Service, r.spec.Service))
	}
	r.progress.ImageID = img.ImageID
	if img.ImageID != r.spec.Image.ID {
		if err := workflow.UpsertTypedSearchAttributes(ctx, contract.ImageAttr.ValueSet(img.ImageID)); err != nil {
			workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		}
	}
	return img.ImageID, nil
}

// previousImage finds the image a rollback rolls out: the newest deployable
// image other than the live one, and says from which image it goes back.
func (r *rollout) previousImage(ctx workflow.Context) (contract.ImageRef, error) {
	r.setPhase(ctx, contract.PhaseResolving, "finding the previous deployable image")
	var prev contract.PreviousImageResult
	err := workflow.ExecuteActivity(quickOptions(ctx, "previous deployable image of "+r.key.String()), contract.ActivityPreviousImage,
		contract.PreviousImageInput{Service: r.spec.Service, Environment: r.spec.Place()}).Get(ctx, &prev)
	if err != nil {
		return contract.ImageRef{}, r.fail("finding the previous deployable image", err)
	}
	r.progress.RollbackFrom = prev.From
	r.event(ctx, fmt.Sprintf("rolling back from %s to %s, the previous deployable image", prev.From, prev.ImageID))
	// A rollback is the way back to safety: a deprecated previous image is allowed.
	return contract.ImageRef{ID: prev.ImageID, AllowDeprecated: true}, nil
}

func (r *rollout) currentRoute(ctx workflow.Context) (contract.Route, error) {
	var route contract.Route
	err := short(ctx, r.local, "read route "+r.key.String(), contract.ActivityReadRoute, r.key).Get(ctx, &route)
	if err != nil {
		return route, r.fail("reading the current route", err)
	}
	r.progress.OldFleets = route.FleetIDs()
	r.progress.Weights = weights(route)
	r.prev = route
	return route, nil
}

// provision makes the new fleet. byToken: the undo is armed already and
// tears down whatever this token made, so a cancel waits for the Provision
// attempt to stop (it heartbeats) before the undo looks.
func (r *rollout) provision(ctx workflow.Context, imageID string, byToken bool) (contract.Fleet, error) {
	size := r.spec.Fleet.Size
	if r.spec.Strategy.Type == contract.Rolling {
		size = r.waves(ctx).wave // the first wave; the others grow the fleet
		if first, ok, err := r.startBudget(ctx, r.prev, size); err != nil {
			return contract.Fleet{}, err
		} else if ok {
			size = first // the budget's first step
		}
	}
	r.setPhase(ctx, contract.PhaseProvisioning, fmt.Sprintf("provisioning %d instances of %s", size, imageID))
	req := r.provisionRequest(ctx, imageID, size, "", nil)
	if byToken {
		r.token = req.Token
	}
	fleet, err := r.runProvision(ctx, req, byToken)
	if err != nil {
		return fleet, r.fail("provisioning the new fleet", err)
	}
	r.progress.NewFleet = fleet.ID
	r.progress.Instances = len(fleet.Instances)
	r.event(ctx, fmt.Sprintf("fleet %s provisioned with %d instances", fleet.ID, len(fleet.Instances)))
	return fleet, nil
}

// provisionRequest asks for size instances of imageID for this rollout; the
// token is derived from the run (and suffix, for a fleet besides the new one),
// so a retried activity adopts what an earlier attempt made. labels add to the
// rollout's own.
func (r *rollout) provisionRequest(ctx workflow.Context, imageID string, size int, suffix string, labels map[string]string) contract.ProvisionRequest {
	info := workflow.GetInfo(ctx)
	req := contract.ProvisionRequest{
		// Derived from the run, so a retried activity adopts what an earlier attempt made.
		Token:       info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + suffix,
		Service:     r.spec.Service,
		Environment: r.spec.Environment,
		Region:      r.spec.Region(),
		ImageID:     imageID,
		Size:        size,
		Labels:      map[string]string{"rollout": info.WorkflowExecution.ID, "run": info.WorkflowExecution.RunID},
		Provider:    r.spec.Provider,
		// A provider whose load balancer checks instances (aws) checks what the spec says.
		Health: &contract.HealthCheck{Path: r.spec.Health.Path, Interval: r.spec.Health.Interval.D()},
		// Secrets stay references: the provider resolves them on the worker.
		Env: provisionEnv(r.spec.Env),
	}
	for _, k := range sortedKeys(labels) {
		req.Labels[k] = labels[k]
	}
	return req
}

// runProvision runs the Provision activity. byToken: an undo tears down by
// the request's token, so a cancel waits for the attempt to stop (it
// heartbeats) before the undo looks.
func (r *rollout) runProvision(ctx workflow.Context, req contract.ProvisionRequest, byToken bool) (contract.Fleet, error) {
	var fleet contract.Fleet
	opts := workflow.ActivityOptions{
		StartToCloseTimeout:    5 * time.Minute,
		HeartbeatTimeout:       20 * time.Second,
		ScheduleToCloseTimeout: 30 * time.Minute,
		WaitForCancellation:    byToken,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 25},
		Summary:                fmt.Sprintf("provision %d × %s", req.Size, req.ImageID),
	}
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), contract.ActivityProvision, req).Get(ctx, &fleet)
	return fleet, err
}

// waitHealthyMinHeartbeat is the shortest heartbeat timeout of WaitHealthy.
// Activity options are not part of what replay compares: changing it needs no
// workflow.GetVersion.
const waitHealthyMinHeartbeat = 2 * time.Second

// waitHealthy waits for the instances from..to (fleet order) of a fleet to pass
// the health probe: all of them, or those a rolling wave added.
func (r *rollout) waitHealthy(ctx workflow.Context, fleetID string, from, to int) error {
	r.enter(ctx, contract.PhaseWaitingHealthy, fmt.Sprintf("waiting for %d instances to pass %s", to-from, r.spec.Health.Path))
	return r.awaitHealthy(ctx, contract.WaitHealthyInput{FleetID: fleetID, From: from}, "waiting for the new fleet to become healthy")
}

// awaitHealthy runs WaitHealthy for in (the spec's probe filled in); doing
// says what failed, if it does.
func (r *rollout) awaitHealthy(ctx workflow.Context, in contract.WaitHealthyInput, doing string) error {
	h := r.spec.Health
	in.Path, in.Interval, in.Timeout = h.Path, h.Interval.D(), h.Timeout.D()
	// The heartbeat timeout is how soon a worker killed mid-wait is noticed and
	// the wait retried on another (P5): 2 s, or three probe intervals when
	// they are longer. The activity heartbeats every quarter of it and the
	// worker sends a heartbeat at most every 500 ms apart
	// (app.MainWorkerOptions), so a live worker misses it only when a
	// heartbeat is held up for over a second.
	heartbeat := max(3*h.Interval.D(), waitHealthyMinHeartbeat)
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: h.Timeout.D() + time.Minute,
		HeartbeatTimeout:    heartbeat,
		// The attempts together: the health timeout, and a margin for a retry after
		// a crashed worker (the probe loop resumes its deadline from the heartbeat).
		ScheduleToCloseTimeout: h.Timeout.D() + 2*time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: 5 * time.Second},
		Summary:                fmt.Sprintf("wait healthy %s %s", in.FleetID, h.Path),
	}
	var out contract.WaitHealthyResult
	err := r.interruptible(ctx, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), contract.ActivityWaitHealthy, in).Get(ctx, &out)
	})
	if err != nil {
		return r.fail(doing, err)
	}
	r.event(ctx, fmt.Sprintf("%d instances healthy after %s", out.Healthy, out.Took))
	return nil
}

// validate runs the smoke checks on a fleet's instances from from on (fleet order).
func (r *rollout) validate(ctx workflow.Context, fleetID string, from int) error {
	if len(r.spec.Checks) == 0 {
		return r.stopped()
	}
	r.enter(ctx, contract.PhaseValidating, fmt.Sprintf("running %d smoke checks on %s", len(r.spec.Checks), fleetID))
	err := short(ctx, r.local, fmt.Sprintf("smoke checks on %s", fleetID), contract.ActivityRunChecks,
		contract.RunChecksInput{FleetID: fleetID, From: from, Checks: r.spec.Checks}).Get(ctx, nil)
	if err != nil {
		return r.fail("validating the new fleet", err)
	}
	r.event(ctx, "smoke checks passed")
	return nil
}

func (r *rollout) decommission(ctx workflow.Context, prev contract.Route, fleet contract.Fleet) ([]string, error) {
	var old []string
	for _, id := range prev.FleetIDs() {
		if id != fleet.ID {
			old = append(old, id)
		}
	}
	if len(old) == 0 {
		return nil, nil
	}
	r.committed = true
	r.setPhase(ctx, contract.PhaseDecommissioning, fmt.Sprintf("terminating %v", old))
	for _, id := range old {
		err := workflow.ExecuteActivity(terminateOptions(ctx, "terminate "+id), contract.ActivityTerminate, contract.TerminateInput{FleetID: id}).Get(ctx, nil)
		if err != nil {
			return old, r.fail("decommissioning the old fleet", fmt.Errorf("%s now serves all traffic, but old fleet %s could not be terminated: %s", fleet.ID, id, reason(err)))
		}
		r.event(ctx, "terminated old fleet "+id)
	}
	return old, nil
}

// tearDown terminates the new fleet of a rollout that did not commit: every
// fleet its provision token made when the undo was armed before provisioning
// (the fleet may be half made, or not known to the workflow), else fleet by ID.
func (r *rollout) tearDown(ctx workflow.Context, fleet contract.Fleet) {
	if r.token == "" {
		if err := workflow.ExecuteActivity(terminateOptions(ctx, "tear down "+fleet.ID), contract.ActivityTerminate,
			contract.TerminateInput{FleetID: fleet.ID}).Get(ctx, nil); err != nil {
			r.event(ctx, fmt.Sprintf("could not tear down new fleet %s: %s", fleet.ID, reason(err)))
			return
		}
		r.event(ctx, "tore down new fleet "+fleet.ID)
		return
	}
	what := fleet.ID
	if what == "" {
		what = "the fleet of provision " + r.token
	}
	var gone []string
	if err := workflow.ExecuteActivity(terminateOptions(ctx, "tear down "+what), contract.ActivityTerminateByToken,
		contract.TerminateByTokenInput{Token: r.token, Service: r.spec.Service, Environment: r.spec.Environment}).Get(ctx, &gone); err != nil {
		r.event(ctx, fmt.Sprintf("could not tear down new fleet %s: %s", what, reason(err)))
		return
	}
	if len(gone) == 0 {
		r.event(ctx, "no new fleet to tear down: provisioning made none")
	}
	for _, id := range gone {
		r.event(ctx, "tore down new fleet "+id)
	}
}

// describe is the rollout as its phase events say it.
func (r *rollout) describe() (subject string, data contract.EventData, failure string) {
	p := r.progress
	return p.Service + "/" + p.Environment, contract.EventData{
		Service: p.Service, Environment: p.Environment, Image: p.ImageID,
		Step: p.Step, Strategy: p.Strategy, Fleet: p.NewFleet, StartedBy: p.StartedBy, Gate: p.Gate,
	}, p.Error
}

// finish records the outcome: progress, search attributes, the inventory; and
// waits for update handlers so no caller is left without an answer.
func (r *rollout) finish(ctx workflow.Context, err error) error {
	phase := RolloutEnd(err) // also the inventory's outcome
	msg := fmt.Sprintf("%s serves %s", r.progress.ImageID, r.key)
	if err != nil {
		msg = reason(err)
		r.progress.Error = msg
	}
	r.gate, r.progress.Gate = "", ""
	r.setPhase(ctx, phase, msg)
	r.finalHook(ctx, phase, err)
	r.recordDeployment(ctx, phase, msg)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return err
}

// fail wraps err with the phase it happened in, in words a person can act on.
func (r *rollout) fail(doing string, err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case ErrRolloutFailed, ErrRolloutAborted, ErrRolledBack:
			return err
		}
	}
	msg := fmt.Sprintf("rollout %s failed while %s: %s", r.id(), doing, reason(err))
	if temporal.IsCanceledError(err) {
		msg = fmt.Sprintf("rollout %s canceled while %s", r.id(), doing)
	}
	switch {
	case r.committed:
	case len(r.progress.OldFleets) > 0:
		msg += "; the previous fleet keeps serving"
	case r.progress.NewFleet == "":
		msg += "; nothing was changed"
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrRolloutFailed, err)
}

// reason is the message of the outermost application error, which activity and
// child-workflow wrappers otherwise bury under their own text.
func reason(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

func weights(r contract.Route) []contract.FleetWeight {
	out := make([]contract.FleetWeight, 0, len(r.Backends))
	for _, b := range r.Backends {
		out = append(out, contract.FleetWeight{FleetID: b.FleetID, Weight: b.Weight})
	}
	return out
}

// provisionEnv is the rollout's env as the provider takes it: values, and
// secrets as their references.
func provisionEnv(env map[string]contract.EnvValue) map[string]contract.EnvVar {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]contract.EnvVar, len(env))
	for _, k := range sortedKeys(env) {
		out[k] = contract.EnvVar{Value: env[k].Value, Secret: env[k].Secret}
	}
	return out
}

// sortedKeys are m's keys in order: no map order in workflow code.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
