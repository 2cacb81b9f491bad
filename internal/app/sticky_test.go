package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/devserver"
)

// stickyTestWorkflow waits for two signals.
func stickyTestWorkflow(ctx workflow.Context) error {
	ch := workflow.GetSignalChannel(ctx, "go")
	for range 2 {
		ch.Receive(ctx, nil)
	}
	return nil
}

// After ReleaseStickyQueues the next workflow task of a running workflow is
// scheduled on the shared task queue, not on the sticky queue of the worker
// that ran it (which a killed worker leaves looking alive for 10 s).
func TestReleaseStickyQueuesSendsTheNextTaskToTheSharedQueue(t *testing.T) {
	const queue = "sticky-test"
	ts := temporaltest.NewServer(temporaltest.WithT(t),
		temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(devserver.DynamicConfig())))
	ts.NewWorker(queue, func(r worker.Registry) { r.RegisterWorkflow(stickyTestWorkflow) })
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "sticky", TaskQueue: queue}, stickyTestWorkflow)
	require.NoError(t, err)

	// The kind of queue the workflow task after the n-th signal was scheduled
	// on, once that task has completed.
	kindAfterSignal := func(n int) enumspb.TaskQueueKind {
		var kind enumspb.TaskQueueKind
		require.Eventually(t, func() bool {
			kind = enumspb.TASK_QUEUE_KIND_UNSPECIFIED
			signals, completed := 0, false
			it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return false
				}
				switch ev.GetEventType() {
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
					signals++
				case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
					if signals == n && kind == enumspb.TASK_QUEUE_KIND_UNSPECIFIED {
						kind = ev.GetWorkflowTaskScheduledEventAttributes().GetTaskQueue().GetKind()
					}
				case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
					completed = completed || (signals == n && kind != enumspb.TASK_QUEUE_KIND_UNSPECIFIED)
				}
			}
			return completed
		}, 30*time.Second, 20*time.Millisecond, "no workflow task completed after signal %d", n)
		return kind
	}

	require.Equal(t, enumspb.TASK_QUEUE_KIND_NORMAL, kindAfterSignal(0), "the first task is on the shared queue")
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "go", nil))
	require.Equal(t, enumspb.TASK_QUEUE_KIND_STICKY, kindAfterSignal(1), "without a release the worker's sticky queue gets the task")

	// The list reads visibility, which the server writes a moment after the start.
	require.Eventually(t, func() bool {
		n, err := ReleaseStickyQueues(ctx, c, ts.GetDefaultNamespace(), queue)
		return err == nil && n == 1
	}, 30*time.Second, 50*time.Millisecond, "the running workflow was never released")
	n, err := ReleaseStickyQueues(ctx, c, ts.GetDefaultNamespace(), "another-queue")
	require.NoError(t, err)
	require.Zero(t, n, "a workflow on another task queue was released")

	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "go", nil))
	require.Equal(t, enumspb.TASK_QUEUE_KIND_NORMAL, kindAfterSignal(2))
	require.NoError(t, run.Get(ctx, nil))
}
