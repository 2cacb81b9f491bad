package activities

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/spec"
)

// WaitHealthyInput asks for every instance of a fleet to pass its health probe.
type WaitHealthyInput struct {
	FleetID  string        `json:"fleetId"`
	Path     string        `json:"path"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
}

// WaitHealthyResult reports how the fleet came up.
type WaitHealthyResult struct {
	Healthy int           `json:"healthy"`
	Took    time.Duration `json:"took"`
}

// HealthProgress is the heartbeat of WaitHealthy; a retried attempt resumes the
// same deadline from it instead of starting a new one.
type HealthProgress struct {
	Started time.Time `json:"started"`
	Healthy int       `json:"healthy"`
	Total   int       `json:"total"`
}

// WaitHealthy probes every instance until all answer 2xx on Path, heartbeating
// each round; it fails (non-retryable) when Timeout passes first.
func (a *Activities) WaitHealthy(ctx context.Context, in WaitHealthyInput) (WaitHealthyResult, error) {
	prog := HealthProgress{Started: time.Now()}
	if activity.HasHeartbeatDetails(ctx) {
		var prev HealthProgress
		if activity.GetHeartbeatDetails(ctx, &prev) == nil && !prev.Started.IsZero() {
			prog.Started = prev.Started
		}
	}
	deadline := prog.Started.Add(in.Timeout)
	for {
		var problems []string
		fleet, err := a.Provider.Describe(ctx, in.FleetID)
		switch {
		case err == nil:
			problems = a.probeFleet(ctx, fleet, in.Path)
			prog.Total = len(fleet.Instances)
			prog.Healthy = prog.Total - len(problems)
		case provider.ErrorCode(err) != provider.Unknown:
			return WaitHealthyResult{}, providerError(err)
		default:
			// A transient provider error is one more unanswered probe, not a failure.
			problems = []string{"describe " + in.FleetID + ": " + err.Error()}
			prog.Healthy = 0
		}
		activity.RecordHeartbeat(ctx, prog)
		if len(problems) == 0 {
			return WaitHealthyResult{Healthy: prog.Healthy, Took: time.Since(prog.Started).Round(time.Millisecond)}, nil
		}
		if !time.Now().Before(deadline) {
			msg := fmt.Sprintf("fleet %s not healthy within %s: %d of %d instances pass %s; %s",
				in.FleetID, in.Timeout, prog.Healthy, prog.Total, in.Path, strings.Join(problems, "; "))
			return WaitHealthyResult{}, temporal.NewNonRetryableApplicationError(msg, ErrHealthTimeout, nil)
		}
		wait := in.Interval
		if rest := time.Until(deadline); rest < wait {
			wait = rest
		}
		select {
		case <-ctx.Done():
			return WaitHealthyResult{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// probeFleet returns one line per instance that is not healthy, sorted.
func (a *Activities) probeFleet(ctx context.Context, fleet provider.Fleet, path string) []string {
	var problems []string
	for _, in := range fleet.Instances {
		if in.State != provider.InstanceRunning {
			problems = append(problems, fmt.Sprintf("%s is %s", in.ID, in.State))
			continue
		}
		status, _, err := a.get(ctx, in.Address, path)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", in.ID, err))
		case status < 200 || status > 299:
			problems = append(problems, fmt.Sprintf("%s: %s answered %d", in.ID, path, status))
		}
	}
	sort.Strings(problems)
	return problems
}

func (a *Activities) get(ctx context.Context, addr, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(body), err
}

// RunChecksInput runs smoke checks against every instance of a fleet.
type RunChecksInput struct {
	FleetID string       `json:"fleetId"`
	Checks  []spec.Check `json:"checks"`
}

// RunChecks runs each check against each instance; the first failure fails the
// activity without retry, naming the check, the instance and what it answered.
func (a *Activities) RunChecks(ctx context.Context, in RunChecksInput) error {
	return a.runChecks(ctx, in.FleetID, in.Checks)
}

func (a *Activities) runChecks(ctx context.Context, fleetID string, checks []spec.Check) error {
	fleet, err := a.Provider.Describe(ctx, fleetID)
	if err != nil {
		return providerError(err)
	}
	for i, c := range checks {
		for _, inst := range fleet.Instances {
			status, body, err := a.get(ctx, inst.Address, c.Path)
			if err != nil {
				return err // the instance passed its health probe: a network error is worth a retry
			}
			var why string
			switch {
			case status != c.ExpectStatus:
				why = fmt.Sprintf("want status %d, got %d", c.ExpectStatus, status)
			case c.ExpectBody != "" && !strings.Contains(body, c.ExpectBody):
				why = fmt.Sprintf("want a body containing %q, got %q", c.ExpectBody, abbreviate(body, 120))
			default:
				continue
			}
			msg := fmt.Sprintf("smoke check checks[%d] GET %s on instance %s (%s): %s", i, c.Path, inst.ID, inst.Address, why)
			return temporal.NewNonRetryableApplicationError(msg, ErrCheckFailed, nil)
		}
	}
	return nil
}

func abbreviate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
