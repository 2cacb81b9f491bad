package app

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"
)

// releaseConcurrency is how many ResetStickyTaskQueue calls ReleaseStickyQueues
// has in flight at once.
const releaseConcurrency = 8

// ReleaseStickyQueues sends the next workflow task of every running workflow
// on taskQueue to that shared queue, instead of to the sticky queue of the
// worker that ran the workflow last (ResetStickyTaskQueue on each), and
// returns how many it released. imago-worker calls it once it polls.
//
// Why: a worker killed with kill -9 cannot say it is gone, and the server
// takes its sticky queue for alive for 10 s after its last poll, so each of
// its workflows' next workflow task waits out the sticky schedule-to-start
// timeout (1.5 s) before any other worker may take it (P5,
// docs/performance.md). A worker that starts after a crash releases them at
// once, and its workflows move on as soon as their activities complete.
//
// The cost: a workflow that a live worker still runs has its next task on the
// shared queue too, and whichever worker takes it replays its history (a few
// milliseconds of CPU for a rollout) once, after which it is sticky again.
// A task already waiting on a sticky queue stays there until it is taken or
// times out. A workflow that ended meanwhile is skipped.
func ReleaseStickyQueues(ctx context.Context, c client.Client, namespace, taskQueue string) (int, error) {
	q := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", taskQueue)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(releaseConcurrency)
	var n atomic.Int64
	var listErr error
	var token []byte
	for {
		resp, err := c.ListWorkflow(gctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 1000, NextPageToken: token})
		if err != nil {
			listErr = fmt.Errorf("list running workflows on task queue %s: %w", taskQueue, err)
			break
		}
		for _, info := range resp.Executions {
			ex := info.GetExecution()
			g.Go(func() error {
				_, err := c.WorkflowService().ResetStickyTaskQueue(gctx, &workflowservice.ResetStickyTaskQueueRequest{Namespace: namespace, Execution: ex})
				var notFound *serviceerror.NotFound
				switch {
				case errors.As(err, &notFound):
					return nil // ended since the list
				case err != nil:
					return fmt.Errorf("release the sticky queue of workflow %s: %w", ex.GetWorkflowId(), err)
				}
				n.Add(1)
				return nil
			})
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	err := g.Wait()
	return int(n.Load()), errors.Join(listErr, err)
}
