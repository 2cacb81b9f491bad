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
	var m analysis.Measurer
	if spec.Kind != contract.AnalysisCompare {
		var err error
		if m, err = analysis.NewMeasurer(spec, analysis.Env{HTTP: a.Analysis, FleetID: in.FleetID, Metrics: a.routerMetrics(in.Key)}); err != nil {
			return out, specErr(err)
		}
	}

	prog := resumedProgress(ctx)
	hb := startHeartbeat(ctx, prog)
	defer hb.Stop()
	runner := analysis.Runner{Previous: prog.Measurements}
	logger := activity.GetLogger(ctx)
	if n := len(prog.Measurements); n > 0 {
		logger.Info("analysis resumes", "analysis", in.Name, "fleet", in.FleetID, "measurements", n)
	}
	var res analysis.Result
	var err error
	if spec.Kind == contract.AnalysisCompare {
		// the canary (in.FleetID) against the baseline fleet, heartbeating the
		// samples so far, from which a retry goes on
		out.BaselineFleetID = in.BaselineFleetID
		res, out.Judgment, err = runner.Compare(ctx, spec, in.FleetID, in.BaselineFleetID, a.routerMetrics(in.Key), prog.Samples,
			func(meas contract.Measurement, samples analysis.CompareSamples) {
				prog.Measurements = append(prog.Measurements, meas)
				prog.Samples = &samples
				hb.Set(prog)
				logger.Info("analysis sample", "analysis", in.Name, "fleet", in.FleetID, "baseline", in.BaselineFleetID, "phase", meas.Phase, "message", meas.Message)
			})
	} else {
		if s, ok := m.(fmt.Stringer); ok && spec.Provider == analysis.ProviderPrometheus && in.FleetID != "" {
			runner.Subject = s.String() + " of fleet " + in.FleetID
		}
		res, err = runner.Run(ctx, spec, m, func(meas contract.Measurement) {
			prog.Measurements = append(prog.Measurements, meas)
			hb.Set(prog)
			logger.Info("analysis measurement", "analysis", in.Name, "fleet", in.FleetID, "phase", meas.Phase, "value", analysis.FormatValue(meas.Value), "message", meas.Message)
		})
	}
	out.Phase, out.Reason, out.Message, out.Counts = res.Phase, res.Reason, res.Message, res.Counts
	out.Measurements = analysis.Latest(res.Measurements, analysis.KeptMeasurements)
	if err != nil {
		return out, analysisErr(ctx, err, specErr)
	}
	logger.Info("analysis done", "analysis", in.Name, "fleet", in.FleetID, "phase", out.Phase, "message", out.Message)
	return out, nil
}

// routerMetrics reads the per-fleet counters of key's router; a driver's
// refusal (no router metrics, a bad key) is permanent: retrying cannot fix it.
func (a *Activities) routerMetrics(key contract.RouteKey) func(context.Context) (map[string]contract.FleetMetrics, error) {
	return func(ctx context.Context) (map[string]contract.FleetMetrics, error) {
		m, err := a.Provider.FleetMetrics(ctx, key)
		if c := provider.ErrorCode(err); c == provider.FailedPrecondition || c == provider.InvalidArgument {
			return nil, analysis.Permanent(err)
		}
		return m, err
	}
}

// resumedProgress is what an earlier attempt of this analysis heartbeated (the
// measurements and samples so far), or nothing.
func resumedProgress(ctx context.Context) AnalysisProgress {
	var prog AnalysisProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &prog); err != nil {
			prog = AnalysisProgress{}
		}
	}
	return prog
}

// analysisErr is how an analysis's error leaves the activity: cancelled as
// cancelled, a spec or permanent problem through permanent (no retry),
// anything else retried.
func analysisErr(ctx context.Context, err error, permanent func(error) error) error {
	var se *analysis.SpecError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &se), analysis.IsPermanent(err):
		return permanent(err)
	}
	return err
}

// SourceOf and AnalysisVars: see package analysis.
var (
	SourceOf     = analysis.SourceOf
	AnalysisVars = analysis.AnalysisVars
)
