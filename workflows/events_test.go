package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/events"
)

// Phase events: what a subscriber of IMAGO_EVENTS_URL sees of a rollout and a bake.

// publishedEvents records the events the workflow publishes; fail makes the first
// n publish attempts fail.
func (s *rolloutSuite) publishedEvents(fail int) *[]contract.Event {
	var got []contract.Event
	s.env.OnActivity(s.a.PublishEvent, mock.Anything, mock.Anything).Return(func(_ context.Context, ev contract.Event) error {
		if fail > 0 {
			fail--
			return errors.New("topic unreachable")
		}
		got = append(got, ev)
		return nil
	})
	return &got
}

func phasesOf(evs []contract.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type+" "+string(ev.Data.Phase))
	}
	return out
}

func (s *rolloutSuite) TestEveryPhaseChangeAndTheOutcomeArePublished() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	got := s.publishedEvents(0)
	s.env.SetStartWorkflowOptions(clientStartOptions("rollout/dev/hello"))

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec(), StartedBy: "ci"})

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{
		"dev.imago.rollout.phase resolving",
		"dev.imago.rollout.phase provisioning",
		"dev.imago.rollout.phase waiting-healthy",
		"dev.imago.rollout.phase validating",
		"dev.imago.rollout.phase cutting-over",
		"dev.imago.rollout.phase soaking",
		"dev.imago.rollout.phase decommissioning",
		"dev.imago.rollout.finished succeeded",
	}, phasesOf(*got))
	for i, ev := range *got {
		s.NoError(events.Validate(ev))
		s.Equal(fmt.Sprintf("%s/%d", ev.Data.RunID, i+1), ev.ID, "IDs number the run's events")
		s.Equal(i+1, ev.Data.Seq)
		s.Equal("imago/default-test-namespace/rollout/dev/hello", ev.Source)
		s.Equal("hello/dev", ev.Subject)
		s.Equal("rollout/dev/hello", ev.Data.WorkflowID)
		s.Equal("ci", ev.Data.StartedBy)
		s.Equal("img-000000000002", ev.Data.Image)
		if i > 0 {
			s.False(ev.Time.Before((*got)[i-1].Time), "events are in time order")
		}
	}
	last := (*got)[len(*got)-1]
	s.Equal("succeeded", last.Data.Outcome)
	s.Equal("fl-new", last.Data.Fleet)
	s.Contains(last.Data.Message, "img-000000000002 serves dev/hello")
}

func (s *rolloutSuite) TestAFailedRolloutPublishesItsReason() {
	s.routeIs(oldRoute)
	s.env.OnActivity(s.a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{},
		temporal.NewNonRetryableApplicationError("2 of 3 instances pass /healthz", contract.ErrHealthTimeout, nil))
	got := s.publishedEvents(0)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	msg := s.failure()
	last := (*got)[len(*got)-1]
	s.Equal(contract.EventRolloutFinished, last.Type)
	s.Equal("failed", last.Data.Outcome)
	s.Equal(msg, last.Data.Error)
}

func (s *rolloutSuite) TestARolledBackCanaryPublishesRolledBack() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.analysisReturns("Failed")
	got := s.publishedEvents(0)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(weightStep(10), analysisStep("errors"))})

	s.Require().Error(s.env.GetWorkflowError())
	ph := phasesOf(*got)
	s.Contains(ph, "dev.imago.rollout.phase canary")
	s.Contains(ph, "dev.imago.rollout.phase analyzing")
	s.Contains(ph, "dev.imago.rollout.phase rolling-back")
	last := (*got)[len(*got)-1]
	s.Equal("dev.imago.rollout.finished rolled-back", last.Type+" "+string(last.Data.Phase))
	s.Equal("rolled_back", last.Data.Outcome)
	for _, ev := range *got {
		if ev.Data.Phase == contract.PhaseCanary {
			s.Equal("1/2 setWeight 10", ev.Data.Step, "canary events say which step")
		}
	}
}

// An events topic that is down never fails a rollout: the event is retried, then
// skipped, and the rollout carries on.
func (s *rolloutSuite) TestAnUnreachableTopicDoesNotFailTheRollout() {
	s.routeIs(contract.Route{})
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	got := s.publishedEvents(1000)

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	s.Empty(*got)
	s.Equal(contract.PhaseSucceeded, s.progress().Phase)
}

func (s *bakeSuite) TestBakePhasesAndOutcomeArePublished() {
	var got []contract.Event
	s.env.OnActivity(s.a.PublishEvent, mock.Anything, mock.Anything).Return(func(_ context.Context, ev contract.Event) error {
		got = append(got, ev)
		return nil
	})
	s.cache(false)
	s.builds(nil)
	s.testsPass(nil)
	s.publishes()

	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec(), StartedBy: "ci"})

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{
		"dev.imago.bake.phase digest",
		"dev.imago.bake.phase building",
		"dev.imago.bake.phase testing",
		"dev.imago.bake.phase publishing",
		"dev.imago.bake.finished succeeded",
	}, phasesOf(got))
	last := got[len(got)-1]
	s.Equal("hello", last.Subject)
	s.Equal("succeeded", last.Data.Outcome)
	s.Equal("img-new000000000", last.Data.Image)
	s.Equal("sha256:abc", last.Data.InputDigest)
	s.NoError(events.Validate(last))
}

func (s *bakeSuite) TestACachedBakePublishesCached() {
	var got []contract.Event
	s.env.OnActivity(s.a.PublishEvent, mock.Anything, mock.Anything).Return(func(_ context.Context, ev contract.Event) error {
		got = append(got, ev)
		return nil
	})
	s.cache(true)

	s.env.ExecuteWorkflow(Bake, contract.BakeInput{Spec: bakeSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{"dev.imago.bake.phase digest", "dev.imago.bake.finished succeeded"}, phasesOf(got))
	s.Equal("cached", got[1].Data.Outcome)
}

// An events topic that is down costs a phase at most 5 s: the workflow waits
// for the publication no longer before it carries on without the event.
func (s *rolloutSuite) TestATopicThatIsDownCostsAPhaseAtMostFiveSeconds() {
	var resolvedAt time.Time
	s.env.OnActivity(s.a.ResolveImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
			resolvedAt = s.env.Now()
			return contract.ResolveImageResult{ImageID: in.Ref.ID, Service: in.Service}, nil
		})
	s.provisions()
	s.env.OnActivity(s.a.ReadRoute, mock.Anything, mock.Anything).Return(contract.Route{}, nil)
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.publishedEvents(1000)
	start := s.env.Now()

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: testSpec()})

	s.Require().NoError(s.env.GetWorkflowError())
	s.LessOrEqual(resolvedAt.Sub(start), 5*time.Second, "the first phase's event held the rollout for %s", resolvedAt.Sub(start))
}
