package activities

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/probe"
	"github.com/imago/imago/internal/provider"
)

// WaitHealthy probes every instance until all answer 2xx on Path; it fails
// (non-retryable) when Timeout passes first, or at once when every instance
// has exited (ErrInstancesExited: nothing would answer before the timeout). It heartbeats before the first
// round (fixing the deadline a retried attempt resumes) and on a ticker while
// probes are in flight, so a slow health endpoint is never taken for a dead
// worker.
func (a *Activities) WaitHealthy(ctx context.Context, in contract.WaitHealthyInput) (contract.WaitHealthyResult, error) {
	prog := contract.HealthProgress{Started: time.Now()}
	if activity.HasHeartbeatDetails(ctx) {
		var prev contract.HealthProgress
		if activity.GetHeartbeatDetails(ctx, &prev) == nil && !prev.Started.IsZero() {
			prog.Started = prev.Started
			prog.Total = prev.Total
		}
	}
	hb := startHeartbeat(ctx, prog)
	defer hb.Stop()
	deadline := prog.Started.Add(in.Timeout)
	var described contract.Fleet // the last round's fleet, for the timing
	problems, err := a.pollHealthy(ctx, in.FleetID, in.From, in.AtLeast, in.Path, in.Interval, deadline, func(fleet contract.Fleet, healthy, total int) {
		described = fleet
		prog.Healthy = healthy
		if total > 0 { // a round whose describe failed keeps the last known size
			prog.Total = total
		}
		hb.Set(prog)
	})
	if err != nil {
		return contract.WaitHealthyResult{}, err
	}
	if len(problems) > 0 && (in.AtLeast == 0 || prog.Healthy < in.AtLeast) {
		if in.AtLeast > 0 {
			problems = append([]string{fmt.Sprintf("fewer than the %d the rollout needs", in.AtLeast)}, problems...)
		}
		msg := fmt.Sprintf("fleet %s not healthy within %s: %d of %d instances pass %s; %s",
			in.FleetID, in.Timeout, prog.Healthy, prog.Total, in.Path, strings.Join(problems, "; "))
		return contract.WaitHealthyResult{}, temporal.NewNonRetryableApplicationError(msg, contract.ErrHealthTimeout, nil)
	}
	took := time.Since(prog.Started).Round(time.Millisecond)
	if in.From == 0 && in.AtLeast == 0 {
		a.recordTiming(ctx, described, prog.Started, took)
	}
	return contract.WaitHealthyResult{Healthy: prog.Healthy, Took: took}, nil
}

// recordTiming keeps, in the catalog, how long a whole fleet took to come up
// (`imago plan` assumes it for the next rollout). Best effort: a measurement
// that cannot be recorded is only logged. f is the fleet as the health wait's
// last round described it (the whole fleet: the wait started at instance 0).
func (a *Activities) recordTiming(ctx context.Context, f contract.Fleet, started time.Time, took time.Duration) {
	if a.Catalog == nil {
		return
	}
	err := a.Catalog.RecordTiming(ctx, contract.Timing{
		Service: f.Service, Environment: f.Environment, ImageID: f.ImageID, FleetID: f.ID, Instances: len(f.Instances),
		Provision: max(started.Sub(f.Created), 0).Round(time.Millisecond), Healthy: took, Measured: time.Now().UTC(),
	})
	if err != nil {
		activity.GetLogger(ctx).Warn("boot time not recorded", "fleet", f.ID, "error", err)
	}
}

// pollHealthy probes every instance of a fleet until all pass path (or, with
// atLeast above 0, that many), the rounds probe.Backoff(interval) apart (quick
// at first, then each interval), until there are no problems or the deadline
// passes (the last round's problems). round is called after each round, to
// heartbeat, with the fleet as described (the zero Fleet when describing
// failed). A transient provider error is one more unanswered probe; a
// permanent one, every instance having exited, or cancellation, is the error.
func (a *Activities) pollHealthy(ctx context.Context, fleetID string, from, atLeast int, path string, interval time.Duration, deadline time.Time,
	round func(fleet contract.Fleet, healthy, total int)) ([]string, error) {
	next := probe.Backoff(interval)
	for {
		var problems []string
		healthy, total := 0, 0
		fleet, err := a.describeFrom(ctx, fleetID, from)
		switch {
		case err == nil && allExited(fleet.Instances):
			return nil, exitedError(fleet)
		case err == nil:
			problems = a.probeFleet(ctx, fleet, path)
			total = len(fleet.Instances)
			healthy = total - len(problems)
		case provider.ErrorCode(err) != provider.Unknown:
			return nil, providerError(err)
		default:
			problems = []string{"describe " + fleetID + ": " + err.Error()}
		}
		round(fleet, healthy, total)
		if len(problems) == 0 || (atLeast > 0 && healthy >= atLeast) || !time.Now().Before(deadline) {
			return problems, nil
		}
		wait := next()
		if rest := time.Until(deadline); rest < wait {
			wait = rest
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// allExited reports whether there are instances and every one has exited.
func allExited(ins []contract.Instance) bool {
	for _, in := range ins {
		if in.State != contract.InstanceExited {
			return false
		}
	}
	return len(ins) > 0
}

// exitedError says that every instance of fleet has exited: how each ended,
// where its log is and how the log ends, as far as the provider knows.
func exitedError(fleet contract.Fleet) error {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet %s cannot become healthy: every instance has exited", fleet.ID)
	for _, in := range fleet.Instances {
		how := in.Exit
		if how == "" {
			how = "exit status not known"
		}
		fmt.Fprintf(&b, "\ninstance %s exited (%s)", in.ID, how)
		switch {
		case in.Log != "" && len(in.LogTail) > 0:
			fmt.Fprintf(&b, "; its log %s ends with:", in.Log)
			for _, l := range in.LogTail {
				b.WriteString("\n  " + l)
			}
		case in.Log != "":
			fmt.Fprintf(&b, "; its log %s has nothing since it started", in.Log)
		}
	}
	return temporal.NewNonRetryableApplicationError(b.String(), contract.ErrInstancesExited, nil)
}

// describeFrom describes a fleet without its first from instances (fleet order).
func (a *Activities) describeFrom(ctx context.Context, fleetID string, from int) (contract.Fleet, error) {
	f, err := a.Provider.Describe(ctx, fleetID)
	f.Instances = f.Instances[min(from, len(f.Instances)):]
	return f, err
}

// probeFleet probes every running instance (probe.All: at most
// probe.MaxConcurrent at a time). It returns one line per instance that is not
// healthy, sorted.
func (a *Activities) probeFleet(ctx context.Context, fleet contract.Fleet, path string) []string {
	var problems []string
	var running []contract.Instance
	var addrs []string
	for _, in := range fleet.Instances {
		if in.State != contract.InstanceRunning {
			problems = append(problems, fmt.Sprintf("%s is %s", in.ID, in.State))
			continue
		}
		running = append(running, in)
		addrs = append(addrs, in.Address)
	}
	for i, err := range probe.All(ctx, a.httpClient(), addrs, path) {
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", running[i].ID, err))
		}
	}
	sort.Strings(problems)
	return problems
}

func (a *Activities) get(ctx context.Context, addr, path string) (int, string, error) {
	return probe.Get(ctx, a.httpClient(), addr, path)
}

// RunChecks runs each check against each instance; the first failure fails the
// activity without retry, naming the check, the instance and what it answered.
func (a *Activities) RunChecks(ctx context.Context, in contract.RunChecksInput) error {
	return a.runChecks(ctx, in.FleetID, in.From, in.Checks)
}

func (a *Activities) runChecks(ctx context.Context, fleetID string, from int, checks []contract.Check) error {
	fleet, err := a.describeFrom(ctx, fleetID, from)
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
			return temporal.NewNonRetryableApplicationError(msg, contract.ErrCheckFailed, nil)
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
