package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

// The Pipeline workflow with mocked child workflows and activities, and time
// skipping for its approval gates. Real pipelines run in internal/app.

type pipelineSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	a   *activities.Activities

	rolled []string // environments rolled out to, in order
	forced bool     // the bake was asked to build regardless of the cache
}

func TestPipelineWorkflowWithMockedChildren(t *testing.T) { suite.Run(t, new(pipelineSuite)) }

func (s *pipelineSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(Pipeline)
	s.env.RegisterWorkflow(Bake)
	s.env.RegisterWorkflow(Rollout)
	s.env.RegisterActivity(&activities.Activities{})
	s.env.OnActivity(s.a.CheckSpec, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.rolled, s.forced = nil, false
}

func pipelineSpec(gateProd bool) contract.Pipeline {
	stage := func(env string) contract.Stage {
		return contract.Stage{Rollout: contract.Rollout{Service: "hello", Environment: env, Provider: "local", Fleet: contract.FleetSpec{Size: 2},
			Listen: "127.0.0.1:9080", Strategy: contract.Strategy{Type: contract.BlueGreen}}}
	}
	b := bakeSpec()
	p := contract.Pipeline{Name: "hello", BakeFile: "bake.yaml", Bake: &b, Stages: []contract.Stage{stage("staging"), stage("prod")}}
	if gateProd {
		p.Stages[1].Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(24 * time.Hour)}
	}
	return p
}

// bakes makes the bake child return img, from the cache or freshly built.
func (s *pipelineSuite) bakes(img string, cached bool) {
	s.env.OnWorkflow(Bake, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in contract.BakeInput) (contract.BakeResult, error) {
		s.forced = in.Spec.Force
		return contract.BakeResult{ImageID: img, Cached: cached && !in.Spec.Force, InputDigest: "sha256:abc", Channel: "latest"}, nil
	})
}

// live sets what the inventory says is live per environment.
func (s *pipelineSuite) live(m map[string]string) {
	s.env.OnActivity(s.a.LiveImages, mock.Anything, mock.Anything).Return(m, nil)
}

// rollouts makes the rollout child succeed, except in the environments of failing.
func (s *pipelineSuite) rollouts(failing ...string) {
	s.env.OnWorkflow(Rollout, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in contract.RolloutInput) (contract.RolloutResult, error) {
		s.rolled = append(s.rolled, in.Spec.Environment+"="+in.Spec.Image.ID)
		for _, f := range failing {
			if in.Spec.Environment == f {
				return contract.RolloutResult{}, temporal.NewNonRetryableApplicationError("smoke check GET /healthz failed", ErrRolloutFailed, nil)
			}
		}
		return contract.RolloutResult{ImageID: in.Spec.Image.ID}, nil
	})
}

func (s *pipelineSuite) run(in contract.PipelineInput) (contract.PipelineResult, error) {
	s.env.ExecuteWorkflow(Pipeline, in)
	s.True(s.env.IsWorkflowCompleted())
	var res contract.PipelineResult
	err := s.env.GetWorkflowError()
	if err == nil {
		s.NoError(s.env.GetWorkflowResult(&res))
	}
	return res, err
}

func (s *pipelineSuite) progress() contract.PipelineProgress {
	v, err := s.env.QueryWorkflow(contract.QueryProgress)
	s.Require().NoError(err)
	var p contract.PipelineProgress
	s.Require().NoError(v.Get(&p))
	return p
}

func (s *pipelineSuite) TestNewImageRollsThroughStagesInOrder() {
	s.bakes("img-new", false)
	s.live(map[string]string{"staging": "img-old", "prod": "img-old"})
	s.rollouts()
	res, err := s.run(contract.PipelineInput{Spec: pipelineSpec(false), Trigger: "manual"})
	s.Require().NoError(err)
	s.Equal([]string{"staging=img-new", "prod=img-new"}, s.rolled)
	s.True(res.Built)
	s.False(res.Skipped)
	s.Equal(contract.StageSucceeded, res.Stages[0].State)
	s.Equal(contract.StageSucceeded, res.Stages[1].State)
	s.Equal(contract.PhaseSucceeded, s.progress().Phase)
}

func (s *pipelineSuite) TestFailedStagingNeverTouchesProd() {
	s.bakes("img-new", false)
	s.live(map[string]string{})
	s.rollouts("staging")
	_, err := s.run(contract.PipelineInput{Spec: pipelineSpec(false)})
	s.Require().Error(err)
	var app *temporal.ApplicationError
	s.Require().True(errors.As(err, &app))
	s.Equal(ErrPipelineFailed, app.Type())
	s.Contains(app.Message(), "stage staging failed: smoke check GET /healthz failed; prod not touched")
	s.Equal([]string{"staging=img-new"}, s.rolled)
	p := s.progress()
	s.Equal(contract.PhaseFailed, p.Phase)
	s.Equal(contract.StageFailed, p.Stages[0].State)
	s.Equal(contract.StageNotStarted, p.Stages[1].State)
}

func (s *pipelineSuite) TestUnchangedInputsSkipWithAReason() {
	s.bakes("img-same", true)
	s.live(map[string]string{"staging": "img-same", "prod": "img-same"})
	s.rollouts()
	res, err := s.run(contract.PipelineInput{Spec: pipelineSpec(true), Trigger: "schedule"})
	s.Require().NoError(err)
	s.True(res.Skipped)
	s.Equal("skipped: inputs unchanged; img-same is already live in staging, prod", res.Reason)
	s.Empty(s.rolled)
	s.Equal(contract.PhaseSkipped, s.progress().Phase)
}

func (s *pipelineSuite) TestCachedImageGoesOnlyWhereItIsNotLive() {
	s.bakes("img-same", true)
	s.live(map[string]string{"staging": "img-same", "prod": "img-old"})
	s.rollouts()
	res, err := s.run(contract.PipelineInput{Spec: pipelineSpec(false)})
	s.Require().NoError(err)
	s.Equal([]string{"prod=img-same"}, s.rolled)
	s.Equal(contract.StageUnchanged, res.Stages[0].State)
	s.Equal(contract.StageSucceeded, res.Stages[1].State)
}

func (s *pipelineSuite) TestAlwaysBuildsAndRollsEvenWhenUnchanged() {
	s.bakes("img-same", true)
	s.live(map[string]string{"staging": "img-same", "prod": "img-same"})
	s.rollouts()
	res, err := s.run(contract.PipelineInput{Spec: pipelineSpec(false), Always: true})
	s.Require().NoError(err)
	s.True(s.forced)
	s.False(res.Skipped)
	s.Equal([]string{"staging=img-same", "prod=img-same"}, s.rolled)
}

func (s *pipelineSuite) approveAfter(d time.Duration, by string, rejected *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(contract.UpdateApprove, "approve-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *rejected = err },
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, contract.DecisionInput{By: by, Reason: "staging looks good"})
	}, d)
}

func (s *pipelineSuite) TestProdWaitsForApproval() {
	s.bakes("img-new", false)
	s.live(map[string]string{})
	s.rollouts()
	var early, rejected error
	// An approval before the gate opens is refused with the reason.
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(contract.UpdateApprove, "too-early", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { early = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, contract.DecisionInput{By: "ana"})
	}, 0)
	s.env.RegisterDelayedCallback(func() {
		p := s.progress()
		s.Equal(contract.PhaseAwaitingApproval, p.Phase)
		s.Equal("prod", p.Gate)
		s.Equal([]string{"staging=img-new"}, s.rolled, "prod waits while the gate is open")
	}, 2*time.Hour)
	s.approveAfter(3*time.Hour, "ana", &rejected)
	res, err := s.run(contract.PipelineInput{Spec: pipelineSpec(true)})
	s.Require().NoError(err)
	s.NoError(rejected)
	s.Require().Error(early)
	s.Contains(early.Error(), "nothing waits for approval")
	s.Equal([]string{"staging=img-new", "prod=img-new"}, s.rolled)
	s.Require().NotNil(res.Stages[1].Approval)
	s.Equal("ana", res.Stages[1].Approval.By)
}

func (s *pipelineSuite) TestGateTimeoutStopsBeforeProd() {
	s.bakes("img-new", false)
	s.live(map[string]string{})
	s.rollouts()
	_, err := s.run(contract.PipelineInput{Spec: pipelineSpec(true)})
	s.Require().Error(err)
	s.Contains(err.Error(), "nobody approved prod within 24h0m0s")
	s.Equal([]string{"staging=img-new"}, s.rolled)
	p := s.progress()
	s.Equal(contract.PhaseAborted, p.Phase)
	s.Equal(contract.StageNotStarted, p.Stages[1].State)
}

func (s *pipelineSuite) TestAbortAtTheGate() {
	s.bakes("img-new", false)
	s.live(map[string]string{})
	s.rollouts()
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(contract.UpdateAbort, "abort-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("abort refused", err.Error()) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, contract.DecisionInput{By: "ana", Reason: "freeze"})
	}, time.Hour)
	_, err := s.run(contract.PipelineInput{Spec: pipelineSpec(true)})
	s.Require().Error(err)
	s.Contains(err.Error(), "pipeline hello aborted by ana: freeze")
	s.Equal([]string{"staging=img-new"}, s.rolled)
}

func (s *pipelineSuite) TestBakeOnlyPipeline() {
	p := pipelineSpec(false)
	p.Stages = nil
	s.bakes("img-new", false)
	res, err := s.run(contract.PipelineInput{Spec: p})
	s.Require().NoError(err)
	s.Equal("img-new baked", res.Reason)
	s.True(res.Built)

	// The next tick finds the same inputs: skipped.
	s.SetupTest()
	s.bakes("img-new", true)
	res, err = s.run(contract.PipelineInput{Spec: p})
	s.Require().NoError(err)
	s.True(res.Skipped)
	s.Equal("skipped: inputs unchanged; img-new is already baked", res.Reason)
}

// An approval must say who approves: without "by" it is refused, with the
// reason, and the gate stays open for one that does.
func (s *pipelineSuite) TestAnApprovalWithoutItsSenderIsRefused() {
	s.bakes("img-new", false)
	s.live(map[string]string{})
	s.rollouts()
	var anonymous, rejected error
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(contract.UpdateApprove, "anonymous", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { anonymous = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, contract.DecisionInput{})
	}, 2*time.Hour)
	s.approveAfter(3*time.Hour, "ana", &rejected)
	res, err := s.run(contract.PipelineInput{Spec: pipelineSpec(true)})
	s.Require().NoError(err)
	s.Require().Error(anonymous)
	s.Contains(anonymous.Error(), "say who you are (by)")
	s.NoError(rejected)
	s.Require().NotNil(res.Stages[1].Approval)
	s.Equal("ana", res.Stages[1].Approval.By)
}
