package app

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/pubsub"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/drift"
	"github.com/imago/imago/internal/events"
)

// TestDriftFindsAKilledInstanceAndARolloutRepairsIt: a blue/green of hello on
// the local provider, then one instance process killed by the PID the provider
// reports. imago drift reports it missing (and an event says so); --repair's
// rollout of the live image with the last spec brings a whole new fleet; the
// next check finds no drift.
func TestDriftFindsAKilledInstanceAndARolloutRepairsIt(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v1 := e.importImage("v1")
	res, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	require.Equal(t, 3, res.Instances)
	in := contract.DriftInput{Service: "hello", Environment: "test"}

	rep, err := drift.Check(ctx, e.client, in, "integration-test")
	require.NoError(t, err)
	require.Len(t, rep.Targets, 1)
	assert.False(t, rep.Targets[0].Drifted(), "a fresh rollout has no drift: %+v", rep.Targets[0].Items)

	fleet, err := e.deps.Provider.Describe(ctx, res.FleetID)
	require.NoError(t, err)
	victim := fleet.Instances[1]
	require.Positive(t, victim.PID)
	require.NoError(t, syscall.Kill(victim.PID, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		f, err := e.deps.Provider.Describe(ctx, res.FleetID)
		require.NoError(t, err)
		return f.Instances[1].State != contract.InstanceRunning
	}, 30*time.Second, 100*time.Millisecond, "the provider never saw instance %s exit", victim.ID)

	sub, err := pubsub.OpenSubscription(ctx, e.deps.Events.URL())
	require.NoError(t, err)
	defer sub.Shutdown(context.Background())

	rep, err = drift.Check(ctx, e.client, in, "integration-test")
	require.NoError(t, err)
	require.Len(t, rep.Targets, 1)
	got := rep.Targets[0]
	assert.Equal(t, v1, got.LiveImage)
	assert.Equal(t, res.FleetID, got.LiveFleet)
	assert.Equal(t, 1, got.Instances)
	assert.Equal(t, 1, rep.Instances)
	require.Len(t, got.Items, 1, "%+v", got.Items)
	assert.Equal(t, contract.DriftMissingInstance, got.Items[0].Kind)
	assert.Equal(t, victim.ID, got.Items[0].InstanceID)
	assert.Equal(t, victim.PID, got.Items[0].PID)
	assert.Contains(t, got.Items[0].Detail, "instance "+victim.ID+" of live fleet "+res.FleetID+" is exited")
	assert.Contains(t, rep.Summary, "drift in test/hello (1 items, 1 instances)")
	last, err := e.deps.Catalog.LastDrift(ctx, "hello", "test")
	require.NoError(t, err)
	require.NotNil(t, last, "imago status reads the last check from the catalog")
	assert.Equal(t, got.Items, last.Items)

	for {
		m, err := sub.Receive(ctx)
		require.NoError(t, err, "no %s event", contract.EventDriftDetected)
		m.Ack()
		ev, err := events.Decode(m.Body)
		require.NoError(t, err)
		if ev.Type != contract.EventDriftDetected {
			continue
		}
		assert.Equal(t, "hello/test", ev.Subject)
		assert.Equal(t, v1, ev.Data.Image)
		assert.Contains(t, ev.Data.Message, "instance "+victim.ID)
		break
	}

	repairs, runs := drift.RepairAll(ctx, e.client, rep, "integration-test")
	require.Len(t, repairs, 1)
	require.Empty(t, repairs[0].Error)
	assert.Equal(t, v1, repairs[0].Image)
	var fixed contract.RolloutResult
	require.NoError(t, runs[0].Get(ctx, &fixed))
	assert.Equal(t, v1, fixed.ImageID)
	assert.NotEqual(t, res.FleetID, fixed.FleetID, "a repair is a new fleet, never a patch")
	assert.Equal(t, 3, fixed.Instances)
	newFleet, err := e.deps.Provider.Describe(ctx, fixed.FleetID)
	require.NoError(t, err)
	require.Len(t, newFleet.Instances, 3)
	for _, i := range newFleet.Instances {
		assert.Equal(t, contract.InstanceRunning, i.State, i.ID)
	}
	assert.Equal(t, []string{fixed.FleetID}, e.fleetIDs(), "the drifted fleet was decommissioned")
	assert.Equal(t, "hello from v1", e.get())

	rep, err = drift.Check(ctx, e.client, in, "integration-test")
	require.NoError(t, err)
	assert.False(t, rep.Targets[0].Drifted(), "%+v", rep.Targets[0].Items)
	assert.Equal(t, fixed.FleetID, rep.Targets[0].LiveFleet)
}
