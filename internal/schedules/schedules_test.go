package schedules

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

func testClient(t *testing.T) client.Client {
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	_, err := c.OperatorService().AddSearchAttributes(context.Background(), &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)
	return c
}

func options(name string) CreateOptions {
	b := spec.Bake{Bake: contract.Bake{Service: "hello", Builder: contract.BuilderLocal, Files: []string{"main.go"}, Entrypoint: []string{"./hello"}, Channel: "latest",
		Base: &contract.ImageRef{Service: "os", Channel: "stable"}}}
	return CreateOptions{
		Name: name, Pipeline: spec.Pipeline{Pipeline: contract.Pipeline{Name: name, BakeFile: "bake.yaml", Bake: &b.Bake, OnBaseChange: true}},
		Cron: "0 3 * * *", Timezone: "Europe/Berlin", Overlap: "allow-all", StartedBy: "test", Paused: true,
	}
}

// The schedule API round trip against a real in-process Temporal server (no
// worker: the runs it starts stay pending, which is all describe needs).
func TestScheduleRoundTrip(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()

	require.NoError(t, Create(ctx, c, options("nightly")))
	var exists *ExistsError
	require.ErrorAs(t, Create(ctx, c, options("nightly")), &exists)

	s, err := Describe(ctx, c, "nightly")
	require.NoError(t, err)
	assert.Equal(t, "hello", s.Service)
	assert.Equal(t, "cron 0 3 * * * (Europe/Berlin)", s.Spec)
	assert.Equal(t, "allow-all", s.Overlap)
	assert.Equal(t, "os/stable", s.WatchBase)
	assert.True(t, s.Paused)

	require.NoError(t, Unpause(ctx, c, "nightly", "freeze over"))
	s, err = Describe(ctx, c, "nightly")
	require.NoError(t, err)
	assert.False(t, s.Paused)
	assert.Equal(t, "freeze over", s.Note)
	require.NotEmpty(t, s.NextRuns)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	next := s.NextRuns[0].In(berlin)
	assert.Equal(t, 3, next.Hour(), "the next run is at 03:00 in the schedule's zone: %s", next)
	assert.True(t, next.After(time.Now()))

	require.NoError(t, Pause(ctx, c, "nightly", "change freeze"))
	s, err = Describe(ctx, c, "nightly")
	require.NoError(t, err)
	assert.True(t, s.Paused)
	assert.Equal(t, "change freeze", s.Note)

	// trigger runs now, even while paused; backfill runs the missed ticks. One
	// after the other: the scheduler may take a trigger and a backfill that
	// arrive together as one change.
	waitRecent := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if s, err = Describe(ctx, c, "nightly"); err == nil && len(s.Recent) >= n {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	require.NoError(t, Trigger(ctx, c, "nightly"))
	waitRecent(1)
	from := time.Now().Add(-72 * time.Hour)
	require.NoError(t, Backfill(ctx, c, "nightly", from, time.Now()))
	require.Error(t, Backfill(ctx, c, "nightly", time.Now(), from), "TO before FROM is refused")
	waitRecent(4)
	require.Len(t, s.Recent, 4, "the triggered run and three backfilled nights: %+v", s.Recent)
	for _, a := range s.Recent {
		assert.Regexp(t, `^pipeline/nightly-`, a.WorkflowID)
		assert.Equal(t, "Running", a.Status, "no worker runs them in this test")
	}

	list, err := List(ctx, c)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "nightly", list[0].Name)
	assert.Equal(t, "hello", list[0].Service)

	require.NoError(t, Delete(ctx, c, "nightly"))
	_, err = Describe(ctx, c, "nightly")
	var nf *NotFoundError
	require.True(t, errors.As(err, &nf), "%v", err)
	assert.Contains(t, err.Error(), "imago schedule list")
	require.ErrorAs(t, Pause(ctx, c, "nightly", "x"), &nf)
}

func TestCreateRefusesBadOptionsAndCreatesNothing(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	o := options("Bad Name")
	o.Cron, o.Every, o.Timezone, o.Overlap = "every day", 0, "Mars/Olympus", "sometimes"
	err := Create(ctx, c, o)
	require.Error(t, err)
	require.True(t, spec.IsInvalid(err))
	for _, want := range []string{"name:", "cron: \"every day\" is not a cron expression", "timezone: \"Mars/Olympus\"", "overlap: \"sometimes\": want one of"} {
		assert.Contains(t, err.Error(), want)
	}
	o = options("both")
	o.Every = time.Hour
	assert.ErrorContains(t, Create(ctx, c, o), "set --cron or --every, not both")
	o = options("nobake")
	o.Pipeline.Bake = nil
	assert.ErrorContains(t, Create(ctx, c, o), "give it a bake spec")
	list, err := List(ctx, c)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// The image lifecycle sweep's schedule is created once, listed among imago's
// schedules, and says in its note whether it applies.
func TestCreateLifecycleSchedule(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	require.NoError(t, CreateLifecycle(ctx, c, 24*time.Hour, contract.LifecycleInput{Apply: true}))
	var exists *ExistsError
	require.ErrorAs(t, CreateLifecycle(ctx, c, time.Hour, contract.LifecycleInput{}), &exists)
	var fields contract.FieldErrors
	require.ErrorAs(t, CreateLifecycle(ctx, c, time.Second, contract.LifecycleInput{}), &fields)
	list, err := List(ctx, c)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, LifecycleScheduleID, list[0].Name)
	assert.Equal(t, "image lifecycle: apply=true", list[0].Note)
	assert.Equal(t, "every 24h0m0s", list[0].Spec)
}
