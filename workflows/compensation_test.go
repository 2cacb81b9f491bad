package workflows

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

// The undo of a rollout: armed before the fleet exists, and patient through a
// provider outage.

// provisionsThen makes Provision leave a fleet behind under its token (what a
// provider does half way) and then end with what rest returns.
func (s *rolloutSuite) provisionsThen(rest func(ctx context.Context) error) {
	s.env.OnActivity(s.a.Provision, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			f := newFleet(req)
			s.provisioned[req.Token] = f.ID
			return contract.Fleet{}, rest(ctx)
		})
}

// A rollout cancelled while its fleet is being provisioned tears down what the
// provision made: the undo knows the provision token before the fleet exists.
func (s *rolloutSuite) TestCancelWhileProvisioningTearsDownTheFleet() {
	s.imageResolves()
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.provisionsThen(func(ctx context.Context) error {
		s.env.CancelWorkflow() // while the provider starts instances
		<-ctx.Done()           // only the cancel stops it
		return ctx.Err()
	})

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.True(temporal.IsCanceledError(err), "the rollout ends canceled: %v", err)
	s.Equal([]string{"fl-new"}, s.terminated, "the half-made fleet must be torn down")
	s.Empty(s.provisioned, "no fleet left behind")
	s.Equal(contract.PhaseCanceled, s.progress().Phase)
}

// A provision that keeps failing after it made part of the fleet gives up; the
// part it made is torn down.
func (s *rolloutSuite) TestAProvisionThatGivesUpHalfWayLeavesNothing() {
	s.imageResolves()
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
	s.provisionsThen(func(context.Context) error { return errors.New("instance limit exceeded, try again later") })

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Contains(s.failure(), "failed while provisioning the new fleet")
	s.Equal([]string{"fl-new"}, s.terminated)
	s.Empty(s.provisioned)
}

// A provider outage that outlasts the quick options' retries (25 attempts,
// about 3.6 min) does not leave the canary split or the new fleet running: the
// undo keeps retrying until the provider answers again.
func (s *rolloutSuite) TestUndoOutlastsAProviderOutage() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	const outage = 30 * time.Minute
	var down time.Time // the provider is down from here for outage
	unavailable := func() error {
		if !down.IsZero() && s.env.Now().Before(down.Add(outage)) {
			return errors.New("provider API unavailable")
		}
		return nil
	}
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(func(_ context.Context, in contract.SetRouteInput) error {
		if err := unavailable(); err != nil {
			return err
		}
		s.routes, s.shares = append(s.routes, in.Route), append(s.shares, in.Shares)
		return nil
	})
	s.env.OnActivity(s.a.RunAnalysis, mock.Anything, mock.Anything).Return(func(context.Context, contract.AnalysisInput) (contract.AnalysisResult, error) {
		down = s.env.Now()
		return contract.AnalysisResult{Phase: activities.AnalysisFailed, Message: "errorRate 0.31 > max 0.05"}, nil
	})
	s.env.OnActivity(s.a.TerminateByToken, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.TerminateByTokenInput) ([]string, error) {
			if err := unavailable(); err != nil {
				return nil, err
			}
			s.terminated = append(s.terminated, s.provisioned[in.Token])
			delete(s.provisioned, in.Token)
			return s.terminated, nil
		})

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(10), analysisStep("errors"))})

	s.Equal(ErrRolledBack, s.errType())
	s.Require().Len(s.routes, 2, "the 10%% step, then the route back")
	s.Equal(oldShares, s.shares[1], "traffic is back on the whole old fleet once the provider answers")
	s.Equal([]string{"fl-new"}, s.terminated)
	s.GreaterOrEqual(s.env.Now().Sub(down), outage, "the undo waited the outage out")
}
