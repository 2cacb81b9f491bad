package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// The Campaign workflow with mocked child rollouts and activities, and time
// skipping: ring order, the parallel limit, the error budget's halt, resume,
// abort and continue-as-new. Real campaigns run in internal/app.

type campaignSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	a   *activities.Activities

	log     []rolled       // child rollouts, in the order they started
	running map[string]int // per environment, rollouts running now
	peak    map[string]int // per environment, the most that ran at once
	fail    map[string]int // "service/env" → how many of its attempts fail
}

type rolled struct {
	target      string // service/env
	start, done time.Time
}

func TestCampaignWorkflowWithMockedChildren(t *testing.T) { suite.Run(t, new(campaignSuite)) }

func (s *campaignSuite) SetupTest() {
	s.log, s.running, s.peak, s.fail = nil, map[string]int{}, map[string]int{}, map[string]int{}
	s.env = s.newEnv()
}

func (s *campaignSuite) newEnv() *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Campaign)
	env.RegisterWorkflow(Rollout)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(s.a.CampaignRolloutSpec, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.CampaignRolloutSpecInput) (contract.CampaignRolloutSpecResult, error) {
			b, err := json.Marshal(contract.Rollout{Service: in.Service, Environment: in.Environment, Provider: "local",
				Image: contract.ImageRef{ID: in.ImageID}, Fleet: contract.FleetSpec{Size: 2}, Listen: "127.0.0.1:9080",
				Strategy: contract.Strategy{Type: contract.BlueGreen}})
			return contract.CampaignRolloutSpecResult{Spec: b}, err
		})
	// Each rollout takes ten minutes; the ones in s.fail fail (after five) that many times.
	env.OnWorkflow(Rollout, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in contract.RolloutInput) (contract.RolloutResult, error) {
		key, env := in.Spec.Service+"/"+in.Spec.Environment, in.Spec.Environment
		s.running[env]++
		s.peak[env] = max(s.peak[env], s.running[env])
		r := rolled{target: key, start: workflow.Now(ctx)}
		d := 10 * time.Minute
		if s.fail[key] > 0 {
			d = 5 * time.Minute // a failing smoke check fails early
		}
		err := workflow.Sleep(ctx, d)
		s.running[env]--
		r.done = workflow.Now(ctx)
		s.log = append(s.log, r)
		if err != nil {
			return contract.RolloutResult{}, err
		}
		if s.fail[key] > 0 {
			s.fail[key]--
			return contract.RolloutResult{}, temporal.NewNonRetryableApplicationError("rollout/"+env+"/"+in.Spec.Service+" failed while running smoke checks: GET / answered 500", ErrRolloutFailed, nil)
		}
		return contract.RolloutResult{ImageID: in.Spec.Image.ID}, nil
	})
	return env
}

// plan: services a..f deployed in staging and prod, all on img-old; the
// channel names img-<service>.
func (s *campaignSuite) plan(env *testsuite.TestWorkflowEnvironment, services []string, notIn map[string]string) {
	out := contract.CampaignPlanResult{Services: services, Images: map[string]string{}, Deployed: map[string][]string{}, Live: map[string]string{}}
	for _, svc := range services {
		out.Images[svc] = "img-" + svc
		for _, e := range []string{"staging", "prod"} {
			if notIn[svc] == e {
				continue
			}
			out.Deployed[svc] = append(out.Deployed[svc], e)
			out.Live[svc+"/"+e] = "img-old"
		}
	}
	env.OnActivity(s.a.CampaignPlan, mock.Anything, mock.Anything).Return(out, nil)
}

func campaignSpec(services ...string) contract.CampaignSpec {
	c := contract.CampaignSpec{Name: "base-2026-12", Services: services, Image: contract.CampaignImage{Channel: "stable"},
		Rings: []contract.Ring{{Environments: []string{"staging"}, Parallel: 2}, {Environments: []string{"prod"}, Parallel: 1}}}
	if err := spec.NormalizeCampaign(&c); err != nil {
		panic(err)
	}
	return c
}

func (s *campaignSuite) run(env *testsuite.TestWorkflowEnvironment, in contract.CampaignInput) (contract.CampaignResult, error) {
	env.ExecuteWorkflow(Campaign, in)
	s.Require().True(env.IsWorkflowCompleted())
	var res contract.CampaignResult
	err := env.GetWorkflowError()
	if err == nil {
		s.NoError(env.GetWorkflowResult(&res))
	}
	return res, err
}

func (s *campaignSuite) progress(env *testsuite.TestWorkflowEnvironment) contract.CampaignProgress {
	v, err := env.QueryWorkflow(contract.QueryProgress)
	s.Require().NoError(err)
	var p contract.CampaignProgress
	s.Require().NoError(v.Get(&p))
	return p
}

func (s *campaignSuite) decide(env *testsuite.TestWorkflowEnvironment, update string, at time.Duration, rejected *error) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(update, fmt.Sprintf("%s-%s", update, at), &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if rejected != nil {
					*rejected = err
				}
			},
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, contract.DecisionInput{By: "alice", Reason: "fixed"})
	}, at)
}

func (s *campaignSuite) targets(p []rolled) []string {
	var out []string
	for _, r := range p {
		out = append(out, r.target)
	}
	sort.Strings(out)
	return out
}

func (s *campaignSuite) TestRingsInOrderAtMostParallelAfterApprovalAndBakeTime() {
	svcs := []string{"a", "b", "c", "d"}
	s.plan(s.env, svcs, map[string]string{"d": "prod"}) // d is not deployed in prod
	c := campaignSpec(svcs...)
	c.Rings[0].BakeTime = contract.Duration(time.Hour)
	c.Rings[1].Parallel = 2
	c.Rings[1].Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(24 * time.Hour)}
	var approvedAt time.Time
	s.decide(s.env, contract.UpdateApprove, 3*time.Hour, nil)
	s.env.RegisterDelayedCallback(func() {
		approvedAt = s.env.Now()
		p := s.progress(s.env)
		s.Equal(contract.PhaseAwaitingApproval, p.Phase)
		s.Equal(contract.RingWaiting, p.Rings[1].State)
	}, 3*time.Hour-time.Second)
	res, err := s.run(s.env, contract.CampaignInput{Spec: c, StartedBy: "alice"})
	s.Require().NoError(err)
	s.Equal(7, res.Succeeded)
	s.Equal([]string{"a/prod", "a/staging", "b/prod", "b/staging", "c/prod", "c/staging", "d/staging"}, s.targets(s.log))
	var stagingDone time.Time
	for _, r := range s.log {
		if r.target[2:] == "staging" && r.done.After(stagingDone) {
			stagingDone = r.done
		}
	}
	for _, r := range s.log {
		if r.target[2:] == "prod" {
			s.False(r.start.Before(stagingDone.Add(time.Hour)), "%s started before ring 1's bake time ended", r.target)
			s.False(r.start.Before(approvedAt), "%s started before the approval", r.target)
		}
	}
	s.Equal(2, s.peak["staging"])
	s.Equal(2, s.peak["prod"])
	p := s.progress(s.env)
	s.Equal(contract.PhaseSucceeded, p.Phase)
	s.Equal("alice", p.Rings[1].Approval.By)
	s.Len(p.Rings[1].Targets, 3, "d is not deployed in prod: not a target there")
}

func (s *campaignSuite) TestBudgetHaltsInRingTwoAndResumeFinishesIt() {
	svcs := []string{"a", "b", "c", "d"}
	s.plan(s.env, svcs, nil)
	s.fail["b/prod"] = 1
	c := campaignSpec(svcs...)
	c.ErrorBudget = contract.ErrorBudget{MaxFailed: 1}
	var halted contract.CampaignProgress
	var early error
	s.decide(s.env, contract.UpdateResume, 5*time.Minute, &early) // refused: not halted
	// staging: 2×10m; prod: a 10m, b fails at 30m+10m → halted.
	s.env.RegisterDelayedCallback(func() { halted = s.progress(s.env) }, 5*time.Hour)
	s.decide(s.env, contract.UpdateResume, 5*time.Hour+time.Minute, nil)
	res, err := s.run(s.env, contract.CampaignInput{Spec: c})
	s.Require().NoError(err)
	s.ErrorContains(early, "not halted")

	s.Equal(contract.PhaseHalted, halted.Phase)
	s.True(halted.Halted)
	s.Equal(1, halted.Ring)
	prod := map[string]contract.TargetState{}
	for _, t := range halted.Rings[1].Targets {
		prod[t.Service] = t.State
	}
	s.Equal(map[string]contract.TargetState{"a": contract.TargetSucceeded, "b": contract.TargetFailed,
		"c": contract.TargetPending, "d": contract.TargetPending}, prod, "the rest of ring 2 is untouched while halted")

	s.Equal(4+4, res.Succeeded)
	s.Equal(0, res.Failed)
	attempts := map[string]int{}
	for _, r := range s.log {
		attempts[r.target]++
	}
	s.Equal(2, attempts["b/prod"], "resume tries b again")
	s.Equal(1, attempts["c/prod"])
	p := s.progress(s.env)
	s.Equal(1, p.Failed)
	s.Require().Len(p.Resumes, 1)
	s.Equal("alice", p.Resumes[0].By)
}

func (s *campaignSuite) TestAbortWhileHaltedStartsNothingMore() {
	svcs := []string{"a", "b", "c"}
	s.plan(s.env, svcs, nil)
	s.fail["a/staging"] = 1
	c := campaignSpec(svcs...)
	s.decide(s.env, contract.UpdateAbort, 2*time.Hour, nil)
	res, err := s.run(s.env, contract.CampaignInput{Spec: c})
	var app *temporal.ApplicationError
	s.Require().True(errors.As(err, &app), "%v", err)
	s.Equal(ErrCampaignAborted, app.Type())
	s.Contains(app.Message(), "aborted by alice")
	// a failed with b running beside it; b finished on its own; c never started.
	s.Equal([]string{"a/staging", "b/staging"}, s.targets(s.log))
	p := s.progress(s.env)
	s.Equal(contract.PhaseAborted, p.Phase)
	s.Equal(contract.TargetSkipped, p.Rings[0].Targets[2].State)
	s.Equal(contract.RingNotStart, p.Rings[1].State)
	_ = res
}

func (s *campaignSuite) TestFailedInStagingIsSkippedInProd() {
	svcs := []string{"a", "b"}
	s.plan(s.env, svcs, nil)
	s.fail["a/staging"] = 1
	c := campaignSpec(svcs...)
	c.ErrorBudget = contract.ErrorBudget{MaxFailed: 2}
	res, err := s.run(s.env, contract.CampaignInput{Spec: c})
	s.Require().NoError(err)
	s.Equal([]string{"a/staging", "b/prod", "b/staging"}, s.targets(s.log))
	s.Equal(2, res.Succeeded)
	s.Equal(1, res.Failed)
	s.Equal(1, res.Skipped)
}

func (s *campaignSuite) TestContinueAsNewDoesNoRolloutTwice() {
	svcs := []string{"a", "b", "c", "d", "e", "f"}
	s.plan(s.env, svcs, nil)
	c := campaignSpec(svcs...)
	// Mid staging, the server suggests continuing as new: the running
	// rollouts finish, then the campaign goes on in a new run.
	s.env.RegisterDelayedCallback(func() { s.env.SetContinueAsNewSuggested(true) }, 15*time.Minute)
	_, err := s.run(s.env, contract.CampaignInput{Spec: c})
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can), "%v", err)
	var next contract.CampaignInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Require().NotNil(next.Progress)
	first := len(s.log)
	s.Equal(4, first, "two pairs of staging rollouts ran before it continued")

	env := s.newEnv() // no plan activity: the progress carries the plan
	res, err := s.run(env, next)
	s.Require().NoError(err)
	s.Equal(12, res.Succeeded)
	var all []string
	for _, r := range s.log {
		all = append(all, r.target)
	}
	seen := map[string]bool{}
	for _, t := range all {
		s.False(seen[t], "%s rolled out twice", t)
		seen[t] = true
	}
	s.Len(seen, 12)
	s.Equal(2, s.progress(env).Runs)
	s.Contains(fmt.Sprint(s.progress(env).Events), "succeeded")
}

// select: {base: …}: the plan names the services, and the campaign rolls them.
func (s *campaignSuite) TestSelectedServicesAreTheOnesThePlanFound() {
	s.plan(s.env, []string{"api", "web"}, nil)
	c := campaignSpec("x")
	c.Services, c.Select = nil, &contract.CampaignSelect{Base: &contract.ImageRef{Service: "base-os", Channel: "stable"}}
	s.Require().NoError(spec.NormalizeCampaign(&c))
	res, err := s.run(s.env, contract.CampaignInput{Spec: c})
	s.Require().NoError(err)
	s.Equal(4, res.Succeeded)
	s.Equal([]string{"api/prod", "api/staging", "web/prod", "web/staging"}, s.targets(s.log))
	s.Contains(fmt.Sprint(s.progress(s.env).Events), "selected 2 services: api, web")
}
