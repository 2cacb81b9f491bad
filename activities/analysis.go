package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// analysisHeartbeatEvery bounds the time between heartbeats while RunAnalysis
// waits for its next measurement (less when the heartbeat timeout is shorter).
const analysisHeartbeatEvery = 5 * time.Second

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
	Reason       string                 `json:"reason,omitempty"`
	Message      string                 `json:"message"`
	Measurements []analysis.Measurement `json:"measurements"`
}

// AnalysisProgress is the heartbeat of RunAnalysis: the measurements taken so
// far. A retried attempt goes on from them (they count).
type AnalysisProgress struct {
	Measurements []analysis.Measurement `json:"measurements"`
}

// RunAnalysis measures the fleet as in.Spec says until the outcome is decided,
// heartbeating every measurement and at least every few seconds in between.
// An invalid spec (or a provider that cannot measure it) fails without retry.
func (a *Activities) RunAnalysis(ctx context.Context, in AnalysisInput) (AnalysisResult, error) {
	out := AnalysisResult{Name: in.Name, FleetID: in.FleetID}
	spec := in.Spec.Expand(map[string]string{
		"fleet":       in.FleetID,
		"service":     in.Key.Service,
		"environment": in.Key.Environment,
	})
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
	every := analysisHeartbeatEvery
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 && hb/3 < every {
		every = max(hb/3, 100*time.Millisecond)
	}
	runner := analysis.Runner{
		Previous: prog.Measurements,
		Sleep: func(ctx context.Context, d time.Duration) error {
			return sleepHeartbeating(ctx, d, every, func() { activity.RecordHeartbeat(ctx, prog) })
		},
	}
	logger := activity.GetLogger(ctx)
	if n := len(prog.Measurements); n > 0 {
		logger.Info("analysis resumes", "analysis", in.Name, "fleet", in.FleetID, "measurements", n)
	}
	res, err := runner.Run(ctx, spec, m, func(meas analysis.Measurement) {
		prog.Measurements = append(prog.Measurements, meas)
		activity.RecordHeartbeat(ctx, prog)
		logger.Info("analysis measurement", "analysis", in.Name, "fleet", in.FleetID, "phase", meas.Phase, "value", meas.Value, "message", meas.Message)
	})
	out.Phase, out.Reason, out.Message, out.Measurements = res.Phase, res.Reason, res.Message, res.Measurements
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

// sleepHeartbeating waits for d, calling beat at least every every, and stops
// early with ctx.Err() when ctx is done.
func sleepHeartbeating(ctx context.Context, d, every time.Duration, beat func()) error {
	deadline := time.Now().Add(d)
	for {
		rest := time.Until(deadline)
		if rest <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(min(rest, every))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if time.Until(deadline) > 0 {
			beat()
		}
	}
}
