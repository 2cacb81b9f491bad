package workflows

import (
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
)

func TestOneClassifierForHowWorkflowsEnded(t *testing.T) {
	canceled := temporal.NewCanceledError()
	appErr := func(typ string, cause error) error {
		return temporal.NewNonRetryableApplicationError("x", typ, cause)
	}
	for _, c := range []struct {
		name           string
		err            error
		rollout        contract.Phase
		rolloutOutcome string
		bake, pipe     contract.Phase
	}{
		{"no error", nil, "succeeded", "succeeded", "succeeded", "succeeded"},
		{"a failure", errors.New("boom"), "failed", "failed", "failed", "failed"},
		{"a rollout's own failure", appErr(ErrRolloutFailed, errors.New("boom")), "failed", "failed", "failed", "failed"},
		{"aborted", appErr(ErrRolloutAborted, nil), "aborted", "aborted", "failed", "failed"},
		{"rolled back", appErr(ErrRolledBack, nil), "rolled-back", "rolled_back", "failed", "failed"},
		{"a pipeline aborted", appErr(ErrPipelineAborted, nil), "failed", "failed", "failed", "aborted"},
		{"cancelled", canceled, "canceled", "canceled", "canceled", "canceled"},
		{"cancelled inside a rollout failure", appErr(ErrRolloutFailed, canceled), "canceled", "canceled", "canceled", "canceled"},
		{"wrapped", fmt.Errorf("run: %w", appErr(ErrRolledBack, nil)), "rolled-back", "rolled_back", "failed", "failed"},
	} {
		if got := RolloutEnd(c.err); got != c.rollout {
			t.Errorf("%s: RolloutEnd = %q, want %q", c.name, got, c.rollout)
		}
		// The event and metric form (rolled_back), and the canonical form that
		// is the final phase itself (rolled-back).
		if got, ok := RolloutOutcome(RolloutEnd(c.err)); !ok || got.MetricLabel() != c.rolloutOutcome || got.String() != c.rollout.String() {
			t.Errorf("%s: RolloutOutcome = %q (metric label %q) %v, want %q (metric label %q)", c.name, got, got.MetricLabel(), ok, c.rollout, c.rolloutOutcome)
		}
		if got := BakeEnd(c.err); got != c.bake {
			t.Errorf("%s: BakeEnd = %q, want %q", c.name, got, c.bake)
		}
		if got := PipelineEnd(c.err); got != c.pipe {
			t.Errorf("%s: PipelineEnd = %q, want %q", c.name, got, c.pipe)
		}
	}
	for _, c := range []struct {
		phase  contract.Phase
		cached bool
		want   string
		final  bool
	}{
		{contract.PhaseSucceeded, false, "succeeded", true},
		{contract.PhaseSucceeded, true, "cached", true},
		{contract.PhaseFailed, false, "failed", true},
		{contract.PhaseCanceled, false, "canceled", true},
		{"building", false, "", false},
	} {
		if got, final := BakeOutcome(c.phase, c.cached); string(got) != c.want || final != c.final {
			t.Errorf("BakeOutcome(%q, %v) = %q %v, want %q %v", c.phase, c.cached, got, final, c.want, c.final)
		}
	}
	if _, final := RolloutOutcome(contract.PhaseCanary); final {
		t.Error("canary is not a final phase")
	}
}
