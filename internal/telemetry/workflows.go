package telemetry

import (
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/workflows"
)

// imago's own workflow metrics.
const (
	metricRollouts     = "imago_rollouts_total"
	metricBakes        = "imago_bakes_total"
	metricPhaseSeconds = "imago_phase_duration_seconds"
	metricDrift        = "imago_drift_instances"
)

// workflowMetrics is a worker interceptor that measures imago's workflows from the
// outside, so workflow code stays about rollouts, not metrics: it watches each
// run's ImagoPhase search-attribute upserts (how long each phase lasted, in
// workflow time) and its result (rollouts and bakes by outcome).
//
// It emits through workflow.GetMetricsHandler, which drops metrics while a run is
// replayed (after a worker restart, a cache eviction or for a query), so each
// phase and each outcome counts once however often its history is replayed.
// Being an Interceptor, it goes into client.Options.Interceptors, and so into
// every worker of that client.
type workflowMetrics struct {
	interceptor.InterceptorBase
}

// WorkflowMetrics returns the interceptor that emits imago_rollouts_total,
// imago_bakes_total, imago_phase_duration_seconds and imago_drift_instances
// (each drift check's drifted instances per service and environment) through
// the client's MetricsHandler.
func WorkflowMetrics() interceptor.Interceptor { return &workflowMetrics{} }

func (*workflowMetrics) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &workflowInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}}
}

// workflowInbound is one run's state: the phase it is in and since when.
type workflowInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	phase string
	since time.Time
}

func (w *workflowInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return w.Next.Init(&workflowOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, in: w})
}

func (w *workflowInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := w.Next.ExecuteWorkflow(ctx, in)
	var arg any
	if len(in.Args) > 0 {
		arg = in.Args[0]
	}
	countOutcome(ctx, arg, res, err)
	return res, err
}

// phaseChanged ends the current phase's clock and starts the next one's.
func (w *workflowInbound) phaseChanged(ctx workflow.Context, phase string) {
	if phase == w.phase {
		return // the same phase again, e.g. the next canary step
	}
	now := workflow.Now(ctx)
	if w.phase != "" {
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"phase": w.phase}).
			Timer(metricPhaseSeconds).Record(now.Sub(w.since))
	}
	w.phase, w.since = phase, now
}

type workflowOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	in *workflowInbound
}

func (w *workflowOutbound) UpsertTypedSearchAttributes(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) error {
	if phase, ok := temporal.NewSearchAttributes(updates...).GetKeyword(contract.PhaseAttr); ok {
		w.in.phaseChanged(ctx, phase)
	}
	return w.Next.UpsertTypedSearchAttributes(ctx, updates...)
}

// countOutcome counts a finished rollout or bake by its outcome, the same words
// its finished event uses (workflows' one classifier: RolloutEnd, BakeEnd), and
// sets a drift check's gauges.
func countOutcome(ctx workflow.Context, arg, res any, err error) {
	h := workflow.GetMetricsHandler(ctx)
	switch in := deref(arg).(type) {
	case contract.RolloutInput:
		outcome, _ := workflows.RolloutOutcome(workflows.RolloutEnd(err))
		h.WithTags(map[string]string{"service": in.Spec.Service, "environment": in.Spec.Environment, "outcome": outcome.MetricLabel()}).
			Counter(metricRollouts).Inc(1)
	case contract.BakeInput:
		r, _ := deref(res).(contract.BakeResult)
		outcome, _ := workflows.BakeOutcome(workflows.BakeEnd(err), err == nil && r.Cached)
		h.WithTags(map[string]string{"service": in.Spec.Service, "outcome": outcome.MetricLabel()}).Counter(metricBakes).Inc(1)
	case contract.DriftInput:
		r, _ := deref(res).(contract.DriftReport)
		for _, t := range r.Targets {
			if t.Skipped == "" {
				h.WithTags(map[string]string{"service": t.Service, "environment": t.Environment}).Gauge(metricDrift).Update(float64(t.Instances))
			}
		}
	}
}

func deref(v any) any {
	switch p := v.(type) {
	case *contract.RolloutInput:
		if p != nil {
			return *p
		}
	case *contract.BakeInput:
		if p != nil {
			return *p
		}
	case *contract.BakeResult:
		if p != nil {
			return *p
		}
	case *contract.DriftInput:
		if p != nil {
			return *p
		}
	case *contract.DriftReport:
		if p != nil {
			return *p
		}
	}
	return v
}
