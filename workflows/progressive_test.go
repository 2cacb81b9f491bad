package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/analysis"
)

// Progressive delivery with mocked activities: canary steps, analysis outcomes,
// approval gates, the four updates, rolling waves, and the traffic guard.

func intp(i int) *int        { return &i }
func f64(f float64) *float64 { return &f }
func dur(d time.Duration) *contract.Duration {
	x := contract.Duration(d)
	return &x
}

func canarySpec(steps ...contract.Step) contract.Rollout {
	r := testSpec()
	r.Strategy = contract.Strategy{Type: contract.Canary, Steps: steps}
	r.Analyses = map[string]contract.Analysis{"errors": {Provider: "router", Metric: "errorRate", Max: f64(0.05), Interval: contract.Duration(5 * time.Second), Count: 3}}
	if err := normalize(&r); err != nil {
		panic(err)
	}
	return r
}

func weightStep(w int) contract.Step { return contract.Step{SetWeight: intp(w)} }
func pauseStep(d time.Duration) contract.Step {
	return contract.Step{Pause: &contract.Pause{Duration: dur(d)}}
}
func indefinitePause() contract.Step         { return contract.Step{Pause: &contract.Pause{}} }
func analysisStep(name string) contract.Step { return contract.Step{Analysis: name} }
func newWeights(routes []contract.Route) []int {
	var out []int
	for _, r := range routes {
		out = append(out, r.Weight("fl-new"))
	}
	return out
}

func (s *rolloutSuite) analysisReturns(phases ...string) {
	i := 0
	s.env.OnActivity(s.a.RunAnalysis, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.AnalysisInput) (contract.AnalysisResult, error) {
			p := phases[min(i, len(phases)-1)]
			i++
			return analysisResult(in, p), nil
		})
}

// analysisResult is what RunAnalysis returns for in, ending in phase: three
// measurements, the last one deciding.
func analysisResult(in contract.AnalysisInput, phase string) contract.AnalysisResult {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	last, msg := contract.Measurement{Time: t0.Add(10 * time.Second), Value: f64(0.31), Phase: phase, Message: "0.31 > max 0.05 (31 of 100 requests answered 5xx in 5s)"},
		"errorRate of fleet fl-new was 0.31 > max 0.05 in 2 of 3 measurements"
	if phase == analysis.PhaseSuccessful {
		last.Value, last.Message = f64(0.02), "0.02 <= max 0.05 (2 of 100 requests answered 5xx in 5s)"
		msg = "errorRate of fleet fl-new met max 0.05 in 2 of 3 measurements (1 inconclusive)"
	}
	ms := []contract.Measurement{
		{Time: t0, Value: f64(0.01), Phase: analysis.PhaseSuccessful, Message: "0.01 <= max 0.05 (1 of 100 requests answered 5xx in 5s)"},
		{Time: t0.Add(5 * time.Second), Phase: analysis.PhaseInconclusive, NoData: true, Message: "no data: no samples yet: fleet fl-new received 0 requests in 5s, fewer than minRequests 10"},
		last,
	}
	return contract.AnalysisResult{Name: in.Name, FleetID: in.FleetID, Phase: phase, Message: msg,
		Measurements: ms, Counts: analysis.CountOf(ms), AnalysisSource: activities.SourceOf(in.Spec, in.Key, in.FleetID)}
}

// decide sends an update after delay and records a rejection, if any.
func (s *rolloutSuite) decide(delay time.Duration, update string, rejected *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(update, update+s.env.Now().String(), &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { *rejected = err },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, contract.DecisionInput{By: "alice", Reason: "looks good"})
	}, delay)
}

func (s *rolloutSuite) errType() string {
	var app *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &app), "%v", s.env.GetWorkflowError())
	return app.Type()
}

func (s *rolloutSuite) TestCanaryWalksItsWeightsThenCutsOver() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.analysisReturns(activities.AnalysisSuccessful)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(10), pauseStep(time.Minute), analysisStep("errors"), weightStep(50), pauseStep(time.Minute))})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]int{10, 50, 100}, newWeights(s.routes))
	s.Equal(90, s.routes[0].Weight("fl-old"), "the rest stays on the old fleet")
	s.Equal([]string{"fl-old"}, s.terminated)
	p := s.progress()
	s.Require().Len(p.Analyses, 1)
	an := p.Analyses[0]
	s.Equal("errors", an.Name)
	s.Equal(activities.AnalysisSuccessful, an.Phase)
	s.Equal("errorRate of fleet fl-new met max 0.05 in 2 of 3 measurements (1 inconclusive)", an.Message)
	s.Equal("fl-new", an.FleetID)
	s.Equal(contract.AnalysisSource{Provider: "router", Metric: "errorRate", Condition: "max 0.05", OnNoData: "inconclusive",
		Source: "router: the fleet's share of imago_router_requests_total and imago_router_errors_total, each interval"}, an.AnalysisSource)
	s.Equal(&contract.AnalysisCounts{Successful: 2, Inconclusive: 1, NoData: 1}, an.Counts)
	s.Require().Len(an.Measurements, 3)
	s.Equal(0.02, *an.Measurements[2].Value)
	s.Nil(an.Measurements[1].Value, "a measurement without data has no value")
	// The web UI's current details show the analysis' measurements, value and verdict.
	v, err := s.env.QueryWorkflow("__temporal_workflow_metadata")
	s.Require().NoError(err)
	var meta sdkpb.WorkflowMetadata
	s.Require().NoError(v.Get(&meta))
	details := meta.GetCurrentDetails()
	s.Contains(details, "**Analysis errors** of fl-new: Successful — errorRate of fleet fl-new met max 0.05 in 2 of 3 measurements")
	s.Contains(details, "3 measurements: 2 successful, 1 inconclusive (1 without data)")
	s.Contains(details, "| 14:00:10 | 0.02 | Successful | 0.02 <= max 0.05 (2 of 100 requests answered 5xx in 5s) |")
	s.Contains(details, "| 14:00:05 | - | Inconclusive (no data) | no data: no samples yet")
	s.Require().Len(s.deployments, 1)
	s.Equal(contract.OutcomeSucceeded, s.deployments[0].Outcome)
}

func (s *rolloutSuite) TestFailedAnalysisRollsBackAutomatically() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.analysisReturns(activities.AnalysisFailed)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(10), analysisStep("errors"), weightStep(100))})
	s.Equal(ErrRolledBack, s.errType())
	s.Contains(s.env.GetWorkflowError().Error(), "analysis errors failed: errorRate of fleet fl-new was 0.31")
	s.Require().Len(s.routes, 2)
	s.Equal(10, s.routes[0].Weight("fl-new"))
	s.Equal(oldShares, s.shares[1], "traffic goes back to the old fleet")
	s.Equal([]string{"fl-new"}, s.terminated)
	s.Equal(contract.PhaseRolledBack, s.progress().Phase)
	s.Require().Len(s.deployments, 1)
	s.Equal(contract.OutcomeRolledBack, s.deployments[0].Outcome)
}

func (s *rolloutSuite) TestInconclusiveAnalysisWaitsForApproval() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.analysisReturns(activities.AnalysisInconclusive)
	var rejected error
	s.decide(time.Hour, contract.UpdateApprove, &rejected)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(10), analysisStep("errors"), weightStep(50))})
	s.Require().NoError(s.env.GetWorkflowError())
	s.NoError(rejected)
	s.Equal([]int{10, 50, 100}, newWeights(s.routes))
	p := s.progress()
	s.Require().Len(p.Approvals, 1)
	s.Equal("inconclusive analysis errors", p.Approvals[0].Gate)
	s.Equal("alice", p.Approvals[0].By)
}

func (s *rolloutSuite) TestIndefinitePauseWaitsForApprove() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var rejected error
	s.decide(3*time.Hour, contract.UpdateApprove, &rejected)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(20), indefinitePause())})
	s.Require().NoError(s.env.GetWorkflowError())
	s.NoError(rejected)
	s.Equal([]int{20, 100}, newWeights(s.routes))
}

func (s *rolloutSuite) TestApprovalGateReleasedByApprove() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var rejected error
	s.decide(10*time.Minute, contract.UpdateApprove, &rejected)
	r := testSpec()
	r.Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(time.Hour)}
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
	s.Require().NoError(s.env.GetWorkflowError())
	s.NoError(rejected)
	s.Equal([]int{100}, newWeights(s.routes))
	s.GreaterOrEqual(s.routedAt.Sub(time.Time{}), time.Duration(0))
}

func (s *rolloutSuite) TestApprovalTimeoutAbortsAndTearsDown() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	r := testSpec()
	r.Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(time.Hour)}
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
	s.Equal(ErrRolloutAborted, s.errType())
	s.Contains(s.env.GetWorkflowError().Error(), "nobody approved approval before cutover within 1h0m0s")
	s.Empty(s.routes, "no traffic may move without approval")
	s.Equal([]string{"fl-new"}, s.terminated)
	s.Equal(contract.PhaseAborted, s.progress().Phase)
}

func (s *rolloutSuite) TestAbortDuringACanaryPauseRestoresTheOldFleet() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var rejected error
	s.decide(5*time.Minute, contract.UpdateAbort, &rejected)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(25), pauseStep(time.Hour), weightStep(100))})
	s.NoError(rejected)
	s.Equal(ErrRolloutAborted, s.errType())
	s.Contains(s.env.GetWorkflowError().Error(), "aborted by alice: looks good; the previous fleet serves again")
	s.Require().Len(s.routes, 2)
	s.Equal(oldShares, s.shares[1])
	s.Equal([]string{"fl-new"}, s.terminated)
}

func (s *rolloutSuite) TestAbortWhileWaitingHealthyStopsAtOnce() {
	s.routeIs(oldRoute)
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, _ contract.WaitHealthyInput) (contract.WaitHealthyResult, error) {
			<-ctx.Done() // a slow fleet; only cancellation ends the wait
			return contract.WaitHealthyResult{}, ctx.Err()
		})
	var rejected error
	s.decide(time.Second, contract.UpdateAbort, &rejected)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})
	s.NoError(rejected)
	s.Equal(ErrRolloutAborted, s.errType())
	s.Empty(s.routes)
	s.Equal([]string{"fl-new"}, s.terminated)
}

func (s *rolloutSuite) TestPromoteSkipsPausesAndSoak() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var rejected error
	s.decide(time.Minute, contract.UpdatePromote, &rejected)
	start := s.env.Now()
	r := canarySpec(weightStep(10), pauseStep(10*time.Hour), weightStep(50), pauseStep(10*time.Hour))
	soak := contract.Duration(10 * time.Hour)
	r.Soak = &soak
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
	s.Require().NoError(s.env.GetWorkflowError())
	s.NoError(rejected)
	s.Equal([]int{10, 50, 100}, newWeights(s.routes))
	s.Less(s.terminatedAt.Sub(start), time.Hour, "promote must skip the remaining pauses and the soak")
}

func (s *rolloutSuite) TestRollbackDuringSoakIsOneRouteSwitch() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var rejected error
	s.decide(10*time.Second, contract.UpdateRollback, &rejected)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})
	s.NoError(rejected)
	s.Equal(ErrRolledBack, s.errType())
	s.Require().Len(s.routes, 2)
	s.Equal(100, s.routes[0].Weight("fl-new"))
	s.Equal(oldShares, s.shares[1])
	s.Equal([]string{"fl-new"}, s.terminated, "the old fleet is never terminated")
}

func (s *rolloutSuite) TestUpdatesThatMakeNoSenseAreRefusedWithAReason() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	r := testSpec()
	r.Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(time.Hour)}
	soak := contract.Duration(time.Hour)
	r.Soak = &soak
	var rollbackRejected, approveRejected, promoteRejected error
	s.decide(time.Minute, contract.UpdateRollback, &rollbackRejected) // nothing moved yet
	s.decide(2*time.Minute, contract.UpdateApprove, &approveRejected) // releases the gate
	s.decide(3*time.Minute, contract.UpdateApprove, &approveRejected) // nothing waits any more: refused
	s.decide(4*time.Minute, contract.UpdatePromote, &promoteRejected) // during soak: fine
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Error(rollbackRejected)
	s.Contains(rollbackRejected.Error(), "no traffic has moved yet")
	s.Require().Error(approveRejected)
	s.Contains(approveRejected.Error(), "nothing waits for approval")
	s.NoError(promoteRejected)
}

func (s *rolloutSuite) TestTrafficGuardRefusalLeavesTheOldRoute() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(temporal.NewNonRetryableApplicationError("traffic guard: refusing to send 100% of dev/hello to fleet fl-new: none of its 3 instances passes /healthz", contract.ErrTrafficGuard, nil))
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})
	s.Equal(ErrRolloutFailed, s.errType())
	s.Contains(s.env.GetWorkflowError().Error(), "traffic guard: refusing to send 100%")
	s.Equal([]string{"fl-new"}, s.terminated)
}

// rolling sets up a rolling rollout of size instances replacing an old fleet
// of oldSize: it records every resize ("fl-new=4") and the instances each
// health wait and smoke check start from.
func (s *rolloutSuite) rolling(oldSize int) (resizes *[]string, from *[]int) {
	old := contract.Route{Listen: "127.0.0.1:9080", Backends: []contract.Backend{{FleetID: "fl-old", Weight: 100}}}
	for i := range oldSize {
		old.Backends[0].Targets = append(old.Backends[0].Targets, fmt.Sprintf("127.0.0.1:%d", 2000+i))
	}
	s.routeIs(old)
	resizes, from = new([]string), new([]int)
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.WaitHealthyInput) (contract.WaitHealthyResult, error) {
			*from = append(*from, in.From)
			return contract.WaitHealthyResult{Healthy: 1}, nil
		})
	s.env.OnActivity(s.a.RunChecks, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.RunChecksInput) error {
			*from = append(*from, in.From)
			return nil
		})
	s.env.OnActivity(s.a.ScaleFleet, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ResizeInput) (contract.ResizeResult, error) {
			*resizes = append(*resizes, fmt.Sprintf("%s=%d", in.FleetID, in.Size))
			return contract.ResizeResult{FleetID: in.FleetID, Instances: in.Size}, nil
		})
	return resizes, from
}

func rollingSpec(size int, waves contract.Waves) contract.Rollout {
	r := testSpec()
	r.Fleet.Size = size
	r.Strategy = contract.Strategy{Type: contract.Rolling, Waves: waves}
	if err := normalize(&r); err != nil {
		panic(err)
	}
	return r
}

func (s *rolloutSuite) TestRollingReplacesTheOldFleetWaveByWave() {
	resizes, from := s.rolling(4)
	s.recordRoutes(nil)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: rollingSpec(4, "50%")})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]int{50, 100}, newWeights(s.routes))
	s.Equal([]contract.FleetShare{{FleetID: "fl-new", Weight: 50}, {FleetID: "fl-old", Weight: 50, Instances: 2}}, s.shares[0],
		"the old fleet keeps the share that still takes traffic, by count")
	s.Equal([]string{"fl-old=2", "fl-new=4"}, *resizes)
	s.Equal([]int{0, 0, 2, 2}, *from, "each wave probes and checks only the instances it added")
	s.Equal([]string{"fl-old"}, s.terminated)
	var res contract.RolloutResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(4, res.Instances)
}

// waves: 1 on 1,000 instances would be 1,000 waves; imago runs 100 waves of
// 10, and says so.
func (s *rolloutSuite) TestRollingWidensItsWavesToAtMostMaxWaves() {
	resizes, _ := s.rolling(1000)
	s.recordRoutes(nil)
	published := s.publishedEvents(0)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: rollingSpec(1000, "1")})
	s.Require().NoError(s.env.GetWorkflowError())
	var want []int
	for w := 1; w <= 100; w++ {
		want = append(want, w)
	}
	s.Equal(want, newWeights(s.routes), "100 waves, 1% each")
	grown := 0
	for _, r := range *resizes {
		if strings.HasPrefix(r, "fl-new=") {
			grown++
		}
	}
	s.Equal(99, grown, "the first wave is provisioned, 99 more grow the fleet by 10")
	s.Equal("fl-new=1000", (*resizes)[len(*resizes)-1])
	p := s.progress()
	s.Equal("wave 100 of 100: 1000 of 1000 new instances take 100%", p.Step)
	s.Equal(1000, p.Instances)
	var rolling []string
	for _, ev := range *published {
		if ev.Data.Phase == contract.PhaseRolling {
			rolling = append(rolling, ev.Data.Message)
		}
	}
	s.Equal([]string{"wave 1 of 100: 10 of 1000 new instances take 1% (waves of 1 on 1000 instances would be 1000 waves; " +
		"imago runs at most 100: 10 instances per wave)"}, rolling, "one phase event for the waves, saying they were widened")
	s.Equal([]string{
		"dev.imago.rollout.phase resolving",
		"dev.imago.rollout.phase provisioning",
		"dev.imago.rollout.phase waiting-healthy",
		"dev.imago.rollout.phase validating",
		"dev.imago.rollout.phase rolling",
		"dev.imago.rollout.phase soaking",
		"dev.imago.rollout.phase decommissioning",
		"dev.imago.rollout.finished succeeded",
	}, phasesOf(*published), "a wave's health wait and checks are steps of the rolling phase")
}

// A verification that fails after the last wave rolls back: the old fleet,
// shrunk to one instance, grows back before the route returns to it whole.
func (s *rolloutSuite) TestRollingThatFailsVerificationRevertsToTheWholeOldFleet() {
	resizes, _ := s.rolling(10)
	s.recordRoutes(nil)
	s.analysisReturns(activities.AnalysisFailed)
	r := rollingSpec(10, "")
	r.Analyses = map[string]contract.Analysis{"errors": {Provider: "router", Metric: "errorRate", Max: f64(0.05), Interval: contract.Duration(5 * time.Second), Count: 3}}
	r.Verify = &contract.Verify{Analysis: "errors"}
	s.Require().NoError(normalize(&r))
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
	s.Equal(ErrRolledBack, s.errType())
	last := len(s.shares) - 1
	s.Equal([]contract.FleetShare{{FleetID: "fl-new", Weight: 100}}, s.shares[last-1], "the last wave took all traffic")
	s.Equal(oldShares, s.shares[last], "then the route went back to the whole old fleet")
	s.Equal("fl-old=10", (*resizes)[len(*resizes)-1], "grown back before the route")
	s.Equal([]string{"fl-new"}, s.terminated)
	s.Equal(contract.PhaseRolledBack, s.progress().Phase)
}

// ImagoPhase is upserted when the phase changes, not at every step of one
// phase: each upsert is an event in the history (and a write to visibility).
func (s *rolloutSuite) TestImagoPhaseIsUpsertedOnlyWhenItChanges() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var upserted []contract.Phase
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if phase, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(contract.PhaseAttr); ok {
			upserted = append(upserted, contract.Phase(phase))
		}
	}).Return(nil)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(10), weightStep(30), weightStep(60), pauseStep(time.Minute), weightStep(90))})

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]contract.Phase{
		contract.PhaseResolving, contract.PhaseProvisioning, contract.PhaseWaitingHealthy, contract.PhaseValidating, contract.PhaseCanary, contract.PhasePaused, contract.PhaseCanary,
		contract.PhaseCuttingOver, contract.PhaseSoaking, contract.PhaseDecommissioning, contract.PhaseSucceeded,
	}, upserted)
}
