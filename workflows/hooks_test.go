package workflows

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/imago/imago/internal/contract"
)

// A confirmTrafficIncrease hook that never agrees holds the weight, asking
// every interval, until hooks.timeout: then the rollout fails, no traffic
// having moved, and the new fleet is torn down. The rollback hook is not
// told (traffic never left the old fleet).
func (s *rolloutSuite) TestConfirmTrafficIncreaseThatNeverAgreesFailsAtItsTimeout() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.SetRouteInput) error {
			s.shares = append(s.shares, in.Shares)
			return nil
		}).Maybe()
	var asked []time.Time
	var hooks []string
	s.env.OnActivity(s.a.RunHook, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.HookInput) (contract.HookResult, error) {
			hooks = append(hooks, in.Payload.Hook)
			if in.Payload.Hook == contract.HookConfirmTrafficIncrease {
				asked = append(asked, s.env.Now())
				s.Equal(100, in.Payload.Weight)
				return contract.HookResult{Status: 409, Answer: "409 Conflict"}, nil
			}
			return contract.HookResult{Status: 200, Answer: "200 OK"}, nil
		})
	r := testSpec()
	r.Hooks = &contract.Hooks{ConfirmTrafficIncrease: "https://gate.example.com/c", Rollback: "https://gate.example.com/r",
		Interval: contract.Duration(time.Minute), Timeout: contract.Duration(10 * time.Minute)}

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})

	msg := s.failure()
	s.Contains(msg, "failed while waiting for the confirmTrafficIncrease hook to allow 100%: it did not allow it within hooks.timeout 10m0s; its last answer: 409 Conflict")
	s.Contains(msg, "the previous fleet keeps serving")
	s.Len(asked, 11, "asked at once, then every minute for 10 minutes")
	s.Equal(10*time.Minute, asked[len(asked)-1].Sub(asked[0]))
	s.Empty(s.shares, "no weight moved")
	s.Equal([]string{"fl-new"}, s.terminated)
	s.NotContains(hooks, contract.HookRollback)
}

// Hooks that are told (postRollout) never change the outcome, even when they
// keep failing; a spec without hooks calls none.
func (s *rolloutSuite) TestPostRolloutHookFailureDoesNotFailTheRollout() {
	s.routeIs(provider0())
	s.healthy()
	s.checksPass()
	s.recordRoutes(nil)
	s.env.OnActivity(s.a.RunHook, mock.Anything, mock.Anything).Return(contract.HookResult{}, errHookDown)
	r := testSpec()
	r.Hooks = &contract.Hooks{PostRollout: "https://gate.example.com/post", Interval: contract.Duration(time.Second), Timeout: contract.Duration(time.Minute)}

	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(contract.PhaseSucceeded, s.progress().Phase)
	found := false
	for _, e := range s.progress().Events {
		found = found || e.Message == "could not tell the postRollout hook: hook receiver down"
	}
	s.True(found, "the story says the hook could not be told: %v", s.progress().Events)
}

var errHookDown = errorString("hook receiver down")

type errorString string

func (e errorString) Error() string { return string(e) }

func provider0() contract.Route { return contract.Route{} }
