package app

import (
	"context"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// Deploying imago does not cut running work: SIGTERM stops the worker's
// polling, but the activity in flight (a health wait of a fleet that needs 4 s
// to warm up) finishes in that worker and reports its result, in its first
// attempt; the next worker carries the rollout on from there.
func TestSIGTERMLetsTheRunningActivityFinish(t *testing.T) {
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), "imago-worker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/imago/imago/worker").CombinedOutput()
	require.NoError(t, err, "%s", out)
	v2 := e.importImage("v2slow")

	first := e.startWorkerProcess(bin, "first")
	ctx := context.Background()
	run, err := rollouts.Start(ctx, e.client, e.spec(v2), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	e.waitPhase(contract.PhaseWaitingHealthy)
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGTERM))
	first.waitExit(2 * time.Minute)
	assert.True(t, first.cmd.ProcessState.Success(), "the worker exits cleanly after SIGTERM: %s", first.cmd.ProcessState)

	e.startWorkerProcess(bin, "second")
	var res contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res))
	assert.Equal(t, "hello from v2", e.get())

	started, completed := activityEvents(e.history(run.GetID(), run.GetRunID()), "WaitHealthy")
	require.Len(t, started, 1)
	require.Len(t, completed, 1, "WaitHealthy completed")
	assert.EqualValues(t, 1, started[0].GetActivityTaskStartedEventAttributes().GetAttempt(), "the health wait was not cut off and retried")
	assert.True(t, strings.HasPrefix(completed[0].GetActivityTaskCompletedEventAttributes().GetIdentity(), strconv.Itoa(first.cmd.Process.Pid)+"@"),
		"the worker that got SIGTERM finished it (identity %q)", completed[0].GetActivityTaskCompletedEventAttributes().GetIdentity())
}

// Bakes build and test on the task queue imago-bake, which a worker serves
// IMAGO_BAKE_CONCURRENCY at a time: two bakes started together with a
// concurrency of 1 never build or test at the same time.
func TestBakesRunOnTheirOwnQueueAtTheirConcurrency(t *testing.T) {
	e := newEnv(t)
	w := NewWorkers(e.client, e.deps.Activities, WorkerConfig{StopTimeout: time.Second, BakeStopTimeout: time.Second, BakeConcurrency: 1})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type started struct{ id, runID string }
	var runs []started
	for _, channel := range []string{"blue", "green"} {
		b := helloBake(t)
		b.Channel = channel
		b.Variables = map[string]string{"VERSION": channel}
		b.Test.Checks = []contract.Check{{Path: "/", ExpectStatus: 200, ExpectBody: "hello from " + channel}}
		run, err := bakes.Start(ctx, e.client, b, "integration-test")
		require.NoError(t, err)
		runs = append(runs, started{run.GetID(), run.GetRunID()})
	}
	type span struct {
		what       string
		start, end time.Time
	}
	var spans []span
	for _, r := range runs {
		var res contract.BakeResult
		require.NoError(t, e.client.GetWorkflow(ctx, r.id, r.runID).Get(ctx, &res), "bake %s", r.id)
		events := e.history(r.id, r.runID)
		for _, name := range []string{"BakeBuild", "TestImage"} {
			scheduled := scheduledOn(events, name)
			require.Len(t, scheduled, 1, "%s of %s", name, r.id)
			assert.Equal(t, contract.BakeTaskQueue, scheduled[0], "%s of %s runs on the bake queue", name, r.id)
			st, done := activityEvents(events, name)
			require.Len(t, st, 1)
			require.Len(t, done, 1)
			spans = append(spans, span{r.id + " " + name, st[0].GetEventTime().AsTime(), done[0].GetEventTime().AsTime()})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	for i := 1; i < len(spans); i++ {
		assert.False(t, spans[i].start.Before(spans[i-1].end), "%s started at %s, before %s ended at %s",
			spans[i].what, spans[i].start.Format(time.StampMicro), spans[i-1].what, spans[i-1].end.Format(time.StampMicro))
	}
}

// activityEvents returns the started and completed events of the activities
// of one type in a history.
func activityEvents(events []*historypb.HistoryEvent, activityType string) (started, completed []*historypb.HistoryEvent) {
	ours := map[int64]bool{}
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			ours[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == activityType
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if ours[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] {
				started = append(started, ev)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if ours[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] {
				completed = append(completed, ev)
			}
		}
	}
	return started, completed
}

// scheduledOn returns the task queue of each activity of one type a history scheduled.
func scheduledOn(events []*historypb.HistoryEvent, activityType string) []string {
	var out []string
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activityType {
			out = append(out, a.GetTaskQueue().GetName())
		}
	}
	return out
}

// waitExit waits up to d for the worker process to exit by itself, then kills it.
func (w *workerProcess) waitExit(d time.Duration) {
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(d):
		w.t.Errorf("worker did not exit within %s of SIGTERM", d)
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
