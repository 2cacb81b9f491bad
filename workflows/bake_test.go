package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

// The Bake workflow with mocked activities: every branch of its logic. The real
// builder, catalog and image test run in internal/app's integration tests.

type bakeSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	a   *activities.Activities

	built, tested, published bool
	moved                    []string
}

func TestBakeWorkflowWithMockedActivities(t *testing.T) { suite.Run(t, new(bakeSuite)) }

func (s *bakeSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterActivity(&activities.Activities{})
	s.env.OnActivity(s.a.CheckSpec, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.built, s.tested, s.published, s.moved = false, false, false, nil
	s.env.OnActivity(s.a.BakeDigest, mock.Anything, mock.Anything).Return(contract.BakeDigestResult{InputDigest: "sha256:abc"}, nil)
	s.env.OnActivity(s.a.MoveChannel, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.MoveChannelInput) (contract.ChannelEntry, error) {
			s.moved = append(s.moved, in.Channel+"="+in.ImageID)
			return contract.ChannelEntry{Service: in.Service, Channel: in.Channel, ImageID: in.ImageID}, nil
		}).Maybe()
}

func bakeSpec() contract.Bake {
	return contract.Bake{Service: "hello", Builder: contract.BuilderLocal, Files: []string{"main.go"}, Entrypoint: []string{"./hello"},
		Channel: "latest", Test: contract.ImageTest{Health: contract.Health{Path: "/healthz", Timeout: contract.Duration(30e9)}}}
}

func (s *bakeSuite) cache(found bool) {
	s.env.OnActivity(s.a.FindCached, mock.Anything, mock.Anything).Return(
		contract.FindCachedResult{Found: found, Image: contract.Image{ID: "img-cached00000"}}, nil)
}

func (s *bakeSuite) builds(err error) {
	s.env.OnActivity(s.a.BakeBuild, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.BakeBuildInput) (contract.BakeBuildResult, error) {
			s.built = true
			return contract.BakeBuildResult{Image: contract.Image{ID: "img-new000000000", Service: "hello", InputDigest: in.InputDigest}, ArchivePath: "/x.tar.gz"}, err
		})
}

func (s *bakeSuite) testsPass(err error) {
	s.env.OnActivity(s.a.TestImage, mock.Anything, mock.Anything).Return(func(context.Context, contract.TestImageInput) error {
		s.tested = true
		return err
	})
}

func (s *bakeSuite) publishes() {
	s.env.OnActivity(s.a.PublishImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.PublishImageInput) (contract.Image, error) {
			s.published = true
			return in.Image, nil
		})
}

func (s *bakeSuite) failure() string {
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var app *temporal.ApplicationError
	s.Require().True(errors.As(err, &app))
	s.Equal(ErrBakeFailed, app.Type())
	return app.Message()
}

func (s *bakeSuite) TestCacheHitReturnsTheExistingImageWithoutBuilding() {
	s.cache(true)
	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.BakeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(contract.BakeResult{ImageID: "img-cached00000", Cached: true, InputDigest: "sha256:abc", Channel: "latest"}, res)
	s.False(s.built)
	s.Equal([]string{"latest=img-cached00000"}, s.moved)
}

func (s *bakeSuite) TestCacheMissBuildsTestsPublishesAndMovesTheChannel() {
	s.cache(false)
	s.builds(nil)
	s.testsPass(nil)
	s.publishes()
	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.BakeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(contract.BakeResult{ImageID: "img-new000000000", InputDigest: "sha256:abc", Channel: "latest", Tested: true}, res)
	s.True(s.built && s.tested && s.published)
	s.Equal([]string{"latest=img-new000000000"}, s.moved)
}

func (s *bakeSuite) TestForceBuildsEvenWhenCached() {
	s.builds(nil)
	s.testsPass(nil)
	s.publishes()
	b := bakeSpec()
	b.Force = true
	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: b})
	s.Require().NoError(s.env.GetWorkflowError())
	s.True(s.built)
}

func (s *bakeSuite) TestFailedImageTestPublishesNothing() {
	s.cache(false)
	s.builds(nil)
	s.testsPass(temporal.NewNonRetryableApplicationError(`image img-new000000000 failed its test: want a body containing "v2"`, contract.ErrImageTest, nil))
	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})
	msg := s.failure()
	s.Contains(msg, "bake of hello failed while testing the image")
	s.Contains(msg, `want a body containing "v2"`)
	s.False(s.published)
	s.Empty(s.moved)
}

func (s *bakeSuite) TestTemplateErrorFailsWithPackersMessage() {
	s.cache(false)
	s.builds(temporal.NewNonRetryableApplicationError(`packer template: Error: Unsupported block type "sauce"`, contract.ErrTemplate, nil))
	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})
	s.Contains(s.failure(), `Unsupported block type "sauce"`)
	s.False(s.published)
}

func (s *bakeSuite) TestCloudImagesAreNotBootedLocally() {
	s.cache(false)
	s.builds(nil)
	s.publishes()
	b := bakeSpec()
	b.Builder = contract.BuilderPacker
	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: b})
	s.Require().NoError(s.env.GetWorkflowError())
	s.False(s.tested)
	s.True(s.published)
}

// rolloutGoesWell mocks a first rollout's activities, each succeeding, and
// registers the Bake workflow for its child; resolved (if not nil) gets the
// image reference the rollout resolves.
func (s *bakeSuite) rolloutGoesWell(resolved *contract.ImageRef) {
	s.env.OnActivity(s.a.ResolveImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
			if resolved != nil {
				*resolved = in.Ref
			}
			return contract.ResolveImageResult{ImageID: in.Ref.ID, Service: in.Service}, nil
		})
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(contract.Route{}, nil)
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			return newFleet(req), nil
		})
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{Healthy: 3}, nil)
	s.env.OnActivity(s.a.RunChecks, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(s.a.RecordDeployment, mock.Anything, mock.Anything).Return(contract.Deployment{}, nil)
	s.env.RegisterWorkflow(Bake)
}

// A rollout with image.bake runs the bake as a child workflow and ships its image.
func (s *bakeSuite) TestRolloutBakesItsImageFirst() {
	s.cache(true)
	var resolved contract.ImageRef
	s.rolloutGoesWell(&resolved)

	r := testSpec()
	r.Image = contract.ImageRef{Bake: "bake.yaml"}
	b := bakeSpec()
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r, Bake: &b})

	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.RolloutResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal("img-cached00000", res.ImageID)
	s.Equal(contract.ImageRef{ID: "img-cached00000"}, resolved)
}

// A rollout's bake runs as any other bake: under the bake's own workflow ID
// (one bake per service and channel at a time, as pipelines and the CLI rely
// on) and with the bake's search attributes, so it is found by service.
func (s *bakeSuite) TestARolloutsBakeIsTheChannelsBake() {
	s.rolloutGoesWell(nil)
	var id, service string
	s.env.OnWorkflow(Bake, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in contract.BakeInput) (contract.BakeResult, error) {
		id = workflow.GetInfo(ctx).WorkflowExecution.ID
		service, _ = workflow.GetTypedSearchAttributes(ctx).GetKeyword(contract.ServiceAttr)
		return contract.BakeResult{ImageID: "img-baked0000000", InputDigest: "sha256:abc", Channel: in.Spec.Channel}, nil
	})

	r := testSpec()
	r.Image = contract.ImageRef{Bake: "bake.yaml"}
	b := bakeSpec()
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r, Bake: &b})

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal("bake/hello/latest", id, "the bake's own workflow ID, not <rollout>/bake")
	s.Equal("hello", service, "the bake carries ImagoService")
}

// Each bake run builds in a directory of its own: BakeBuild gets the run. The
// build and the image test run on the bake task queue.
func (s *bakeSuite) TestEachBakeRunNamesItsBuild() {
	s.cache(false)
	var build, run string
	var queues []string
	s.env.OnActivity(s.a.BakeBuild, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in contract.BakeBuildInput) (contract.BakeBuildResult, error) {
			build, run = in.BuildID, activity.GetInfo(ctx).WorkflowExecution.RunID
			queues = append(queues, activity.GetInfo(ctx).TaskQueue)
			return contract.BakeBuildResult{Image: contract.Image{ID: "img-new000000000", Service: "hello"}, ArchivePath: "/x.tar.gz"}, nil
		})
	s.env.OnActivity(s.a.TestImage, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ contract.TestImageInput) error {
		queues = append(queues, activity.GetInfo(ctx).TaskQueue)
		return nil
	})
	s.publishes()
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "bake/hello/latest", TaskQueue: contract.TaskQueue})

	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	s.NotEmpty(run)
	s.Equal("bake/hello/latest/"+run, build)
	s.Equal([]string{contract.BakeTaskQueue, contract.BakeTaskQueue}, queues, "BakeBuild and TestImage run on the bake task queue")
}

// A bake tells its story as rollouts and pipelines do: each phase an event in
// its progress, counted, and the ImagoPhase attribute once a phase.
func (s *bakeSuite) TestProgressTellsTheBakesStory() {
	s.cache(false)
	s.builds(nil)
	s.testsPass(nil)
	s.publishes()
	var upserted []contract.Phase
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if phase, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(contract.PhaseAttr); ok {
			upserted = append(upserted, contract.Phase(phase))
		}
	}).Return(nil)
	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})
	s.Require().NoError(s.env.GetWorkflowError())

	v, err := s.env.QueryWorkflow(contract.QueryProgress)
	s.Require().NoError(err)
	var p contract.BakeProgress
	s.Require().NoError(v.Get(&p))
	s.Equal(contract.PhaseSucceeded, p.Phase)
	var story []string
	for _, ev := range p.Events {
		story = append(story, string(ev.Phase)+": "+ev.Message)
	}
	s.Equal([]string{
		"digest: computing the input digest",
		"building: building with imago-local (inputs sha256:abc)",
		"testing: booting one instance of img-new000000000",
		"publishing: publishing img-new000000000",
		"succeeded: img-new000000000 published on hello/latest",
	}, story)
	s.Equal(len(story), p.EventCount)
	s.Equal([]contract.Phase{contract.PhaseDigest, contract.PhaseBuilding, contract.PhaseTesting, contract.PhasePublishing, contract.PhaseSucceeded}, upserted)
}
