package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// Phases of an AnalysisResult.
const (
	AnalysisSuccessful   = analysis.PhaseSuccessful
	AnalysisFailed       = analysis.PhaseFailed
	AnalysisInconclusive = analysis.PhaseInconclusive
)

// AnalysisProgress is analysis.AnalysisProgress.
type AnalysisProgress = analysis.AnalysisProgress

// RunAnalysis measures the fleet as in.Spec says until the outcome is decided,
// heartbeating on a ticker (a slow measurement included) with the measurements
// so far.
// An invalid spec (or a provider that cannot measure it) fails without retry.
func (a *Activities) RunAnalysis(ctx context.Context, in contract.AnalysisInput) (contract.AnalysisResult, error) {
	out := contract.AnalysisResult{Name: in.Name, FleetID: in.FleetID, AnalysisSource: SourceOf(in.Spec, in.Key, in.FleetID)}
	spec := analysis.Expand(in.Spec, AnalysisVars(in.Key, in.FleetID))
	specErr := func(err error) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("analysis %s: %v", in.Name, err), contract.ErrAnalysisSpec, nil)
	}
	if err := analysis.Validate(spec); err != nil {
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
		Metrics: func(ctx context.Context) (map[string]contract.FleetMetrics, error) {
			m, err := a.Provider.FleetMetrics(ctx, in.Key)
			if c := provider.ErrorCode(err); c == provider.FailedPrecondition || c == provider.InvalidArgument {
				return nil, analysis.Permanent(err) // no router metrics, a bad key: retrying cannot fix it
			}
			return m, err
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
	res, err := runner.Run(ctx, spec, m, func(meas contract.Measurement) {
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

// SourceOf and AnalysisVars: see package analysis.
var (
	SourceOf     = analysis.SourceOf
	AnalysisVars = analysis.AnalysisVars
)
