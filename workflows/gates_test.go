package workflows

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/contract"
)

// Deployment windows and freezes with mocked activities and time skipping:
// waits across days and zones, approve --reason overriding a window, freezes
// holding new and in-flight rollouts and releasing them.

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

var berlin = mustZone("Europe/Berlin")

// officeHours is Mon-Fri 09:00-16:00 in Berlin.
var officeHours = contract.Windows{{Days: "Mon-Fri", Start: "09:00", End: "16:00", Timezone: "Europe/Berlin"}}

// provisionedAt records when the rollout provisioned.
func (s *rolloutSuite) provisionedAt(at *time.Time) {
	s.imageResolves()
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			*at = s.env.Now()
			f := newFleet(req)
			s.provisioned[req.Token] = f.ID
			return f, nil
		})
}

// freezes makes CheckFreeze answer what *frozen says at the time it is asked.
func (s *rolloutSuite) freezes(frozen *[]contract.Freeze) {
	s.env.OnActivity(s.a.CheckFreeze, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.CheckFreezeInput) (contract.CheckFreezeResult, error) {
			var out []contract.Freeze
			for _, f := range *frozen {
				if f.Covers(in.Service, in.Environment) {
					out = append(out, f)
				}
			}
			return contract.CheckFreezeResult{Freezes: out}, nil
		})
}

func (s *rolloutSuite) routedTimes(times *[]time.Time) {
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.SetRouteInput) error {
			r := contract.Route{Listen: in.Route.Listen}
			for _, sh := range in.Shares {
				r.Backends = append(r.Backends, contract.Backend{FleetID: sh.FleetID, Weight: sh.Weight})
			}
			s.routes = append(s.routes, r)
			*times = append(*times, s.env.Now())
			return nil
		})
}

func (s *rolloutSuite) approve(id, reason string, accepted bool) {
	s.env.UpdateWorkflow(contract.UpdateApprove, id, &testsuite.TestUpdateCallback{
		OnAccept:   func() { s.True(accepted, "approve %q accepted", reason) },
		OnReject:   func(err error) { s.False(accepted, "approve %q rejected: %v", reason, err) },
		OnComplete: func(any, error) {},
	}, contract.DecisionInput{By: "oncall@example.com", Reason: reason})
}

// TestOutsideTheWindowWaitsForMondayMorning: started on a Friday evening in
// Berlin, a rollout provisions on Monday at 09:00 Berlin, and says why and
// until when meanwhile.
func (s *rolloutSuite) TestOutsideTheWindowWaitsForMondayMorning() {
	var provisioned time.Time
	s.provisionedAt(&provisioned)
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.env.SetStartTime(time.Date(2026, 12, 4, 17, 30, 0, 0, berlin))
	monday := time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)

	s.env.RegisterDelayedCallback(func() { // Saturday
		p := s.progress()
		s.Equal(contract.PhaseWaitingWindow, p.Phase)
		s.Require().NotNil(p.Hold)
		s.True(monday.Equal(*p.Hold.Until), "until %s", p.Hold.Until)
		s.Contains(p.Hold.Why, "outside every deployment window (Mon-Fri 09:00-16:00 Europe/Berlin); the next opens Mon 2026-12-07 09:00 CET")
		s.Contains(p.Events[len(p.Events)-1].Message, "held before provisioning")
		s.Equal(windowGate, p.Gate)
	}, 20*time.Hour)
	sp := testSpec()
	sp.Windows = officeHours
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: sp})

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(monday.Equal(provisioned), "provisioned %s, want Monday 09:00 Berlin", provisioned.In(berlin))
	p := s.progress()
	s.Nil(p.Hold)
	s.Equal(contract.PhaseSucceeded, p.Phase)
}

// TestAWindowClosingHoldsTheNextTrafficChange: a canary in a New York window
// moves 20% before the window closes, holds that split overnight, and goes on
// when the window opens again the next morning (New York time).
func (s *rolloutSuite) TestAWindowClosingHoldsTheNextTrafficChange() {
	ny := mustZone("America/New_York")
	var provisioned time.Time
	var routed []time.Time
	s.provisionedAt(&provisioned)
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.healthy()
	s.checksPass()
	s.routedTimes(&routed)
	start := time.Date(2026, 12, 3, 16, 30, 0, 0, ny) // Thursday
	s.env.SetStartTime(start)
	sp := canarySpec(weightStep(20), pauseStep(time.Hour), weightStep(100))
	sp.Windows = contract.Windows{{Days: "Mon-Fri", Start: "08:00", End: "17:00", Timezone: "America/New_York"}}
	s.env.RegisterDelayedCallback(func() {
		p := s.progress()
		s.Equal(contract.PhaseWaitingWindow, p.Phase)
		s.Equal([]contract.FleetWeight{{FleetID: "fl-new", Weight: 20}, {FleetID: "fl-old", Weight: 80}}, p.Weights, "the split holds")
	}, 5*time.Hour)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: sp})

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(start.Equal(provisioned))
	s.Equal([]int{20, 100, 100}, newWeights(s.routes))
	s.True(time.Date(2026, 12, 4, 8, 0, 0, 0, ny).Equal(routed[1]), "100%% at %s, want Friday 08:00 New York", routed[1].In(ny))
}

// TestApproveWithAReasonOverridesTheWindow: approve without a reason is
// refused; with one, the rollout goes on at once, for the rest of the run, and
// the override is in its events and approvals.
func (s *rolloutSuite) TestApproveWithAReasonOverridesTheWindow() {
	var provisioned time.Time
	s.provisionedAt(&provisioned)
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	start := time.Date(2026, 12, 5, 11, 0, 0, 0, berlin) // Saturday
	s.env.SetStartTime(start)
	s.env.RegisterDelayedCallback(func() { s.approve("no-reason", "", false) }, time.Hour)
	s.env.RegisterDelayedCallback(func() { s.approve("hotfix", "CVE-2026-1234 hotfix", true) }, 2*time.Hour)
	sp := testSpec()
	sp.Windows = officeHours
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: sp})

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(start.Add(2*time.Hour).Equal(provisioned), "provisioned %s", provisioned)
	s.Equal([]int{100}, newWeights(s.routes), "the cutover did not wait for Monday")
	p := s.progress()
	s.Require().Len(p.Approvals, 1)
	s.Equal(windowGate, p.Approvals[0].Gate)
	s.Equal("oncall@example.com", p.Approvals[0].By)
	s.Equal("CVE-2026-1234 hotfix", p.Approvals[0].Reason)
	s.True(s.hasEvent(p, "deployment windows overridden by oncall@example.com: CVE-2026-1234 hotfix for the rest of the rollout"))
}

func (s *rolloutSuite) hasEvent(p contract.RolloutProgress, msg string) bool {
	for _, e := range p.Events {
		if e.Message == msg {
			return true
		}
	}
	return false
}

// TestAFrozenRolloutWaitsBeforeProvisioningUntilTheFreezeEnds: a freeze of
// the environment holds a new rollout in phase frozen (approve cannot release
// it); the end's signal lets it provision at once.
func (s *rolloutSuite) TestAFrozenRolloutWaitsBeforeProvisioningUntilTheFreezeEnds() {
	var provisioned time.Time
	s.provisionedAt(&provisioned)
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	s.env.SetStartTime(start)
	frozen := []contract.Freeze{{Environment: "dev", Reason: "incident 42", By: "ana", Since: start}}
	s.freezes(&frozen)
	s.env.RegisterDelayedCallback(func() {
		p := s.progress()
		s.Equal(contract.PhaseFrozen, p.Phase)
		s.Require().NotNil(p.Hold)
		s.Equal("dev/* frozen by ana since 2026-12-03T10:00:00Z: incident 42", p.Hold.Why)
		s.Nil(p.Hold.Until)
		s.Contains(p.Events[len(p.Events)-1].Message, "(imago freeze end -e dev)")
		s.approve("no", "let me through", false)
		frozen = nil
		s.env.SignalWorkflow(contract.SignalFreezeChanged, nil)
	}, 30*time.Minute+10*time.Second)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(start.Add(30*time.Minute+10*time.Second).Equal(provisioned), "provisioned %s after the start", provisioned.Sub(start))
	s.True(s.hasEvent(s.progress(), "going on: provisioning"))
}

// TestAFrozenRolloutChecksAgainWithoutASignal: a lost signal delays a frozen
// rollout by at most contract.FreezeRecheck.
func (s *rolloutSuite) TestAFrozenRolloutChecksAgainWithoutASignal() {
	var provisioned time.Time
	s.provisionedAt(&provisioned)
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	s.env.SetStartTime(start)
	frozen := []contract.Freeze{{Reason: "stop the line", By: "ana", Since: start}}
	s.freezes(&frozen)
	s.env.RegisterDelayedCallback(func() { frozen = nil }, 10*time.Minute+time.Second)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	waited := provisioned.Sub(start)
	s.Greater(waited, 10*time.Minute)
	s.LessOrEqual(waited, 10*time.Minute+contract.FreezeRecheck)
}

// TestAFreezeHoldsAnInFlightCanaryAtItsSplitAndAbortIsNeverFrozen: a freeze
// that starts during a canary's pause holds 20% before the next change; an
// abort while frozen ends the rollout at once and routes traffic back.
func (s *rolloutSuite) TestAFreezeHoldsAnInFlightCanaryAtItsSplitAndAbortIsNeverFrozen() {
	var provisioned time.Time
	var routed []time.Time
	s.provisionedAt(&provisioned)
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.healthy()
	s.checksPass()
	s.routedTimes(&routed)
	var frozen []contract.Freeze
	s.freezes(&frozen)
	s.env.RegisterDelayedCallback(func() {
		frozen = []contract.Freeze{{Service: "hello", Reason: "payments incident", By: "ana", Since: s.env.Now()}}
	}, 5*time.Minute)
	s.env.RegisterDelayedCallback(func() {
		p := s.progress()
		s.Equal(contract.PhaseFrozen, p.Phase)
		s.Equal([]contract.FleetWeight{{FleetID: "fl-new", Weight: 20}, {FleetID: "fl-old", Weight: 80}}, p.Weights)
		s.Contains(p.Events[len(p.Events)-1].Message, "held before 100% of traffic to fl-new")
		s.env.UpdateWorkflow(contract.UpdateAbort, "abort", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("abort refused", err) }, OnComplete: func(any, error) {},
		}, contract.DecisionInput{By: "ana", Reason: "not today"})
	}, 3*time.Hour)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(20), pauseStep(10*time.Minute), weightStep(100))})

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "aborted by ana: not today")
	s.Equal([]int{20, 0}, newWeights(s.routes), "20%, then back to the old fleet; never 100%")
	s.Equal([]string{"fl-new"}, s.terminated)
}

// TestARollbackIsNeverFrozen: a rollout back to the previous image goes
// through a freeze and a closed window.
func (s *rolloutSuite) TestARollbackIsNeverFrozen() {
	var provisioned time.Time
	s.provisionedAt(&provisioned)
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.env.OnActivity(s.a.PreviousImage, mock.Anything, mock.Anything).Return(contract.PreviousImageResult{ImageID: "img-000000000001", From: "img-000000000002"}, nil)
	s.healthy()
	s.recordRoutes(nil)
	start := time.Date(2026, 12, 5, 11, 0, 0, 0, berlin) // Saturday
	s.env.SetStartTime(start)
	checked := 0
	s.env.OnActivity(s.a.CheckFreeze, mock.Anything, mock.Anything).Return(
		func(context.Context, contract.CheckFreezeInput) (contract.CheckFreezeResult, error) {
			checked++
			return contract.CheckFreezeResult{Freezes: []contract.Freeze{{Reason: "stop the line", By: "ana", Since: start}}}, nil
		}).Maybe()
	sp := testSpec()
	sp.Windows = officeHours
	sp.Checks = nil
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: sp, Action: contract.ActionRollback})

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(start.Equal(provisioned))
	s.Zero(checked, "a rollback does not even look for freezes")
}

// TestAFrozenProdStageWaitsAfterTheBakeAndStaging: a pipeline whose prod is
// frozen bakes and rolls out to staging, then its prod rollout (a real Rollout
// child) holds before provisioning until the freeze ends.
func (s *pipelineSuite) TestAFrozenProdStageWaitsAfterTheBakeAndStaging() {
	s.bakes("img-000000000009", false)
	s.live(map[string]string{})
	provisioned := map[string]time.Time{}
	s.env.OnActivity(s.a.ResolveImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
			return contract.ResolveImageResult{ImageID: in.Ref.ID, Service: in.Service}, nil
		})
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(contract.Route{}, nil)
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			provisioned[req.Environment] = s.env.Now()
			return newFleet(req), nil
		})
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{Healthy: 2}, nil)
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(s.a.RecordDeployment, mock.Anything, mock.Anything).Return(
		func(_ context.Context, d contract.Deployment) (contract.Deployment, error) { return d, nil })
	frozen := []contract.Freeze{{Environment: "prod", Reason: "quarter close", By: "cfo", Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}}
	s.env.OnActivity(s.a.CheckFreeze, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.CheckFreezeInput) (contract.CheckFreezeResult, error) {
			var out []contract.Freeze
			for _, f := range frozen {
				if f.Covers(in.Service, in.Environment) {
					out = append(out, f)
				}
			}
			return contract.CheckFreezeResult{Freezes: out}, nil
		})
	var thawed time.Time
	s.env.RegisterDelayedCallback(func() {
		p := s.progress()
		s.Equal(contract.StageSucceeded, p.Stages[0].State, "staging went on")
		s.Equal(contract.StageRunning, p.Stages[1].State, "prod waits")
		s.NotContains(provisioned, "prod")
		frozen, thawed = nil, s.env.Now()
	}, 6*time.Hour+10*time.Second)
	p := pipelineSpec(false)
	for i := range p.Stages {
		p.Stages[i].Rollout.Soak = dur(0)
	}
	_, err := s.run(contract.PipelineInput{Spec: p, Trigger: "manual"})
	s.Require().NoError(err)
	s.Contains(provisioned, "staging")
	s.True(provisioned["prod"].After(thawed), "prod provisioned after the freeze ended: %s, thawed %s", provisioned["prod"], thawed)
	s.LessOrEqual(provisioned["prod"].Sub(thawed), contract.FreezeRecheck)
}
