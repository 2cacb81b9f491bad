package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/freezes"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// TestAFrozenCanaryKeepsServingItsSplitUntilTheFreezeEnds: a canary at 50%
// when a freeze of its service starts holds that split through the real
// router (both versions answer) instead of going to 100%, and finishes once
// the freeze ends.
func TestAFrozenCanaryKeepsServingItsSplitUntilTheFreezeEnds(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	_, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	run, err := rollouts.Start(ctx, e.client, e.spec(v2, func(r *spec.Rollout) {
		r.Checks = nil
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: ip(50)}, {Pause: &contract.Pause{}}}}
	}), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	e.waitPhase(contract.PhasePaused)
	_, err = freezes.Start(ctx, e.deps.Catalog, freezes.StartOptions{Service: "hello", Reason: "incident INC-7", By: "ana"})
	require.NoError(t, err)
	require.NoError(t, rollouts.Decide(ctx, e.client, "hello", "test", contract.UpdateApprove, "bob", "looks good"))
	e.waitPhase(contract.PhaseFrozen)

	seen := map[string]int{}
	for range 40 {
		seen[e.get()]++
	}
	assert.Positive(t, seen["hello from v1"], "the split holds: %v", seen)
	assert.Positive(t, seen["hello from v2"], "the split holds: %v", seen)
	assert.Len(t, seen, 2, "%v", seen)

	require.Eventually(t, func() bool {
		list, err := rollouts.List(ctx, e.client, rollouts.ListOptions{Service: "hello"})
		return err == nil && len(list) > 0 && list[0].Phase == contract.PhaseFrozen
	}, time.Minute, 50*time.Millisecond, "listed as frozen")
	ended, err := freezes.End(ctx, e.deps.Catalog, e.client, "hello", "", "ana")
	require.NoError(t, err)
	assert.Equal(t, []string{run.GetID()}, ended.Signalled)
	var res contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res))
	e.recordHistory("rollout-canary-frozen-then-released", run.GetID(), run.GetRunID())
	for range 10 {
		require.Equal(t, "hello from v2", e.get())
	}
}
