package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/provider"
)

// ErrAnalysisSpec fails RunAnalysis without retry: the analysis spec is invalid
// or cannot be measured with this provider.
const ErrAnalysisSpec = "AnalysisSpec"

// Phases of an AnalysisResult.
const (
	AnalysisSuccessful   = analysis.PhaseSuccessful
	AnalysisFailed       = analysis.PhaseFailed
	AnalysisInconclusive = analysis.PhaseInconclusive
)

// RunAnalysisActivity is RunAnalysis' activity type, as the worker registers it.
const RunAnalysisActivity = "RunAnalysis"

// AnalysisInput runs one analysis against a fleet.
type AnalysisInput struct {
	// Name names the analysis in messages (the rollout spec's analyses key).
	Name string        `json:"name"`
	Spec analysis.Spec `json:"spec"`
	// Key is the router of the service (provider router).
	Key provider.RouteKey `json:"key"`
	// FleetID is the fleet under analysis. {{fleet}}, {{service}} and
	// {{environment}} in the spec's query, address and url are replaced by it
	// and by Key.
	FleetID string `json:"fleetId"`
}

// AnalysisResult is the outcome of an analysis. Failed and Inconclusive are
// results, not activity errors: the workflow decides what they mean.
type AnalysisResult struct {
	Name    string `json:"name"`
	FleetID string `json:"fleetId,omitempty"`
	// Phase is AnalysisSuccessful, AnalysisFailed or AnalysisInconclusive.
	Phase string `json:"phase"`
	// Reason is empty for Successful, else one of analysis.Reason*; Failed with
	// analysis.ReasonCouldNotMeasure means too many measurements in a row could
	// not be taken.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
	// Measurements are the latest analysis.KeptMeasurements measurements (the
	// history keeps no more); Counts count them all.
	Measurements []analysis.Measurement `json:"measurements"`
	Counts       analysis.Counts        `json:"counts"`
	AnalysisSource
}

// AnalysisSource says what an analysis measured and how it judged it, once,
// apart from the measurements (a Prometheus query is long).
type AnalysisSource struct {
	Provider string `json:"provider,omitempty"`
	Metric   string `json:"metric,omitempty"`
	// Condition is the success condition: "max 0.05".
	Condition string `json:"condition,omitempty"`
	// Source is where measurements came from (analysis.Spec.Source): the
	// router's counters, a Prometheus address, a URL (passwords hidden).
	Source string `json:"source,omitempty"`
	// Query is the Prometheus query as run ({{fleet}} and the others replaced).
	Query    string `json:"query,omitempty"`
	OnNoData string `json:"onNoData,omitempty"`
}

// SourceOf describes the analysis spec s, expanded for fleetID and key as
// RunAnalysis runs it.
func SourceOf(s analysis.Spec, key provider.RouteKey, fleetID string) AnalysisSource {
	s = s.Expand(AnalysisVars(key, fleetID))
	onNoData := s.OnNoData
	if onNoData == "" {
		onNoData = analysis.NoDataInconclusive
	}
	return AnalysisSource{Provider: s.Provider, Metric: s.Metric, Condition: s.Condition(), Source: s.Source(), Query: s.Query, OnNoData: onNoData}
}

// AnalysisVars are the values of the template variables of an analysis' query,
// address and url: {{fleet}}, {{service}}, {{environment}}.
func AnalysisVars(key provider.RouteKey, fleetID string) map[string]string {
	return map[string]string{"fleet": fleetID, "service": key.Service, "environment": key.Environment}
}

// AnalysisProgress is the heartbeat of RunAnalysis: the measurements taken so
// far. A retried attempt goes on from them (they count).
type AnalysisProgress struct {
	Measurements []analysis.Measurement `json:"measurements"`
}

// RunAnalysis measures the fleet as in.Spec says until the outcome is decided,
// heartbeating on a ticker (a slow measurement included) with the measurements
// so far.
// An invalid spec (or a provider that cannot measure it) fails without retry.
func (a *Activities) RunAnalysis(ctx context.Context, in AnalysisInput) (AnalysisResult, error) {
	out := AnalysisResult{Name: in.Name, FleetID: in.FleetID, AnalysisSource: SourceOf(in.Spec, in.Key, in.FleetID)}
	spec := in.Spec.Expand(AnalysisVars(in.Key, in.FleetID))
	specErr := func(err error) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("analysis %s: %v", in.Name, err), ErrAnalysisSpec, nil)
	}
	if err := spec.Validate(); err != nil {
		return out, specErr(err)
	}
	if spec.Provider == analysis.ProviderRouter {
		switch {
		case a.Provider == nil:
			return out, specErr(errors.New("provider router: the worker has no provider"))
		case in.FleetID == "":
			return out, specErr(errors.New("provider router: no fleet to measure"))
		case in.Key.Service == "" || in.Key.Environment == "":
			return out, specErr(fmt.Errorf("provider router: route key %q names no router", in.Key))
		}
	}
	m, err := analysis.NewMeasurer(spec, analysis.Env{
		HTTP:    a.Analysis,
		FleetID: in.FleetID,
		Metrics: func(ctx context.Context) (map[string]provider.FleetMetrics, error) {
			return a.Provider.FleetMetrics(ctx, in.Key)
		},
	})
	if err != nil {
		return out, specErr(err)
	}

	var prog AnalysisProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &prog); err != nil {
			prog = AnalysisProgress{}
		}
	}
	hb := startHeartbeat(ctx, prog)
	defer hb.Stop()
	runner := analysis.Runner{Previous: prog.Measurements}
	if s, ok := m.(fmt.Stringer); ok && spec.Provider == analysis.ProviderPrometheus && in.FleetID != "" {
		runner.Subject = s.String() + " of fleet " + in.FleetID
	}
	logger := activity.GetLogger(ctx)
	if n := len(prog.Measurements); n > 0 {
		logger.Info("analysis resumes", "analysis", in.Name, "fleet", in.FleetID, "measurements", n)
	}
	res, err := runner.Run(ctx, spec, m, func(meas analysis.Measurement) {
		prog.Measurements = append(prog.Measurements, meas)
		hb.Set(prog)
		logger.Info("analysis measurement", "analysis", in.Name, "fleet", in.FleetID, "phase", meas.Phase, "value", analysis.FormatValue(meas.Value), "message", meas.Message)
	})
	out.Phase, out.Reason, out.Message, out.Counts = res.Phase, res.Reason, res.Message, res.Counts
	out.Measurements = analysis.Latest(res.Measurements, analysis.KeptMeasurements)
	if err != nil {
		var se *analysis.SpecError
		switch {
		case ctx.Err() != nil:
			return out, ctx.Err()
		case errors.As(err, &se), analysis.IsPermanent(err):
			return out, specErr(err)
		}
		return out, err
	}
	logger.Info("analysis done", "analysis", in.Name, "fleet", in.FleetID, "phase", out.Phase, "message", out.Message)
	return out, nil
}
