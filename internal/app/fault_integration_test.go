package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/faulty"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// The fault suite: real rollouts through a provider decorator that injects faults.

func (e *env) withFaults(o faulty.Options) *faulty.Driver {
	d := faulty.Wrap(e.deps.Local, o)
	e.deps.Activities.Provider = provider.New("local", d)
	return d
}

// Transient errors on 30% of provider calls (half of them after the call did its
// work, as a lost response) and 20 ms of latency on every call: blue/green and
// canary rollouts still succeed, and the load through the router sees no error.
func TestTransientProviderFaultsNeverFailARollout(t *testing.T) {
	e := newEnv(t)
	faults := e.withFaults(faulty.Options{TransientRate: 0.3, Latency: 20 * time.Millisecond, Seed: 7})
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")

	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: 8})
	e.waitRequests(load, 100)
	res2, err := e.rollout(e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: ip(50)}, {Pause: &contract.Pause{Duration: durp(time.Second)}}}}
	}))
	require.NoError(t, err)
	res3, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	rep := load.Stop()

	assert.Zero(t, rep.Total.Failures(), "faults in the provider must never reach users: %s", rep.Total.String())
	assert.Equal(t, "hello from v1", e.get())
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res3.FleetID: 3}, byFleet, "exactly the last fleet is alive: none leaked, none doubled")
	assert.NotContains(t, []string{res1.FleetID, res2.FleetID}, res3.FleetID)
	injected := faults.Injected()
	assert.Positive(t, injected["transient-before"], "faults were injected: %v", injected)
	assert.Positive(t, injected["transient-after"], "faults were injected: %v", injected)
	assert.GreaterOrEqual(t, injected["transient-before"]+injected["transient-after"], 5, "faults were injected: %v", injected)
}

// A permanent provider error in each phase before cutover fails the rollout with a
// reason that names the phase and the error; the old fleet keeps serving and the
// new one is torn down.
func TestPermanentProviderFaultAtEachPhaseLeavesTheOldFleetServing(t *testing.T) {
	e := newEnv(t)
	faults := e.withFaults(faulty.Options{})
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	for _, tc := range []struct {
		op, phase, outcome string
	}{
		{faulty.OpRoute, "reading the current route", "nothing was changed"},
		{faulty.OpProvision, "provisioning the new fleet", "the previous fleet keeps serving"},
		{faulty.OpDescribe, "waiting for the new fleet to become healthy", "the previous fleet keeps serving"},
		{faulty.OpSetRoute, "moving traffic", "the previous fleet keeps serving"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			faults.FailNext(tc.op, 1)
			_, err := e.rollout(e.spec(v2))
			require.Error(t, err)
			msg := rollouts.Reason(err)
			assert.Contains(t, msg, "failed while "+tc.phase)
			assert.Contains(t, msg, "injected permanent fault in "+tc.op)
			assert.Contains(t, msg, tc.outcome)
			assert.Equal(t, "hello from v1", e.get())
			byFleet, _ := e.instances()
			assert.Equal(t, map[string]int{res1.FleetID: 3}, byFleet, "the new fleet must be torn down")
		})
	}
}

func durp(d time.Duration) *contract.Duration {
	x := contract.Duration(d)
	return &x
}
