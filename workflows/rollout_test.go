package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// These tests run the Rollout workflow with mocked activities (testsuite): they
// cover every branch of the workflow's logic; the integration tests in
// internal/app run the same workflow against real processes.

type rolloutSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	a   *activities.Activities

	terminated   []string
	terminatedAt time.Time
	provisioned  map[string]string // token → fleet: what a provider made, for TerminateByToken
	routes       []contract.Route
	shares       [][]contract.FleetShare
	routedAt     time.Time
	deployments  []contract.Deployment
}

func TestRolloutWorkflowWithMockedActivities(t *testing.T) { suite.Run(t, new(rolloutSuite)) }

func (s *rolloutSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterActivity(&activities.Activities{})
	s.env.OnActivity(s.a.CheckSpec, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.terminated, s.routes, s.shares, s.deployments, s.provisioned = nil, nil, nil, nil, map[string]string{}
	s.env.OnActivity(s.a.Terminate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.TerminateInput) error {
			s.terminated = append(s.terminated, in.FleetID)
			s.terminatedAt = s.env.Now()
			return nil
		}).Maybe()
	s.env.OnActivity(s.a.TerminateByToken, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.TerminateByTokenInput) ([]string, error) {
			id, ok := s.provisioned[in.Token]
			if !ok {
				return nil, nil
			}
			delete(s.provisioned, in.Token)
			s.terminated = append(s.terminated, id)
			s.terminatedAt = s.env.Now()
			return []string{id}, nil
		}).Maybe()
	s.env.OnActivity(s.a.RecordDeployment, mock.Anything, mock.Anything).Return(
		func(_ context.Context, d contract.Deployment) (contract.Deployment, error) {
			s.deployments = append(s.deployments, d)
			return d, nil
		}).Maybe()
}

func (s *rolloutSuite) imageResolves() {
	s.env.OnActivity(s.a.ResolveImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
			return contract.ResolveImageResult{ImageID: in.Ref.ID, Service: in.Service}, nil
		})
}

func (s *rolloutSuite) provisions() {
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			f := newFleet(req)
			s.provisioned[req.Token] = f.ID
			return f, nil
		})
}

func (s *rolloutSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func newFleet(req contract.ProvisionRequest) contract.Fleet {
	f := contract.Fleet{ID: "fl-new", Service: req.Service, Environment: req.Environment, ImageID: req.ImageID, Token: req.Token}
	for i := 0; i < req.Size; i++ {
		f.Instances = append(f.Instances, contract.Instance{ID: fmt.Sprintf("fl-new-%d", i), Address: fmt.Sprintf("127.0.0.1:%d", 10000+i), State: contract.InstanceRunning})
	}
	return f
}

func testSpec() contract.Rollout {
	r := contract.Rollout{
		Service: "hello", Environment: "dev", Image: contract.ImageRef{ID: "img-000000000002"},
		Fleet: contract.FleetSpec{Size: 3}, Listen: "127.0.0.1:9080",
		Checks: []contract.Check{{Path: "/", ExpectBody: "v2"}},
	}
	if err := normalize(&r); err != nil {
		panic(err)
	}
	return r
}

var oldRoute = contract.Route{Listen: "127.0.0.1:9080", Backends: []contract.Backend{{FleetID: "fl-old", Weight: 100, Targets: []string{"127.0.0.1:2000"}}}}

// oldShares is oldRoute as SetRoute is asked for it: fl-old with all its instances.
var oldShares = []contract.FleetShare{{FleetID: "fl-old", Weight: 100}}

// routeIs sets the route the rollout finds, with an image that resolves and a
// fleet that provisions: the start every test but the image ones shares.
func (s *rolloutSuite) routeIs(r contract.Route) {
	s.imageResolves()
	s.provisions()
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(r, nil)
}

func (s *rolloutSuite) recordRoutes(err error) {
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.SetRouteInput) error {
			r := contract.Route{Listen: in.Route.Listen}
			for _, sh := range in.Shares {
				r.Backends = append(r.Backends, contract.Backend{FleetID: sh.FleetID, Weight: sh.Weight})
			}
			s.routes, s.shares = append(s.routes, r), append(s.shares, in.Shares)
			s.routedAt = s.env.Now()
			return err
		})
}

func (s *rolloutSuite) healthy() {
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{Healthy: 3}, nil)
}

func (s *rolloutSuite) checksPass() {
	s.env.OnActivity(s.a.RunChecks, mock.Anything, mock.Anything).Return(nil)
}

func (s *rolloutSuite) progress() contract.RolloutProgress {
	v, err := s.env.QueryWorkflow(contract.QueryProgress)
	s.Require().NoError(err)
	var p contract.RolloutProgress
	s.Require().NoError(v.Get(&p))
	return p
}

func (s *rolloutSuite) failure() string {
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var app *temporal.ApplicationError
	s.Require().True(errors.As(err, &app), "want an application error, got %v", err)
	s.Equal(ErrRolloutFailed, app.Type())
	return app.Message()
}

func (s *rolloutSuite) TestFirstRolloutRoutesAllTrafficToTheNewFleet() {
	s.routeIs(contract.Route{})
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.RolloutResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(contract.RolloutResult{ImageID: "img-000000000002", FleetID: "fl-new", Instances: 3}, res)
	s.Require().Len(s.routes, 1)
	s.Equal("127.0.0.1:9080", s.routes[0].Listen)
	s.Equal([]contract.FleetShare{{FleetID: "fl-new", Weight: 100}}, s.shares[0], "every instance of the new fleet, by reference")
	s.Empty(s.terminated)
	s.Equal(contract.PhaseSucceeded, s.progress().Phase)
}

func (s *rolloutSuite) TestSecondRolloutSoaksThenDecommissionsTheOldFleet() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.RolloutResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]string{"fl-old"}, res.Decommissioned)
	s.Equal([]string{"fl-old"}, s.terminated)
	s.GreaterOrEqual(s.terminatedAt.Sub(s.routedAt), 30*time.Second, "the old fleet must stay warm for the soak")
	p := s.progress()
	s.Equal([]string{"fl-old"}, p.OldFleets)
	s.Equal([]contract.FleetWeight{{FleetID: "fl-new", Weight: 100}}, p.Weights)
}

func (s *rolloutSuite) TestHealthTimeoutTearsDownTheNewFleetAndKeepsTheOldRoute() {
	s.routeIs(oldRoute)
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{},
		temporal.NewNonRetryableApplicationError("fleet fl-new not healthy within 1m0s: 2 of 3 instances pass /healthz", contract.ErrHealthTimeout, nil))

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	msg := s.failure()
	s.Contains(msg, "waiting for the new fleet to become healthy")
	s.Contains(msg, "2 of 3 instances pass /healthz")
	s.Contains(msg, "the previous fleet keeps serving")
	s.Equal([]string{"fl-new"}, s.terminated)
	s.Empty(s.routes, "no route may change when the new fleet never became healthy")
	p := s.progress()
	s.Equal(contract.PhaseFailed, p.Phase)
	s.Equal(msg, p.Error)
}

func (s *rolloutSuite) TestFailedSmokeCheckTearsDownTheNewFleet() {
	s.routeIs(oldRoute)
	s.healthy()
	s.env.OnActivity(s.a.RunChecks, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError(`smoke check checks[0] GET / on instance fl-new-0: want a body containing "v2", got "v1"`, contract.ErrCheckFailed, nil))

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	msg := s.failure()
	s.Contains(msg, "validating the new fleet")
	s.Contains(msg, `want a body containing "v2", got "v1"`)
	s.Equal([]string{"fl-new"}, s.terminated)
	s.Empty(s.routes)
}

func (s *rolloutSuite) TestCutoverFailureRestoresThePreviousRouteThenTearsDown() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(temporal.NewNonRetryableApplicationError("router did not apply generation 7 within 10s", contract.ErrProvider, nil))

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	msg := s.failure()
	s.Contains(msg, "moving traffic")
	s.Contains(msg, "router did not apply generation 7")
	s.Require().Len(s.routes, 2, "the cutover, then the restore")
	s.Equal("fl-new", s.routes[0].Backends[0].FleetID)
	s.Equal(oldRoute.Listen, s.routes[1].Listen)
	s.Equal(oldShares, s.shares[1])
	s.Equal([]string{"fl-new"}, s.terminated)
}

func (s *rolloutSuite) TestUnknownImageFailsBeforeAnythingIsProvisioned() {
	s.env.OnActivity(s.a.ResolveImage, mock.Anything, mock.Anything).Return(contract.ResolveImageResult{},
		temporal.NewNonRetryableApplicationError("image img-000000000002: not found in the catalog", contract.ErrImageNotFound, nil))

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	msg := s.failure()
	s.Contains(msg, "resolving the image")
	s.Contains(msg, "not found in the catalog")
	s.Empty(s.terminated)
}

func (s *rolloutSuite) TestImageOfAnotherServiceIsRefused() {
	s.env.OnActivity(s.a.ResolveImage, mock.Anything, mock.Anything).Return(contract.ResolveImageResult{ImageID: "img-000000000002", Service: "billing"}, nil)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Contains(s.failure(), `belongs to service "billing", not "hello"`)
}

func (s *rolloutSuite) TestProvisionTokenIsDerivedFromTheRun() {
	s.imageResolves()
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(contract.Route{}, nil)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	var token string
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
		token = req.Token
		return newFleet(req), nil
	})
	s.env.SetStartWorkflowOptions(clientStartOptions("rollout/dev/hello"))

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(strings.HasPrefix(token, "rollout/dev/hello/"), "token %q", token)
	require.Greater(s.T(), len(token), len("rollout/dev/hello/"))
}

func clientStartOptions(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: contract.TaskQueue}
}

// A rollback rolls out the image PreviousImage finds, not the one its starter
// expected (the inventory may have changed since), and says from which image.
func (s *rolloutSuite) TestRollbackRollsOutThePreviousImageItFinds() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.env.OnActivity(s.a.PreviousImage, mock.Anything, contract.PreviousImageInput{Service: "hello", Environment: "dev"}).
		Return(contract.PreviousImageResult{ImageID: "img-000000000001", From: "img-000000000003"}, nil).Once()

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec(), Action: contract.ActionRollback})

	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.RolloutResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal("img-000000000001", res.ImageID)
	p := s.progress()
	s.Equal(contract.ActionRollback, p.Action)
	s.Equal("img-000000000003", p.RollbackFrom)
	s.Equal("img-000000000001", p.ImageID)
	s.Require().NotEmpty(s.deployments)
	last := s.deployments[len(s.deployments)-1]
	s.Equal(contract.ActionRollback, last.Action)
	s.Equal("img-000000000001", last.ImageID)
}

// A rollback with nothing to roll back to fails before anything is made.
func (s *rolloutSuite) TestRollbackWithoutAPreviousImageFailsBeforeProvisioning() {
	s.env.OnActivity(s.a.PreviousImage, mock.Anything, mock.Anything).Return(contract.PreviousImageResult{},
		temporal.NewNonRetryableApplicationError("no previous deployable image of hello in dev (live: img-000000000002)", activities.ErrNoPreviousImage, nil))

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec(), Action: contract.ActionRollback})

	msg := s.failure()
	s.Contains(msg, "finding the previous deployable image")
	s.Contains(msg, "no previous deployable image of hello in dev")
	s.Empty(s.terminated)
	s.Equal(contract.PhaseFailed, s.progress().Phase)
}

// normalize applies spec's defaults and validation to r, as a client does
// before it starts a rollout.
func normalize(r *contract.Rollout) error {
	s := spec.Rollout{Rollout: *r}
	err := s.Normalize()
	*r = s.Rollout
	return err
}
