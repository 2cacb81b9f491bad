package plan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// newFleetID names the fleet the simulated rollout provisions; baselineFleetID
// the baseline of a canary with strategy.baseline (its token ends in /baseline).
const (
	newFleetID      = "fl-new"
	baselineFleetID = "fl-baseline"
)

// fleetOf is the simulated fleet a provision token makes.
func fleetOf(token string) string {
	if strings.HasSuffix(token, "/baseline") {
		return baselineFleetID
	}
	return newFleetID
}

// Run plans the rollout r (normalized, validated, its image checked as
// `imago rollout start` checks it): it runs workflows.Rollout under
// Temporal's test environment against simulated activities and returns what
// happened, on the simulated clock.
func Run(ctx context.Context, src Source, r spec.Rollout, opts Options) (*Plan, error) {
	start := opts.Start
	if start.IsZero() {
		start = time.Now()
	}
	start = start.UTC().Truncate(time.Second)
	image := r.Image.ID
	if r.Image.Channel != "" {
		e, err := src.Channel(ctx, r.Service, r.Image.Channel)
		if err != nil {
			return nil, err
		}
		image = e.ImageID
	}
	live, err := liveFleet(ctx, src, r)
	if err != nil {
		return nil, err
	}
	m, ts, err := assume(ctx, src, r, image, live)
	if err != nil {
		return nil, err
	}
	freezes, err := src.FreezesCovering(ctx, r.Service, r.Environment, start)
	if err != nil {
		return nil, err
	}
	s := &sim{spec: r, m: m, image: image, freezes: freezes, sizes: map[string]int{}, seen: map[int]bool{}}
	p := &Plan{Service: r.Service, Environment: r.Environment, Image: orDash(image), Strategy: r.Strategy.Type, Size: r.Fleet.Size,
		Start: start, Assumptions: m.assumptions, Approvals: []Approval{}, Conflicts: []Conflict{}}
	if r.Image.Bake != "" {
		p.Image = "baked from " + r.Image.Bake
	}
	if live != nil {
		n, from := r.Fleet.Size, "assumed: the spec's size (no measurement of it)"
		for _, t := range ts {
			if t.FleetID == live.FleetID {
				n, from = t.Instances, "measured when it came up"
				break
			}
		}
		p.Live = &LiveFleet{FleetID: live.FleetID, ImageID: live.ImageID, Instances: n, Source: from}
		s.live, s.sizes[live.FleetID] = p.Live, n
	}
	if err := s.run(p, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// sim is one simulated rollout: the test environment, the simulated target,
// and what it saw.
type sim struct {
	spec    spec.Rollout
	m       measured
	image   string
	live    *LiveFleet
	freezes []contract.Freeze

	env *testsuite.TestWorkflowEnvironment

	mu     sync.Mutex
	start  time.Time
	events []contract.ProgressEvent // the rollout's story, every event
	sizes  map[string]int           // running fleets and their instances
	routed bool                     // a route was set
	peak   Peak
	gates  []Approval
	seen   map[int]bool // open-ended freezes already held for once (by index)
	ended  []string     // freezes the simulation let end
}

func (s *sim) run(p *Plan, opts Options) error {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(&storyLogger{s: s})
	env := suite.NewTestWorkflowEnvironment()
	s.env = env
	env.SetStartTime(p.Start)
	s.start = p.Start
	env.SetTestTimeout(5 * time.Minute) // wall clock, for a large rolling rollout on a loaded machine
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: contract.RolloutWorkflowID(s.spec.Service, s.spec.Environment), TaskQueue: contract.TaskQueue})
	env.RegisterWorkflowWithOptions(workflows.Rollout, workflow.RegisterOptions{Name: contract.WorkflowRollout})
	env.RegisterWorkflowWithOptions(s.bake, workflow.RegisterOptions{Name: contract.WorkflowBake})
	s.register()
	s.peak = Peak{Instances: s.total(), Serving: s.liveSize()}

	in := contract.RolloutInput{Spec: s.spec.Rollout, StartedBy: "imago plan"}
	if opts.Bake != nil {
		in.Bake = &opts.Bake.Bake
	}
	env.ExecuteWorkflow(contract.WorkflowRollout, in)
	if !env.IsWorkflowCompleted() {
		return errors.New("plan: the simulated rollout did not finish")
	}
	end := env.Now()
	p.Outcome = workflows.RolloutEnd(env.GetWorkflowError())
	if err := env.GetWorkflowError(); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			p.Error = app.Message()
		} else {
			p.Error = err.Error()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Duration = contract.Duration(end.Sub(p.Start))
	for i, e := range s.events {
		next := end
		if i+1 < len(s.events) {
			next = s.events[i+1].Time
		}
		p.Timeline = append(p.Timeline, Step{Offset: s.at(e.Time), Duration: contract.Duration(next.Sub(e.Time)), Phase: e.Phase, Message: e.Message})
	}
	p.Peak = s.peak
	p.Approvals = append(p.Approvals, s.gates...)
	p.Conflicts = conflicts(p.Timeline)
	for _, why := range s.ended {
		p.Assumptions = append(p.Assumptions, Assumption{Step: "freeze without an end", Duration: contract.Duration(contract.FreezeRecheck), Source: why})
	}
	if s.spec.Strategy.Budgeted() && (s.spec.Strategy.MaxSurge != nil || s.spec.Strategy.MaxUnavailable != nil) {
		c, err := s.spec.Strategy.Capacity(s.spec.Fleet.Size)
		if err == nil {
			b := &Budget{MaxSurge: c.Surge, MaxUnavailable: c.Unavailable, Most: c.Size + c.Surge, Fewest: c.Size - c.Unavailable}
			b.Within = p.Peak.Instances <= b.Most && p.Peak.Serving >= min(b.Fewest, s.liveSize())
			p.Budget = b
		}
	}
	return nil
}

// conflicts are the holds of a timeline: each run of frozen or
// waiting-window events, from its first event to the next phase.
func conflicts(tl []Step) []Conflict {
	var out []Conflict
	for i := 0; i < len(tl); i++ {
		kind := ""
		switch tl[i].Phase {
		case contract.PhaseFrozen:
			kind = "freeze"
		case contract.PhaseWaitingWindow:
			kind = "window"
		default:
			continue
		}
		c := Conflict{Kind: kind, At: tl[i].Offset, Why: tl[i].Message}
		j := i
		for j+1 < len(tl) && tl[j+1].Phase == tl[i].Phase {
			j++
		}
		c.Duration = tl[j].Offset + tl[j].Duration - tl[i].Offset
		out = append(out, c)
		i = j
	}
	return out
}

func (s *sim) at(t time.Time) contract.Duration { return contract.Duration(t.Sub(s.start)) }

func (s *sim) liveSize() int {
	if s.live == nil {
		return 0
	}
	return s.live.Instances
}

// total is the instances running; the caller holds mu (or runs before the workflow).
func (s *sim) total() int {
	n := 0
	for _, v := range s.sizes {
		n += v
	}
	return n
}

// resized notes a fleet's new size and the peak.
func (s *sim) resized(fleetID string, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if size <= 0 {
		delete(s.sizes, fleetID)
	} else {
		s.sizes[fleetID] = size
	}
	if n := s.total(); n > s.peak.Instances {
		s.peak.Instances, s.peak.At = n, s.at(s.env.Now())
	}
}

// register installs the simulated activities under the names the workflow
// calls (contract.Activity*), each taking its simulated time on the test
// environment's clock.
func (s *sim) register() {
	env := s.env
	reg := func(name string, fn any) {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	// The test environment takes every registration before any expectation.
	var expect []func()
	timed := func(name string, d time.Duration, fn any) {
		reg(name, fn)
		expect = append(expect, func() { env.OnActivity(name, mock.Anything, mock.Anything).After(d).Return(fn).Maybe() })
	}
	reg(contract.ActivityCheckSpec, func(context.Context, contract.Rollout) error { return nil })
	reg(contract.ActivityResolveImage, s.resolveImage)
	reg(contract.ActivityPreviousImage, func(context.Context, contract.PreviousImageInput) (contract.PreviousImageResult, error) {
		return contract.PreviousImageResult{}, temporal.NewNonRetryableApplicationError("a plan rolls forward only", "Plan", nil)
	})
	reg(contract.ActivityReadRoute, s.readRoute)
	reg(contract.ActivityFleetImage, s.fleetImage)
	reg(contract.ActivityCheckFreeze, s.checkFreeze)
	reg(contract.ActivityPublishEvent, s.publishEvent)
	reg(contract.ActivityNotify, func(context.Context, contract.NotifyInput) error { return nil })
	reg(contract.ActivityRecordDeployment, func(_ context.Context, d contract.Deployment) (contract.Deployment, error) { return d, nil })
	reg(contract.ActivityTerminateByToken, s.terminateByToken)
	timed(contract.ActivityProvision, s.m.provision, s.provision)
	timed(contract.ActivityWaitHealthy, s.m.healthy, s.waitHealthy)
	timed(contract.ActivityRunChecks, s.m.checks, func(context.Context, contract.RunChecksInput) error { return nil })
	timed(contract.ActivitySetRoute, s.m.route, s.setRoute)
	timed(contract.ActivityTerminate, s.m.terminate, s.terminate)
	timed(contract.ActivityRunHook, s.m.hook, func(context.Context, contract.HookInput) (contract.HookResult, error) {
		return contract.HookResult{Status: 200, Answer: "200 OK (simulated)"}, nil
	})
	// A fleet grows in provision time; it shrinks at once.
	reg(contract.ActivityScaleFleet, s.scale)
	reg(contract.ActivityResizeFleet, func(ctx context.Context, in contract.ResizeInput) (contract.Fleet, error) {
		res, err := s.scale(ctx, in)
		return s.fleet(in.FleetID, res.Instances), err
	})
	// Each analysis takes its own time: one expectation per name and count
	// (a bake time measures its analysis as often as its duration takes).
	reg(contract.ActivityRunAnalysis, s.runAnalysis)
	for _, e := range expect {
		e()
	}
	env.OnActivity(contract.ActivityScaleFleet, mock.Anything, mock.MatchedBy(s.grows)).After(s.m.provision).Return(s.scale).Maybe()
	env.OnActivity(contract.ActivityScaleFleet, mock.Anything, mock.Anything).Return(s.scale).Maybe()
	for _, name := range sortedKeys(s.spec.Analyses) {
		a := s.spec.Analyses[name]
		counts := []int{a.Count}
		if b := s.spec.BakeTime; b != nil && b.Analysis == name {
			counts = append(counts, b.Measurements(a))
		}
		for _, n := range counts {
			a.Count = n
			env.OnActivity(contract.ActivityRunAnalysis, mock.Anything, mock.MatchedBy(func(in contract.AnalysisInput) bool {
				return in.Name == name && in.Spec.Count == n
			})).After(analysisTime(a)).Return(s.runAnalysis).Maybe()
		}
	}
	env.OnActivity(contract.ActivityRunAnalysis, mock.Anything, mock.Anything).Return(s.runAnalysis).Maybe()
}

// bake is the Bake child workflow of a rollout whose image.bake names one: it
// takes the default bake time and "builds" an image.
func (s *sim) bake(ctx workflow.Context, in contract.BakeInput) (contract.BakeResult, error) {
	if err := workflow.Sleep(ctx, s.m.bake); err != nil {
		return contract.BakeResult{}, err
	}
	return contract.BakeResult{ImageID: "img-baked"}, nil
}

func (s *sim) resolveImage(_ context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
	id := in.Ref.ID
	if in.Ref.Channel != "" {
		id = s.image
	}
	return contract.ResolveImageResult{ImageID: id, Service: in.Service}, nil
}

// readRoute is the live fleet with all its traffic, as the inventory says it is.
func (s *sim) readRoute(_ context.Context, key contract.RouteKey) (contract.Route, error) {
	if s.live == nil {
		return contract.Route{}, nil
	}
	return contract.Route{Listen: s.spec.Listen, Backends: []contract.Backend{{FleetID: s.live.FleetID, Weight: 100, Targets: targets(s.live.FleetID, s.live.Instances)}}}, nil
}

// fleetImage is the live fleet's image, which a canary's baseline runs.
func (s *sim) fleetImage(_ context.Context, in contract.FleetImageInput) (contract.FleetImageResult, error) {
	if s.live == nil || in.FleetID != s.live.FleetID {
		return contract.FleetImageResult{}, temporal.NewNonRetryableApplicationError("no such fleet in the plan: "+in.FleetID, "Plan", nil)
	}
	return contract.FleetImageResult{FleetID: s.live.FleetID, ImageID: s.live.ImageID, Instances: s.live.Instances}, nil
}

// checkFreeze answers with the catalog's freezes (read when the plan began)
// in force on the simulated clock. One without an end holds the rollout for
// one recheck, then is assumed ended (the plan says so).
func (s *sim) checkFreeze(_ context.Context, _ contract.CheckFreezeInput) (contract.CheckFreezeResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.env.Now()
	var res contract.CheckFreezeResult
	for i, f := range s.freezes {
		if f.Since.After(now) || !f.InForce(now) {
			continue
		}
		if f.Until == nil {
			if s.seen[i] {
				continue
			}
			s.seen[i] = true
			s.ended = append(s.ended, fmt.Sprintf("%s frozen by %s (%s) has no end: the plan assumes it ends after one recheck; the rollout waits until %s",
				f.Scope(), f.By, f.Reason, f.EndCommand()))
		}
		res.Freezes = append(res.Freezes, f)
	}
	return res, nil
}

// publishEvent grants, at once, every gate a phase event shows waiting for a
// person (a deployment window is waited out instead), and lists it.
func (s *sim) publishEvent(_ context.Context, ev contract.Event) error {
	d := ev.Data
	if d.Gate == "" || d.Phase == contract.PhaseWaitingWindow {
		return nil
	}
	s.mu.Lock()
	s.gates = append(s.gates, Approval{Gate: d.Gate, At: s.at(ev.Time), Phase: d.Phase})
	s.mu.Unlock()
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(contract.UpdateApprove, "plan-approve-"+ev.ID, &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.logf("approval of %s refused: %v", d.Gate, err) },
		}, contract.DecisionInput{By: "imago plan", Reason: "granted by the simulation"})
	}, 0)
	return nil
}

func (s *sim) provision(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
	id := fleetOf(req.Token)
	s.resized(id, req.Size)
	f := s.fleet(id, req.Size)
	f.Token, f.Service, f.Environment, f.ImageID = req.Token, req.Service, req.Environment, req.ImageID
	return f, nil
}

func (s *sim) waitHealthy(_ context.Context, in contract.WaitHealthyInput) (contract.WaitHealthyResult, error) {
	s.mu.Lock()
	n := s.sizes[in.FleetID] - in.From
	s.mu.Unlock()
	if in.AtLeast > 0 {
		n = min(n, max(in.AtLeast, 0))
	}
	return contract.WaitHealthyResult{Healthy: n, Took: s.m.healthy}, nil
}

func (s *sim) setRoute(_ context.Context, in contract.SetRouteInput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sh := range in.Shares {
		if sh.Weight <= 0 {
			continue
		}
		if sh.Instances > 0 {
			n += sh.Instances
		} else {
			n += s.sizes[sh.FleetID]
		}
	}
	if !s.routed && s.liveSize() == 0 {
		s.peak.Serving = n // the first rollout: nothing served before
	} else {
		s.peak.Serving = min(s.peak.Serving, n)
	}
	s.routed = true
	return nil
}

func (s *sim) grows(in contract.ResizeInput) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return in.Size > s.sizes[in.FleetID]
}

func (s *sim) scale(_ context.Context, in contract.ResizeInput) (contract.ResizeResult, error) {
	s.resized(in.FleetID, in.Size)
	return contract.ResizeResult{FleetID: in.FleetID, Instances: in.Size}, nil
}

func (s *sim) terminate(_ context.Context, in contract.TerminateInput) error {
	s.resized(in.FleetID, 0)
	return nil
}

func (s *sim) terminateByToken(_ context.Context, in contract.TerminateByTokenInput) ([]string, error) {
	id := fleetOf(in.Token)
	s.mu.Lock()
	_, ok := s.sizes[id]
	s.mu.Unlock()
	if !ok {
		return nil, nil
	}
	s.resized(id, 0)
	return []string{id}, nil
}

func (s *sim) runAnalysis(_ context.Context, in contract.AnalysisInput) (contract.AnalysisResult, error) {
	return contract.AnalysisResult{Name: in.Name, FleetID: in.FleetID, Phase: analysis.PhaseSuccessful,
		Message: fmt.Sprintf("simulated: %d measurements pass", in.Spec.Count)}, nil
}

func (s *sim) fleet(id string, n int) contract.Fleet {
	f := contract.Fleet{ID: id, Service: s.spec.Service, Environment: s.spec.Environment}
	for i, t := range targets(id, n) {
		f.Instances = append(f.Instances, contract.Instance{ID: fmt.Sprintf("%s-%d", id, i), Address: t, State: contract.InstanceRunning})
	}
	return f
}

// targets are placeholder addresses: the workflow counts them, nothing dials them.
func targets(fleetID string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s.%d.plan.invalid:0", fleetID, i)
	}
	return out
}

func (s *sim) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, contract.ProgressEvent{Time: s.env.Now(), Phase: contract.PhaseFailed, Message: "plan: " + fmt.Sprintf(format, args...)})
}

// storyLogger keeps the rollout's story: every event the workflow logs with
// its phase (tracker.event), at the simulated time. Everything else the test
// environment logs is dropped, so nothing reaches stdout.
type storyLogger struct {
	s    *sim
	with []any
}

func (l *storyLogger) Debug(string, ...any) {}
func (l *storyLogger) Warn(string, ...any)  {}
func (l *storyLogger) Error(string, ...any) {}

func (l *storyLogger) Info(msg string, keyvals ...any) {
	kv := append(slices.Clone(l.with), keyvals...)
	var phase contract.Phase
	found := false
	for i := 0; i+1 < len(kv); i += 2 {
		if k, _ := kv[i].(string); k == "phase" {
			phase, found = kv[i+1].(contract.Phase)
		}
	}
	if !found || l.s.env == nil {
		return
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	l.s.events = append(l.s.events, contract.ProgressEvent{Time: l.s.env.Now(), Phase: phase, Message: msg})
}

func (l *storyLogger) With(keyvals ...any) log.Logger {
	return &storyLogger{s: l.s, with: append(slices.Clone(l.with), keyvals...)}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
