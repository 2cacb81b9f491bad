package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/devserver"
)

// P1b: what one Temporal round trip costs. A workflow that runs one activity,
// timed from ExecuteWorkflow to its result, on the embedded server imago-worker
// starts (internal/devserver: SQLite file, default options) with a worker on the
// options imago-worker's main worker runs with (app.MainWorkerOptions) and a
// client dialled as imago-worker dials (app.Config.Dial: encrypted payloads).
// Beside it, in the same loop (alternating): a workflow with no activity (the
// workflow task alone), and the one-activity workflow on temporaltest's
// in-memory server, the server P1 runs on.
func init() {
	Register(Scenario{ID: "P1b", Name: "one round trip", Run: runP1b})
}

const (
	p1bTaskQueue = "imago-bench-p1b"
	p1bOne       = "P1bOneActivity"
	p1bNone      = "P1bNoActivity"
)

func p1bActivity(context.Context) (string, error) { return "ok", nil }

func p1bOneActivity(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, p1bActivity).Get(ctx, &out)
	return out, err
}

func p1bNoActivity(workflow.Context) (string, error) { return "ok", nil }

func p1bRegister(r worker.Registry) {
	r.RegisterWorkflowWithOptions(p1bOneActivity, workflow.RegisterOptions{Name: p1bOne})
	r.RegisterWorkflowWithOptions(p1bNoActivity, workflow.RegisterOptions{Name: p1bNone})
	r.RegisterActivityWithOptions(p1bActivity, activity.RegisterOptions{Name: "P1bActivity"})
}

func runP1b(ctx context.Context, env *Env) ([]Figure, error) {
	home, clean, err := env.TempHome("p1b")
	if err != nil {
		return nil, err
	}
	defer clean()
	logger := QuietLogger()
	runs := 4 * env.Runs

	// Phase 1: the embedded server alone, the one- and no-activity workflows
	// alternating.
	embedded, err := p1bEmbedded(ctx, env, home, logger, runs)
	if err != nil {
		return nil, err
	}
	// Phase 2: temporaltest's in-memory server, as P1 starts it and with the
	// embedded server's dynamic config, alternating.
	tests, err := p1bTestServers(ctx, env, home, logger, runs)
	if err != nil {
		return nil, err
	}
	one := Median(embedded[0].got)
	return []Figure{
		{ID: "P1b", Name: fmt.Sprintf("one-activity workflow, start → result, embedded server, imago-worker's options (median of %d)", runs),
			Value: Dur(one) + " (p90 " + Dur(Percentile(embedded[0].got, 90)) + ")", Goal: "≤ 20 ms", Met: one <= 20*time.Millisecond},
		{ID: "P1b", Name: fmt.Sprintf("CPU (user + sys) of server + worker per one-activity workflow, same runs (median of %d)", runs),
			Value: Dur(Median(embedded[0].cpu)), Goal: "-", Met: true},
		{ID: "P1b", Name: fmt.Sprintf("workflow with no activity, same server (median of %d)", runs),
			Value: Dur(Median(embedded[1].got)), Goal: "-", Met: true},
		{ID: "P1b", Name: fmt.Sprintf("one-activity workflow, temporaltest in-memory as P1 runs it (median of %d)", runs),
			Value: Dur(Median(tests[0].got)), Goal: "-", Met: true},
		{ID: "P1b", Name: fmt.Sprintf("the same on temporaltest with devserver.DynamicConfig() (median of %d)", runs),
			Value: Dur(Median(tests[1].got)), Goal: "-", Met: true},
	}, nil
}

func p1bEmbedded(ctx context.Context, env *Env, home string, logger *slog.Logger, runs int) ([]*p1bSeries, error) {
	srv, err := devserver.Start(ctx, devserver.Config{DBPath: filepath.Join(home, "temporal.db"), Listen: "127.0.0.1:0", Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("start embedded server: %w", err)
	}
	defer srv.Stop()
	cfg := app.Config{Home: home, TemporalAddress: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: logger}
	c, err := cfg.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	w := worker.New(c, p1bTaskQueue, app.MainWorkerOptions(app.DefaultWorkerConfig()))
	p1bRegister(w)
	if err := w.Start(); err != nil {
		return nil, err
	}
	defer w.Stop()
	all := []*p1bSeries{{c: c, wf: p1bOne}, {c: c, wf: p1bNone}}
	err = p1bMeasure(ctx, all, runs, func(i int) {
		env.logf("P1b run %d: embedded server, one activity %s (CPU %s), no activity %s",
			i+1, Dur(all[0].got[i]), Dur(all[0].cpu[i]), Dur(all[1].got[i]))
	})
	return all, err
}

func p1bTestServers(ctx context.Context, env *Env, home string, logger *slog.Logger, runs int) ([]*p1bSeries, error) {
	plain, err := p1bTestServer(ctx, home, logger)
	if err != nil {
		return nil, err
	}
	defer plain.close()
	tuned, err := p1bTestServer(ctx, home, logger, temporal.WithDynamicConfigClient(devserver.DynamicConfig()))
	if err != nil {
		return nil, err
	}
	defer tuned.close()
	all := []*p1bSeries{{c: plain.c, wf: p1bOne}, {c: tuned.c, wf: p1bOne}}
	err = p1bMeasure(ctx, all, runs, func(i int) {
		env.logf("P1b run %d: temporaltest, one activity %s; with the embedded server's dynamic config %s",
			i+1, Dur(all[0].got[i]), Dur(all[1].got[i]))
	})
	return all, err
}

// p1bSeries is one kind of run: a workflow on a client, and what each run took.
type p1bSeries struct {
	c        client.Client
	wf       string
	got, cpu []time.Duration // wall time, this process's CPU time
}

// p1bMeasure warms up, then runs each series runs times, the series in turn
// (the order rotating from run to run), calling logRun after each round.
func p1bMeasure(ctx context.Context, all []*p1bSeries, runs int, logRun func(i int)) error {
	n := 0
	run := func(s *p1bSeries) (wall, cpu time.Duration, err error) {
		n++
		cpu0 := processCPU()
		start := time.Now()
		r, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("p1b-%d-%d", start.UnixNano(), n), TaskQueue: p1bTaskQueue}, s.wf)
		if err != nil {
			return 0, 0, err
		}
		var out string
		if err := r.Get(ctx, &out); err != nil {
			return 0, 0, err
		}
		wall, cpu = time.Since(start), processCPU()-cpu0
		if out != "ok" {
			return 0, 0, fmt.Errorf("%s answered %q, want ok", s.wf, out)
		}
		return wall, cpu, nil
	}
	// Warm up: the first runs create the task queues and fill the caches.
	for range 3 {
		for _, s := range all {
			if _, _, err := run(s); err != nil {
				return fmt.Errorf("warm-up %s: %w", s.wf, err)
			}
		}
	}
	for i := range runs {
		for j := range all {
			s := all[(i+j)%len(all)]
			wall, cpu, err := run(s)
			if err != nil {
				return fmt.Errorf("run %d of %s: %w", i+1, s.wf, err)
			}
			s.got, s.cpu = append(s.got, wall), append(s.cpu, cpu)
		}
		logRun(i)
	}
	return nil
}

// processCPU is the CPU time (user + system) this process has used. Unlike wall
// time it barely depends on what else the machine runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// p1bServer is a temporaltest server with a client dialled as imago-worker
// dials and a worker on imago-worker's options.
type p1bServer struct {
	ts *temporaltest.TestServer
	c  client.Client
	w  worker.Worker
}

func p1bTestServer(ctx context.Context, home string, logger *slog.Logger, opts ...temporal.ServerOption) (_ *p1bServer, err error) {
	s := &p1bServer{}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("start Temporal test server: %v", p)
		}
		if err != nil {
			s.close()
		}
	}()
	s.ts = temporaltest.NewServer(temporaltest.WithBaseClientOptions(client.Options{Logger: sdklog.NewStructuredLogger(logger)}),
		temporaltest.WithBaseServerOptions(opts...))
	cfg := app.Config{Home: home, TemporalAddress: s.ts.GetFrontendHostPort(), Namespace: s.ts.GetDefaultNamespace(), Logger: logger}
	if s.c, err = cfg.Dial(ctx); err != nil {
		return s, err
	}
	s.w = worker.New(s.c, p1bTaskQueue, app.MainWorkerOptions(app.DefaultWorkerConfig()))
	p1bRegister(s.w)
	if err := s.w.Start(); err != nil {
		s.w = nil
		return s, err
	}
	return s, nil
}

func (s *p1bServer) close() {
	if s.w != nil {
		s.w.Stop()
	}
	if s.c != nil {
		s.c.Close()
	}
	if s.ts != nil {
		defer func() { recover() }() // Stop logs through a nil testing.T on error
		s.ts.Stop()
	}
}
