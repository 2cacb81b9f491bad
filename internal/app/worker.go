package app

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/crash"
)

// WorkerConfig is how imago-worker runs its two workers: one on the task queue
// imago (workflows and short activities), one on imago-bake (builds and image
// tests, a few at a time).
type WorkerConfig struct {
	// StopTimeout is how long, after SIGTERM, the imago worker lets running
	// activities finish before it cancels them (IMAGO_WORKER_STOP_TIMEOUT).
	// Keep it below the container's grace period (docker-compose.yml
	// stop_grace_period), or the container is killed first.
	StopTimeout time.Duration
	// BakeStopTimeout is the same for the imago-bake worker
	// (IMAGO_BAKE_STOP_TIMEOUT): longer, since a cancelled build starts over.
	BakeStopTimeout time.Duration
	// BakeConcurrency is how many builds and image tests the worker runs at once
	// (IMAGO_BAKE_CONCURRENCY); the others wait on the task queue.
	BakeConcurrency int
}

// Worker defaults. 25 s fits the usual 30 s grace period of a container; a
// worker that bakes needs a grace period longer than the bake stop timeout
// (the compose stack's stop_grace_period is 11m), or a lower one.
const (
	DefaultWorkerStopTimeout = 25 * time.Second
	DefaultBakeStopTimeout   = 10 * time.Minute
	DefaultBakeConcurrency   = 2
)

// stickyScheduleToStart is how long a workflow task sent to a worker's sticky
// queue waits for that worker before any worker may take it (and replay the
// history). A worker killed with kill -9 leaves its sticky queue looking alive
// to the server for 10 s, so the next workflow task of each of its workflows
// waits this long: it is part of the recovery after a crash (P5: ≤ 5 s from
// the kill to the rollout's next phase). 1.5 s, not the SDK's 5 s (P5 took
// 11.5 s with it, 5.0 s with 2 s): a live worker that leaves a task
// unanswered that long is loaded, and a replay costs it a few milliseconds of
// CPU per workflow; at 1 s a loaded worker lost its workflows to others too
// often (docs/performance.md). imago-worker also releases every running
// workflow's sticky queue when it starts (ReleaseStickyQueues), so after a
// crash and a restart only a task already waiting on the dead queue waits this.
const stickyScheduleToStart = 1500 * time.Millisecond

// maxHeartbeatThrottle is the longest the worker holds an activity's
// heartbeat back (the SDK's default: 80 % of the heartbeat timeout, which
// leaves a 2 s timeout 400 ms of slack under load). Activities heartbeat on a
// ticker every quarter of their timeout, at most 10 s (activities/heartbeat.go),
// so the server hears from each one that often: one call per 500 ms for
// WaitHealthy's 2 s, one per 5 s for Provision's 20 s.
const maxHeartbeatThrottle = 500 * time.Millisecond

// workflowTaskPollers and activityTaskPollers are the worker's long polls
// on task queue imago (the SDK's default: 2 each, split between the sticky and
// the shared queue for workflow tasks). A poll takes one task, so with 2 a
// campaign's 50 rollouts at once waited 13 s of their 15 s for their workflow
// tasks to be polled, the worker at 9 % of a core (P8, docs/performance.md).
const (
	workflowTaskPollers = 8
	activityTaskPollers = 8
)

// DefaultWorkerConfig is the configuration with every default.
func DefaultWorkerConfig() WorkerConfig {
	return WorkerConfig{StopTimeout: DefaultWorkerStopTimeout, BakeStopTimeout: DefaultBakeStopTimeout, BakeConcurrency: DefaultBakeConcurrency}
}

// WorkerConfigFromEnv reads IMAGO_WORKER_STOP_TIMEOUT, IMAGO_BAKE_STOP_TIMEOUT
// (durations such as 25s or 10m) and IMAGO_BAKE_CONCURRENCY (a count), with
// defaults; a malformed value is an error that names the variable.
func WorkerConfigFromEnv() (WorkerConfig, error) {
	c := DefaultWorkerConfig()
	var errs []error
	duration := func(name string, into *time.Duration) {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 25s or 10m", name, v))
			return
		}
		*into = d
	}
	duration("IMAGO_WORKER_STOP_TIMEOUT", &c.StopTimeout)
	duration("IMAGO_BAKE_STOP_TIMEOUT", &c.BakeStopTimeout)
	if v := os.Getenv("IMAGO_BAKE_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("IMAGO_BAKE_CONCURRENCY=%q: want a number of bakes, at least 1", v))
		} else {
			c.BakeConcurrency = n
		}
	}
	return c, errors.Join(errs...)
}

// RegisterBake registers the activities the imago-bake worker runs. All of
// them: which ones run there is the Bake workflow's choice.
func RegisterBake(r worker.Registry, acts *activities.Activities) {
	r.RegisterActivity(acts)
}

// Workers are imago's two workers in one process; Start and Stop both.
type Workers struct {
	Main, Bake worker.Worker
}

// NewWorker makes imago's workers with the default WorkerConfig (see NewWorkers).
func NewWorker(c client.Client, acts *activities.Activities) *Workers {
	return NewWorkers(c, acts, DefaultWorkerConfig())
}

// NewWorkers makes imago's workers: workflows and activities on the task
// queue imago, builds and image tests on imago-bake. In a binary built with the
// imago_crash tag (the crash suite's) and IMAGO_CRASH_AT set both carry the crash
// test hook (see internal/crash); a malformed value panics. Other builds have no
// hook.
func NewWorkers(c client.Client, acts *activities.Activities, wc WorkerConfig) *Workers {
	var hooks []interceptor.WorkerInterceptor
	// A test hook (the crash suite): kill -9 this process at one activity boundary.
	hook, err := crash.FromEnv()
	if err != nil {
		panic(err)
	}
	if hook != nil {
		hooks = append(hooks, hook)
	}
	if acts.Temporal == nil {
		acts.Temporal = c // a bake starts the pipelines built on its channel
	}
	mainOpts := MainWorkerOptions(wc)
	mainOpts.Interceptors = hooks
	main := worker.New(c, contract.TaskQueue, mainOpts)
	Register(main, acts)
	bake := worker.New(c, contract.BakeTaskQueue, worker.Options{
		DisableWorkflowWorker:              true,
		MaxConcurrentActivityExecutionSize: max(wc.BakeConcurrency, 1),
		WorkerStopTimeout:                  wc.BakeStopTimeout,
		Interceptors:                       hooks,
	})
	RegisterBake(bake, acts)
	return &Workers{Main: main, Bake: bake}
}

// MainWorkerOptions are the options of the worker on the task queue imago
// (workflows and short activities), without the crash suite's interceptor.
// The benchmarks (internal/bench, P1b) run their worker with them too, so
// what they time is what imago-worker runs.
func MainWorkerOptions(wc WorkerConfig) worker.Options {
	return worker.Options{
		MaxConcurrentWorkflowTaskPollers: workflowTaskPollers,
		MaxConcurrentActivityTaskPollers: activityTaskPollers,
		StickyScheduleToStartTimeout:     stickyScheduleToStart,
		MaxHeartbeatThrottleInterval:     maxHeartbeatThrottle,
		WorkerStopTimeout:                wc.StopTimeout,
	}
}

// Start starts both workers; when the second fails to start, the first is stopped.
func (w *Workers) Start() error {
	if err := w.Main.Start(); err != nil {
		return fmt.Errorf("worker on %s: %w", contract.TaskQueue, err)
	}
	if err := w.Bake.Start(); err != nil {
		w.Main.Stop()
		return fmt.Errorf("worker on %s: %w", contract.BakeTaskQueue, err)
	}
	return nil
}

// Stop stops both workers at once: each stops polling and lets its running
// activities finish for its stop timeout, then cancels them.
func (w *Workers) Stop() {
	var wg sync.WaitGroup
	wg.Go(w.Main.Stop)
	wg.Go(w.Bake.Stop)
	wg.Wait()
}
