package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/plan"
	"github.com/imago/imago/internal/spec"
)

// The plan of a blue/green of hello v2 over v1, made after v1's real rollout
// recorded its provision and boot times, expects a duration within 20% of what
// the real rollout of v2 then takes (start to finish, as the inventory
// records it), with the defaults of provider local for the short steps. The soak (5 s) keeps the timers a real share of the run, so the
// measured boot times and the plan's defaults for the short steps both count.
func TestPlanDurationMatchesARealRolloutWithin20Percent(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	soak := contract.Duration(5 * time.Second)
	soaked := func(r *spec.Rollout) { r.Soak, r.Provider = &soak, "local" }

	v1 := e.importImage("v1")
	_, err := e.rollout(e.spec(v1, soaked))
	require.NoError(t, err)
	ts, err := e.deps.Catalog.Timings(ctx, "hello", "test")
	require.NoError(t, err)
	require.NotEmpty(t, ts, "the rollout recorded how long its fleet took to come up")
	require.Equal(t, v1, ts[0].ImageID)

	v2 := e.importImage("v2")
	r := e.spec(v2, soaked)
	p, err := plan.Run(ctx, e.deps.Catalog, r, plan.Options{})
	require.NoError(t, err)
	require.Equal(t, contract.PhaseSucceeded, p.Outcome, p.Error)
	require.Contains(t, p.Assumptions[1].Source, "measured")

	_, err = e.rollout(r)
	require.NoError(t, err)
	d, err := e.deps.Catalog.Live(ctx, "hello", "test")
	require.NoError(t, err)
	require.Equal(t, v2, d.ImageID)
	real, planned := d.Finished.Sub(d.Started), p.Duration.D()
	t.Logf("real rollout %s, plan %s (%+.0f%%)", real, planned, 100*(planned.Seconds()/real.Seconds()-1))
	require.InEpsilon(t, real.Seconds(), planned.Seconds(), 0.2, "plan %s vs real %s", planned, real)
}
