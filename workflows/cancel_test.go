package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

// Cancelling each workflow (temporal workflow cancel, or a pipeline closing
// its rollout): what it leaves behind and how it says it ended. "canceled" is
// an outcome of its own, not a failure.

// A rollout cancelled during its canary routes traffic back to the old fleet,
// tears the new one down and records "canceled" in the inventory, its finished
// event and its final phase.
func (s *rolloutSuite) TestCancelDuringACanaryRoutesBackAndRecordsCanceled() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	got := s.publishedEvents(0)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 10*time.Minute)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(10), pauseStep(time.Hour), weightStep(50))})

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.True(temporal.IsCanceledError(err), "the workflow ends canceled: %v", err)
	s.Equal([]int{10, 0}, newWeights(s.routes), "10%, then traffic back on the old fleet")
	s.Equal(oldShares, s.shares[1])
	s.Equal([]string{"fl-new"}, s.terminated)
	s.Equal(contract.PhaseCanceled, s.progress().Phase)
	s.Require().Len(s.deployments, 1)
	s.Equal(contract.OutcomeCanceled, s.deployments[0].Outcome)
	last := (*got)[len(*got)-1]
	s.Equal(contract.EventRolloutFinished, last.Type)
	s.Equal("canceled", last.Data.Outcome)
}

// A bake cancelled while it builds stops the build and publishes nothing: no
// image, no channel move; its outcome is canceled.
func (s *bakeSuite) TestCancelWhileBuildingPublishesNothing() {
	s.cache(false)
	s.env.OnActivity(s.a.BakeBuild, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, _ contract.BakeBuildInput) (contract.BakeBuildResult, error) {
			s.built = true
			s.env.CancelWorkflow() // while the build runs
			<-ctx.Done()           // a long build; the cancel reaches it through its heartbeat
			return contract.BakeBuildResult{}, ctx.Err()
		})
	var outcome string
	s.env.OnActivity(s.a.PublishEvent, mock.Anything, mock.Anything).Return(func(_ context.Context, ev contract.Event) error {
		outcome = ev.Data.Outcome
		return nil
	})

	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.True(temporal.IsCanceledError(err), "the bake ends canceled: %v", err)
	s.True(s.built)
	s.False(s.tested)
	s.False(s.published)
	s.Empty(s.moved)
	s.Equal("canceled", outcome)
	v, qerr := s.env.QueryWorkflow(contract.QueryProgress)
	s.Require().NoError(qerr)
	var p contract.BakeProgress
	s.Require().NoError(v.Get(&p))
	s.Equal(contract.PhaseCanceled, p.Phase)
}

// A pipeline cancelled while its staging rollout soaks waits for the rollout
// to undo itself (the route back takes 10 min: the provider is down) before it
// ends, then records the stage as canceled and never starts prod.
func (s *pipelineSuite) TestCancelDuringAStageWaitsForTheRolloutToUndo() {
	s.bakes("img-new", false)
	s.live(map[string]string{})
	// The staging rollout (the real workflow) with its activities mocked.
	s.env.OnActivity(s.a.ResolveImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
			return contract.ResolveImageResult{ImageID: in.Ref.ID, Service: in.Service}, nil
		})
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			return newFleet(req), nil
		})
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{Healthy: 2}, nil)
	const outage = 10 * time.Minute
	var cancelled time.Time
	var routes [][]contract.FleetShare
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(func(_ context.Context, in contract.SetRouteInput) error {
		if !cancelled.IsZero() && s.env.Now().Before(cancelled.Add(outage)) {
			return errors.New("provider API unavailable")
		}
		routes = append(routes, in.Shares)
		return nil
	})
	var tornDown []string
	s.env.OnActivity(s.a.TerminateByToken, mock.Anything, mock.Anything).Return(
		func(context.Context, contract.TerminateByTokenInput) ([]string, error) {
			tornDown = append(tornDown, "fl-new")
			return tornDown, nil
		})
	s.env.OnActivity(s.a.RecordDeployment, mock.Anything, mock.Anything).Return(contract.Deployment{}, nil)
	ps := pipelineSpec(false)
	soak := contract.Duration(time.Hour)
	ps.Stages[0].Rollout.Soak = &soak
	s.env.RegisterDelayedCallback(func() {
		cancelled = s.env.Now()
		s.env.CancelWorkflow()
	}, 10*time.Minute)

	_, err := s.run(contract.PipelineInput{Spec: ps})

	s.Require().Error(err)
	s.True(temporal.IsCanceledError(err), "the pipeline ends canceled: %v", err)
	s.Require().Len(routes, 2, "cut over to the new fleet, then back")
	s.Equal(oldShares, routes[1], "traffic back on the whole old fleet")
	s.Equal([]string{"fl-new"}, tornDown)
	p := s.progress()
	ended := p.Events[len(p.Events)-1]
	s.Equal(contract.PhaseCanceled, ended.Phase)
	s.GreaterOrEqual(ended.Time.Sub(cancelled), outage, "the pipeline ended after its rollout's undo, not at the cancel")
	s.Equal(contract.PhaseCanceled, p.Phase)
	s.Equal(contract.StageCanceled, p.Stages[0].State)
	s.Equal(contract.StageNotStarted, p.Stages[1].State)
}

// A reaper cancelled while it terminates a leaked fleet stops there: the
// other orphans wait for the next sweep, and the sweep ends canceled.
func TestCancelledReaperStopsTerminating(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.FindOrphans, mock.Anything, mock.Anything).Return(contract.FindOrphansResult{Orphans: []contract.Orphan{
		{FleetID: "fl-1"}, {FleetID: "fl-2"}, {FleetID: "fl-3"},
	}}, nil)
	var asked []string
	env.OnActivity(a.Terminate, mock.Anything, mock.Anything).Return(func(ctx context.Context, in contract.TerminateInput) error {
		asked = append(asked, in.FleetID)
		env.CancelWorkflow() // while the first fleet drains
		<-ctx.Done()
		return ctx.Err()
	})

	env.ExecuteWorkflow(Reaper, contract.ReaperInput{Apply: true})

	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.True(t, temporal.IsCanceledError(err), "the sweep ends canceled: %v", err)
	assert.Equal(t, []string{"fl-1"}, asked, "no fleet is terminated after the cancel")
}
