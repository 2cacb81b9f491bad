package activities

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/pubsub"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/events"
)

func TestPublishEventSendsTheWorkflowsEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const url = "mem://activities-events-test"
	pub, err := events.Open(ctx, url)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := pubsub.OpenSubscription(ctx, url)
	require.NoError(t, err)
	defer sub.Shutdown(ctx)

	a := &Activities{Events: pub}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	ev := contract.NewEvent(contract.EventRolloutFinished, "default", "hello/prod", 9, time.Now(), contract.EventData{
		Service: "hello", Environment: "prod", Phase: "succeeded", Outcome: "succeeded", WorkflowID: "rollout/prod/hello", RunID: "run-1",
	})
	_, err = env.ExecuteLocalActivity(a.PublishEvent, ev)
	require.NoError(t, err)

	m, err := sub.Receive(ctx)
	require.NoError(t, err)
	m.Ack()
	got, err := events.Decode(m.Body)
	require.NoError(t, err)
	require.Equal(t, "run-1/9", got.ID, "the ID the workflow gave it, so a retry is recognisable")
	require.Equal(t, "succeeded", got.Data.Outcome)
	require.Equal(t, "imago/default/rollout/prod/hello", got.Source)
}

func TestPublishEventWithoutATopicDoesNothing(t *testing.T) {
	a := &Activities{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err := env.ExecuteLocalActivity(a.PublishEvent, contract.Event{})
	require.NoError(t, err, "no Events publisher: nothing to publish, nothing to fail")
}
