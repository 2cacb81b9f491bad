package workflows

import (
	"math"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity options. Every retried activity is bounded twice: each attempt
// (StartToClose, or a heartbeat timeout for long ones) and all attempts
// together (ScheduleToClose: Temporal's fixed-wall-time retries), so a step
// that keeps failing ends the workflow with its reason instead of retrying
// forever. Options are not part of what replay checks: changing them needs no
// workflow.GetVersion.

// quick are the options of short provider and catalog calls. A short
// StartToClose bounds how long a call lost with a crashed worker waits to be
// retried (nothing heartbeats for it); retries are many, since attempts are cheap.
var quick = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 25,
	},
}

// terminate are the options of a Terminate. A provider may wait out a load
// balancer's deregistration delay before it deletes instances (aws: up to
// 3600 s, 30 s by default), heartbeating as it waits: a dead worker is noticed
// by the heartbeat timeout, not the long start-to-close timeout.
var terminate = workflow.ActivityOptions{
	StartToCloseTimeout:    90 * time.Minute,
	HeartbeatTimeout:       time.Minute,
	ScheduleToCloseTimeout: 3 * time.Hour,
	RetryPolicy:            quick.RetryPolicy,
}

// compensationBudget is how long an undo (traffic back to the old fleet, the
// new fleet torn down) keeps retrying: longer than any provider outage worth
// waiting out, so an outage never leaves a canary split behind.
const compensationBudget = 12 * time.Hour

func quickOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, quick, summary)
}

// localShortSteps is the workflow change that runs a rollout's short steps
// (check the spec, resolve the image, read the route, smoke checks, the
// inventory record; not route writes) as local activities: inside the workflow task
// that reaches them, on the worker running it, with the quick options'
// timeouts and retries. Each saves a round trip through the server (an
// activity task, then a workflow task for its result). They are reads,
// idempotent writes or idempotent records, so a worker that dies in one simply
// runs it again when the workflow task is retried. Runs recorded before it
// schedule them as activities.
const localShortSteps = "short-steps-as-local-activities"

// short runs a short step: a local activity with the quick options when local
// (the run began after localShortSteps), an activity with them otherwise, and
// always an activity on a compensation context (its retries last
// compensationBudget; a local activity's would hold workflow tasks that long).
func short(ctx workflow.Context, local bool, summary, activity string, args ...any) workflow.Future {
	if !local || compensating(ctx) {
		return workflow.ExecuteActivity(quickOptions(ctx, summary), activity, args...)
	}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    quick.StartToCloseTimeout,
		ScheduleToCloseTimeout: quick.ScheduleToCloseTimeout,
		RetryPolicy:            quick.RetryPolicy,
		Summary:                summary,
	}), activity, args...)
}

func terminateOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, terminate, summary)
}

// withOptions sets o on ctx; on a compensation context (see compensation) the
// retries are unlimited, at most a minute apart, for compensationBudget.
func withOptions(ctx workflow.Context, o workflow.ActivityOptions, summary string) workflow.Context {
	o.Summary = summary
	if compensating(ctx) {
		rp := *o.RetryPolicy
		// No attempt limit: compensationBudget is the bound. (Not 0, the server's
		// "unlimited", which the SDK's test environment turns into 10 attempts.)
		rp.MaximumAttempts = math.MaxInt32
		rp.MaximumInterval = time.Minute
		o.RetryPolicy = &rp
		o.ScheduleToCloseTimeout = compensationBudget
	}
	return workflow.WithActivityOptions(ctx, o)
}

type compensationKey struct{}

// compensation is the context an undo runs on: disconnected, so it runs after
// the workflow was cancelled too, and marked, so the options of every activity
// it runs give it compensationBudget, not the quick options' few minutes.
func compensation(ctx workflow.Context) workflow.Context {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	return workflow.WithValue(dctx, compensationKey{}, true)
}

func compensating(ctx workflow.Context) bool {
	on, _ := ctx.Value(compensationKey{}).(bool)
	return on
}
