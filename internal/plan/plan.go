// Package plan previews a rollout without making anything: it runs the real
// Rollout workflow (workflows.Rollout, unchanged) in Temporal's test
// environment, whose clock skips ahead over timers, against simulated
// activities that mirror the target — the live fleet and route as the
// inventory records them, the boot and health times the last rollouts there
// measured (or stated defaults), the freezes in the catalog and the spec's
// deployment windows on the simulated clock. Approvals are granted at once
// and listed. The result is the timeline of what the rollout would do, with
// simulated offsets and durations, its peak instance count and capacity
// budget use, the approvals it will ask for, and how long it should take.
//
// A plan needs no Temporal server and no provider: it only reads the
// catalog (Source). `imago plan` and `POST /v1/plans` share it.
package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// Source is what a plan reads of the target, read-only; *catalog.Catalog is one.
type Source interface {
	// Live is the deployment live in env (an error matching
	// catalog.ErrNotFound when there is none).
	Live(ctx context.Context, service, env string) (contract.Deployment, error)
	// Channel is the head of a channel of service.
	Channel(ctx context.Context, service, channel string) (contract.ChannelEntry, error)
	// FreezesCovering are the freezes in force at now that hold service in env.
	FreezesCovering(ctx context.Context, service, env string, now time.Time) ([]contract.Freeze, error)
	// Timings are the newest boot measurements of service in env, newest first.
	Timings(ctx context.Context, service, env string) ([]contract.Timing, error)
}

// Options tune a plan.
type Options struct {
	// Start is when the simulated rollout starts; zero: now.
	Start time.Time
	// Bake is the loaded bake spec when the rollout's image.bake names one.
	Bake *spec.Bake
}

// Default durations of the steps no measurement covers. A plan prints the
// ones it used among its assumptions.
const (
	DefaultProvision = 10 * time.Second // a provider making a fleet
	DefaultHealthy   = 30 * time.Second // instances booting until every one passes its health probe
	DefaultChecks    = time.Second      // the smoke checks on a fleet
	DefaultRoute     = time.Second      // one route switch
	DefaultTerminate = 5 * time.Second  // terminating a fleet
	DefaultHook      = time.Second      // a hook's answer
	DefaultBake      = 5 * time.Minute  // baking an image (image.bake)
)

// Defaults of the short steps when the spec names provider local (processes
// and a router on the worker's host).
const (
	localProvider  = "local"
	LocalChecks    = 50 * time.Millisecond
	LocalRoute     = 50 * time.Millisecond
	LocalTerminate = 200 * time.Millisecond
)

// Plan is a simulated rollout.
type Plan struct {
	Service     string    `json:"service"`
	Environment string    `json:"environment"`
	Image       string    `json:"image"`
	Strategy    string    `json:"strategy"`
	Size        int       `json:"size"`
	Start       time.Time `json:"start"`
	// Live is the fleet serving now, as the inventory records it; nil: the
	// first rollout there.
	Live *LiveFleet `json:"live,omitempty"`
	// Assumptions are the durations the simulation used and where each came from.
	Assumptions []Assumption `json:"assumptions"`
	// Timeline is every event of the rollout, as `imago rollout status` would
	// show it, at its simulated offset from Start, lasting until the next one.
	Timeline []Step `json:"timeline"`
	// Peak is the most instances running at once, and when.
	Peak Peak `json:"peak"`
	// Budget is the capacity budget's use, for a strategy with one.
	Budget *Budget `json:"budget,omitempty"`
	// Approvals are the gates a person must release (the simulation grants them at once).
	Approvals []Approval `json:"approvals"`
	// Conflicts are the freezes and closed deployment windows that hold it.
	Conflicts []Conflict `json:"conflicts"`
	// Outcome is how the simulated rollout ends (succeeded unless a spec
	// problem only the workflow finds ends it), and Error why not.
	Outcome  contract.Phase    `json:"outcome"`
	Error    string            `json:"error,omitempty"`
	Duration contract.Duration `json:"duration"`
}

// LiveFleet is the fleet a rollout replaces.
type LiveFleet struct {
	FleetID   string `json:"fleetId"`
	ImageID   string `json:"imageId"`
	Instances int    `json:"instances"`
	// Source says where Instances comes from.
	Source string `json:"source"`
}

// Assumption is one duration the simulation used.
type Assumption struct {
	Step     string            `json:"step"`
	Duration contract.Duration `json:"duration"`
	Source   string            `json:"source"`
}

// Step is one event of the timeline.
type Step struct {
	Offset   contract.Duration `json:"offset"`
	Duration contract.Duration `json:"duration"`
	Phase    contract.Phase    `json:"phase"`
	Message  string            `json:"message"`
}

// Peak is the most instances running at once.
type Peak struct {
	Instances int               `json:"instances"`
	At        contract.Duration `json:"at"`
	// Serving is the fewest instances that took traffic at once, after the
	// first route switch (the live fleet's, before).
	Serving int `json:"fewestServing"`
}

// Budget is a capacity budget and how much of it the rollout uses.
type Budget struct {
	MaxSurge       int  `json:"maxSurge"`       // instances beyond the size it may run
	MaxUnavailable int  `json:"maxUnavailable"` // instances below the size that may not serve
	Most           int  `json:"most"`           // size + maxSurge
	Fewest         int  `json:"fewest"`         // size − maxUnavailable
	Within         bool `json:"within"`
}

// Approval is a gate a person releases.
type Approval struct {
	Gate  string            `json:"gate"`
	At    contract.Duration `json:"at"`
	Phase contract.Phase    `json:"phase"`
}

// Conflict is a hold: a freeze or a closed deployment window.
type Conflict struct {
	Kind     string            `json:"kind"` // "freeze" or "window"
	At       contract.Duration `json:"at"`
	Duration contract.Duration `json:"duration"`
	Why      string            `json:"why"`
}

// measured are the durations a plan simulates, with where each came from.
type measured struct {
	provision, healthy, checks, route, terminate, hook, bake time.Duration
	assumptions                                              []Assumption
}

// assume reads the newest boot measurement of the image (else of the live
// image, else of any) in the environment; the defaults for the rest.
func assume(ctx context.Context, src Source, r spec.Rollout, image string, live *contract.Deployment) (measured, []contract.Timing, error) {
	m := measured{provision: DefaultProvision, healthy: DefaultHealthy, checks: DefaultChecks, route: DefaultRoute,
		terminate: DefaultTerminate, hook: DefaultHook, bake: DefaultBake}
	short := "default"
	if r.Provider == localProvider {
		// processes and a router on this host: the short steps take milliseconds
		m.checks, m.route, m.terminate, short = LocalChecks, LocalRoute, LocalTerminate, "default for provider local"
	}
	ts, err := src.Timings(ctx, r.Service, r.Environment)
	if err != nil {
		return m, nil, err
	}
	pick := image
	if !slices.ContainsFunc(ts, func(t contract.Timing) bool { return t.ImageID == image }) && live != nil {
		pick = live.ImageID
	}
	provisionFrom, healthyFrom := "default: no boot measured in "+r.Environment, "default: no boot measured in "+r.Environment
	if t, ok := catalog.TimingOf(ts, pick); ok {
		m.provision, m.healthy = t.Provision, t.Healthy
		what := "image " + t.ImageID
		if t.ImageID != image {
			what = fmt.Sprintf("image %s (%s has none)", t.ImageID, orDash(image))
		}
		provisionFrom = fmt.Sprintf("measured: %d instances of %s in %s, %s", t.Instances, what, t.Environment, t.Measured.UTC().Format(time.RFC3339))
		healthyFrom = provisionFrom
	}
	m.assumptions = []Assumption{
		{"provision a fleet (or grow one)", contract.Duration(m.provision), provisionFrom},
		{"boot until healthy", contract.Duration(m.healthy), healthyFrom},
	}
	if len(r.Checks) > 0 {
		m.assumptions = append(m.assumptions, Assumption{"smoke checks", contract.Duration(m.checks), short})
	}
	m.assumptions = append(m.assumptions,
		Assumption{"route switch", contract.Duration(m.route), short},
		Assumption{"terminate a fleet", contract.Duration(m.terminate), short})
	if r.Hooks != nil {
		m.assumptions = append(m.assumptions, Assumption{"hook answer (2xx)", contract.Duration(m.hook), "default"})
	}
	if r.Image.Bake != "" {
		m.assumptions = append(m.assumptions, Assumption{"bake the image", contract.Duration(m.bake), "default"})
	}
	for _, name := range sortedKeys(r.Analyses) {
		a := r.Analyses[name]
		m.assumptions = append(m.assumptions, Assumption{"analysis " + name + " (passes)", contract.Duration(analysisTime(a)),
			fmt.Sprintf("spec: %d measurements every %s", a.Count, a.Interval)})
	}
	return m, ts, nil
}

// analysisTime is how long an analysis that passes takes: its measurements,
// an interval apart.
func analysisTime(a contract.Analysis) time.Duration {
	return time.Duration(max(a.Count, 1)) * a.Interval.D()
}

// liveFleet reads the live deployment; nil when there is none.
func liveFleet(ctx context.Context, src Source, r spec.Rollout) (*contract.Deployment, error) {
	d, err := src.Live(ctx, r.Service, r.Environment)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if d.FleetID == "" {
		return nil, nil
	}
	return &d, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
