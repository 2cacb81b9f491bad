package workflows

import (
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// A rebuild: a and b (built on the base) bake first, two at a time; c (built
// on b) waits for b. b's bake fails: the budget of one halts the campaign
// before any rollout; resume bakes b again, then c, then the rings roll what
// the bakes made.
func (s *campaignSuite) TestRebuildBakesLevelByLevelAndAFailedBakeHaltsIt() {
	svcs := []string{"a", "b", "c"}
	out := contract.CampaignPlanResult{Services: svcs, Images: map[string]string{}, Deployed: map[string][]string{}, Live: map[string]string{}}
	for i, svc := range svcs {
		out.Deployed[svc] = []string{"staging", "prod"}
		out.Live[svc+"/staging"], out.Live[svc+"/prod"] = "img-old", "img-old"
		out.Bakes = append(out.Bakes, contract.CampaignBakePlan{Service: svc, Level: 1 + i/2,
			Spec: &contract.Bake{Service: svc, Builder: contract.BuilderLocal, Channel: "stable"}})
	}
	s.env.OnActivity(s.a.CampaignPlan, mock.Anything, mock.MatchedBy(func(in contract.CampaignPlanInput) bool { return in.Rebuild })).Return(out, nil)
	baked := map[string][]time.Time{} // service → its bakes' start times
	done := map[string]time.Time{}
	failB := 1
	s.env.RegisterWorkflow(Bake)
	s.env.OnWorkflow(Bake, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in contract.BakeInput) (contract.BakeResult, error) {
		svc := in.Spec.Service
		baked[svc] = append(baked[svc], workflow.Now(ctx))
		if err := workflow.Sleep(ctx, 10*time.Minute); err != nil {
			return contract.BakeResult{}, err
		}
		done[svc] = workflow.Now(ctx)
		if svc == "b" && failB > 0 {
			failB--
			return contract.BakeResult{}, temporal.NewNonRetryableApplicationError("bake of b failed while building: exit status 1", ErrBakeFailed, nil)
		}
		return contract.BakeResult{ImageID: "img-new-" + svc}, nil
	})
	c := campaignSpec("x")
	c.Services, c.Image = nil, contract.CampaignImage{}
	c.Select = &contract.CampaignSelect{Base: &contract.ImageRef{Service: "base-os", Channel: "stable"}}
	c.ErrorBudget = contract.ErrorBudget{MaxFailed: 1}
	s.Require().NoError(spec.NormalizeCampaign(&c))
	var halted contract.CampaignProgress
	s.env.RegisterDelayedCallback(func() { halted = s.progress(s.env) }, time.Hour)
	s.decide(s.env, contract.UpdateResume, time.Hour+time.Minute, nil)
	res, err := s.run(s.env, contract.CampaignInput{Spec: c})
	s.Require().NoError(err)

	s.Equal(contract.PhaseHalted, halted.Phase)
	s.Empty(halted.Rings, "no rollout is laid out while the rebuild is halted")
	s.Equal(contract.TargetFailed, halted.Bakes[1].State)
	s.Contains(halted.Bakes[1].Error, "exit status 1")
	s.Equal(contract.TargetPending, halted.Bakes[2].State, "c waits for b")
	s.Len(baked["a"], 1)
	s.Len(baked["b"], 2, "resume bakes b again")
	s.Require().Len(baked["c"], 1)
	s.False(baked["c"][0].Before(done["b"]), "c bakes once b is rebuilt")
	s.Equal(6, res.Succeeded)
	for _, rs := range res.Rings {
		for _, t := range rs.Targets {
			s.Equal("img-new-"+t.Service, t.ImageID)
		}
	}
	for _, r := range s.log {
		s.False(r.start.Before(done["c"]), "rollouts start after every bake")
	}
}
