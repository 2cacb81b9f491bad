package workflows

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
)

// A canary's baseline fleet, with mocked activities: where it comes from,
// what share it gets, and that it is torn down however the rollout ends.

func baselineSpec(steps ...contract.Step) contract.Rollout {
	r := testSpec()
	r.Strategy = contract.Strategy{Type: contract.Canary, Baseline: true, Steps: steps}
	r.Analyses = map[string]contract.Analysis{"judge": {Kind: contract.AnalysisCompare, Provider: "router", Interval: contract.Duration(5 * time.Second),
		Metrics: []contract.CompareMetric{{Metric: "p99", Tolerance: "10%"}}}}
	if err := normalize(&r); err != nil {
		panic(err)
	}
	return r
}

// baselineStart sets the route the rollout finds and a provider that makes
// fl-new, or fl-base for a request labelled as the baseline; the live fleet
// fl-old runs img-000000000001.
func (s *rolloutSuite) baselineStart(route contract.Route) {
	s.imageResolves()
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(route, nil)
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			f := newFleet(req)
			if req.Labels[contract.LabelRole] == contract.LabelRoleBaseline {
				f.ID = "fl-base"
			}
			s.provisioned[req.Token] = f.ID
			return f, nil
		})
	s.env.OnActivity(s.a.FleetImage, mock.Anything, contract.FleetImageInput{FleetID: "fl-old"}).Return(
		contract.FleetImageResult{FleetID: "fl-old", ImageID: "img-000000000001", Instances: 3}, nil).Maybe()
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
}

func (s *rolloutSuite) TestBaselineCanaryGivesABaselineOfTheLiveImageTheCanarysShare() {
	s.baselineStart(oldRoute)
	var asked contract.AnalysisInput
	var baselineImage string
	s.env.OnActivity(s.a.RunAnalysis, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.AnalysisInput) (contract.AnalysisResult, error) {
			asked = in
			j := &contract.Judgment{Score: 100, Decision: contract.JudgmentPass, Reason: "score 100 ≥ pass 75",
				Metrics: []contract.MetricJudgment{{Name: "p99", Group: "p99", CanarySamples: 10, BaselineSamples: 10, P: 0.6, Verdict: contract.MetricPass}}}
			return contract.AnalysisResult{Name: in.Name, FleetID: in.FleetID, BaselineFleetID: in.BaselineFleetID, Phase: analysis.PhaseSuccessful,
				Message: analysis.JudgmentLine(*j), Judgment: j, Counts: contract.AnalysisCounts{Successful: 10}}, nil
		})
	s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		if info.ActivityType.Name == contract.ActivityProvision {
			var req contract.ProvisionRequest
			s.Require().NoError(args.Get(&req))
			if req.Labels[contract.LabelRole] == contract.LabelRoleBaseline {
				baselineImage = req.ImageID
				s.Equal(3, req.Size, "the baseline has the canary's size")
			}
		}
	})
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: baselineSpec(weightStep(10), analysisStep("judge"), weightStep(60))})
	s.Require().NoError(s.env.GetWorkflowError())

	s.Equal("img-000000000001", baselineImage, "the baseline runs the live fleet's image")
	s.Equal([][]contract.FleetShare{
		{{FleetID: "fl-new", Weight: 10}, {FleetID: "fl-base", Weight: 10}, {FleetID: "fl-old", Weight: 80}},
		{{FleetID: "fl-new", Weight: 60}, {FleetID: "fl-base", Weight: 40}},
		{{FleetID: "fl-new", Weight: 100}},
	}, s.shares)
	s.Equal("fl-new", asked.FleetID)
	s.Equal("fl-base", asked.BaselineFleetID, "the compare judges the canary against the baseline")
	s.Equal([]string{"fl-base", "fl-old"}, s.terminated, "the baseline goes at cutover, the old fleet at decommission")
	p := s.progress()
	s.Equal("fl-base", p.BaselineFleet)
	s.Require().Len(p.Analyses, 1)
	s.Require().NotNil(p.Analyses[0].Judgment)
	s.Equal(contract.JudgmentPass, p.Analyses[0].Judgment.Decision)
	s.Contains(AnalysesMarkdown(p.Analyses), "**Analysis judge** of fl-new against baseline fl-base: Successful — judgment: score 100 (pass)")
	s.Contains(AnalysesMarkdown(p.Analyses), "| p99 | 0 | 0 | +0% | 0 | 0.6 | Pass |")
}

// An abort tears down the baseline too, after the old route is back.
func (s *rolloutSuite) TestAbortedBaselineCanaryTearsDownTheBaselineToo() {
	s.baselineStart(oldRoute)
	var rejected error
	s.decide(5*time.Minute, contract.UpdateAbort, &rejected)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: baselineSpec(weightStep(25), pauseStep(time.Hour))})
	s.NoError(rejected)
	s.Equal(ErrRolloutAborted, s.errType())
	s.Require().Len(s.shares, 2)
	s.Equal(oldShares, s.shares[1], "the old fleet takes all the traffic back")
	s.Equal([]string{"fl-new", "fl-base"}, s.terminated)
}

// A failed compare rolls back and tears both fleets down.
func (s *rolloutSuite) TestFailedCompareRollsBackAndTearsDownTheBaseline() {
	s.baselineStart(oldRoute)
	s.analysisReturns(analysis.PhaseFailed)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: baselineSpec(weightStep(20), analysisStep("judge"))})
	s.Equal(ErrRolledBack, s.errType())
	s.Equal([]string{"fl-new", "fl-base"}, s.terminated)
	s.Empty(s.provisioned, "nothing the rollout made is left")
}

// A baseline needs something live to copy: a first rollout with one fails
// before anything is made, saying why.
func (s *rolloutSuite) TestBaselineWithNothingLiveFailsBeforeProvisioning() {
	s.imageResolves()
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(contract.Route{}, nil)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: baselineSpec(weightStep(20), analysisStep("judge"))})
	s.Equal(ErrRolloutFailed, s.errType())
	s.Contains(s.env.GetWorkflowError().Error(), "strategy.baseline: nothing is live on dev/hello to start a baseline fleet from")
	s.Empty(s.provisioned, "no Provision ran (none is mocked)")
}
