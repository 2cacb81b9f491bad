package workflows

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
)

// bakeTimeSpec is a blue/green rollout with a 10-minute bake time on errors,
// measured every 30 s.
func bakeTimeSpec() contract.Rollout {
	r := testSpec()
	r.Analyses = map[string]contract.Analysis{"errors": {Provider: "router", Metric: "errorRate", Max: f64(0.05), Interval: contract.Duration(30 * time.Second)}}
	r.BakeTime = &contract.BakeTime{Duration: contract.Duration(10 * time.Minute), Analysis: "errors"}
	if err := normalize(&r); err != nil {
		panic(err)
	}
	return r
}

// bakeTimeAnalysis answers RunAnalysis with phase after the bake time's
// measurements took their time (test time), and keeps what it was asked.
func (s *rolloutSuite) bakeTimeAnalysis(phase string, took time.Duration, asked *contract.AnalysisInput) {
	s.env.OnActivity(s.a.RunAnalysis, mock.Anything, mock.Anything).After(took).Return(
		func(_ context.Context, in contract.AnalysisInput) (contract.AnalysisResult, error) {
			*asked = in
			return analysisResult(in, phase), nil
		})
}

func (s *rolloutSuite) TestAGoodBuildPassesItsBakeTimeShowingTheTimeLeft() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var asked contract.AnalysisInput
	s.bakeTimeAnalysis(analysis.PhaseSuccessful, 10*time.Minute, &asked)
	var during contract.RolloutProgress
	s.env.RegisterDelayedCallback(func() { during = s.progress() }, 5*time.Minute+30*time.Second)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: bakeTimeSpec()})
	s.Require().NoError(s.env.GetWorkflowError())

	s.Equal(20, asked.Spec.Count, "one measurement every 30s for 10m")
	s.Equal(contract.PhaseBakeTime, during.Phase)
	s.Contains(during.Step, "5m0s left of 10m0s", "the time left, refreshed every minute")
	s.Require().NotNil(during.BakeTimeEnds)
	s.Equal([]int{100}, newWeights(s.routes), "one switch: the cutover")
	var res contract.RolloutResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().NotNil(res.BakeTime)
	s.Equal(analysis.PhaseSuccessful, res.BakeTime.Phase)
	s.Nil(res.BakeTime.Failed)
	s.Equal(3, res.BakeTime.Counts.Total())
	s.Equal([]string{"fl-old"}, s.terminated, "decommissioned after the bake time")
	s.Nil(s.progress().BakeTimeEnds)
}

func (s *rolloutSuite) TestABuildThatFailsInItsBakeTimeIsRolledBackWithTheMeasurement() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var asked contract.AnalysisInput
	s.bakeTimeAnalysis(analysis.PhaseFailed, 3*time.Minute, &asked)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: bakeTimeSpec()})

	err := s.env.GetWorkflowError()
	var app *temporal.ApplicationError
	s.Require().True(errors.As(err, &app), "%v", err)
	s.Equal(ErrRolledBack, app.Type())
	s.Contains(app.Error(), "rolled back automatically: bake-time analysis errors failed: errorRate of fleet fl-new was 0.31 > max 0.05 in 2 of 3 measurements (at 14:00:10: 0.31 > max 0.05")
	var res contract.RolloutResult
	s.Require().NoError(app.Details(&res))
	s.Require().NotNil(res.BakeTime)
	s.Equal(analysis.PhaseFailed, res.BakeTime.Phase)
	s.Require().NotNil(res.BakeTime.Failed)
	s.InDelta(0.31, *res.BakeTime.Failed.Value, 1e-9, "the measurement that failed")
	s.Equal("fl-new", res.FleetID)

	s.Require().Len(s.routes, 2, "two switches: the cutover, and one back")
	s.Equal(100, s.routes[0].Weight("fl-new"))
	s.Equal(100, s.routes[1].Weight("fl-old"), "all traffic back on the old fleet")
	s.Equal([]string{"fl-new"}, s.terminated, "the new fleet torn down, the old one kept")
	s.Equal(contract.PhaseRolledBack, s.progress().Phase)
}

// A canary with minHealthyPercent checks the new fleet before each traffic
// increase; a fleet that is no longer healthy enough is rolled back before
// it takes more traffic.
func (s *rolloutSuite) TestACanaryChecksMinHealthyPercentBeforeEachIncrease() {
	for _, tc := range []struct {
		name   string
		failAt int // the AtLeast check that fails (1-based); 0: none
	}{{"healthy throughout", 0}, {"unhealthy before 100%", 2}} {
		s.Run(tc.name, func() {
			s.SetupTest()
			s.routeIs(oldRoute)
			s.checksPass()
			s.recordRoutes(nil)
			var atLeast []int
			s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in contract.WaitHealthyInput) (contract.WaitHealthyResult, error) {
					if in.AtLeast == 0 {
						return contract.WaitHealthyResult{Healthy: 3}, nil
					}
					atLeast = append(atLeast, in.AtLeast)
					if len(atLeast) == tc.failAt {
						return contract.WaitHealthyResult{}, temporal.NewNonRetryableApplicationError("fleet fl-new not healthy within 1m0s: 1 of 3 instances pass /healthz", contract.ErrHealthTimeout, nil)
					}
					return contract.WaitHealthyResult{Healthy: 3}, nil
				})
			r := canarySpec(weightStep(50))
			r.Strategy.MinHealthyPercent = intp(60)
			s.Require().NoError(normalize(&r))
			s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
			if tc.failAt == 0 {
				s.Require().NoError(s.env.GetWorkflowError())
				s.Equal([]int{2, 2}, atLeast, "60% of 3 rounds up to 2, before 50% and before 100%")
				s.Equal([]int{50, 100}, newWeights(s.routes))
				return
			}
			s.Equal(ErrRolloutFailed, s.errType())
			s.Contains(s.env.GetWorkflowError().Error(), "checking that 2 of fl-new's instances (minHealthyPercent 60) pass /healthz before 100% of traffic")
			s.Equal([]int{50, 0}, newWeights(s.routes), "50%, then no more: back to the old fleet")
			s.Equal([]string{"fl-new"}, s.terminated)
		})
	}
}

// A rolling rollout with maxSurge 1 and maxUnavailable 1 (4 instances, waves
// of 2): the old fleet shrinks to 3 before the first wave is provisioned (5 at
// most), to 2 once the new fleet serves half, to 1 before the second wave
// grows the new fleet to 4; each shrink routes away from the instances that go
// before they go.
func (s *rolloutSuite) TestRollingWithinACapacityBudgetShrinksTheOldFleetFirst() {
	resizes, from := s.rolling(4)
	s.recordRoutes(nil)
	r := rollingSpec(4, "50%")
	one := contract.Budget("1")
	r.Strategy.MaxSurge, r.Strategy.MaxUnavailable = &one, &one
	s.Require().NoError(normalize(&r))
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
	s.Require().NoError(s.env.GetWorkflowError())

	s.Equal([][]contract.FleetShare{
		{{FleetID: "fl-old", Weight: 100, Instances: 3}},
		{{FleetID: "fl-new", Weight: 50}, {FleetID: "fl-old", Weight: 50, Instances: 2}},
		{{FleetID: "fl-new", Weight: 66}, {FleetID: "fl-old", Weight: 34, Instances: 1}},
		{{FleetID: "fl-new", Weight: 100}},
	}, s.shares)
	s.Equal([]string{"fl-old=3", "fl-old=2", "fl-old=1", "fl-new=4"}, *resizes)
	s.Equal([]int{0, 0, 2, 2}, *from, "each step probes and checks only the instances it added")
	var provisioned, budget bool
	for _, ev := range s.progress().Events {
		provisioned = provisioned || ev.Message == "fleet fl-new provisioned with 2 instances"
		budget = budget || ev.Message == "capacity budget: at most 5 instances run (4 + maxSurge 1), at least 3 serve (4 − maxUnavailable 1); 2 steps"
	}
	s.True(provisioned, "the first step provisions 2")
	s.True(budget, "the budget is said once")
	s.Equal([]string{"fl-old"}, s.terminated)
}
