package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
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

	// temporaltest's server, with the same client and worker options.
	var ts *temporaltest.TestServer
	if err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("start Temporal test server: %v", p)
			}
		}()
		ts = temporaltest.NewServer(temporaltest.WithBaseClientOptions(client.Options{Logger: sdklog.NewStructuredLogger(logger)}))
		return nil
	}(); err != nil {
		return nil, err
	}
	defer func() {
		defer func() { recover() }() // Stop logs through a nil testing.T on error
		ts.Stop()
	}()
	tcfg := app.Config{Home: home, TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), Logger: logger}
	tc, err := tcfg.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	tw := worker.New(tc, p1bTaskQueue, app.MainWorkerOptions(app.DefaultWorkerConfig()))
	p1bRegister(tw)
	if err := tw.Start(); err != nil {
		return nil, err
	}
	defer tw.Stop()

	n := 0
	run := func(c client.Client, wf string) (time.Duration, error) {
		n++
		start := time.Now()
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("p1b-%d-%d", start.UnixNano(), n), TaskQueue: p1bTaskQueue}, wf)
		if err != nil {
			return 0, err
		}
		var out string
		if err := r.Get(ctx, &out); err != nil {
			return 0, err
		}
		d := time.Since(start)
		if out != "ok" {
			return 0, fmt.Errorf("%s answered %q, want ok", wf, out)
		}
		return d, nil
	}
	type series struct {
		c   client.Client
		wf  string
		got []time.Duration
	}
	all := []*series{{c: c, wf: p1bOne}, {c: c, wf: p1bNone}, {c: tc, wf: p1bOne}}
	// Warm up: the first runs create the task queues and fill the caches.
	for range 3 {
		for _, s := range all {
			if _, err := run(s.c, s.wf); err != nil {
				return nil, fmt.Errorf("warm-up %s: %w", s.wf, err)
			}
		}
	}
	runs := 4 * env.Runs
	for i := range runs {
		for j := range all {
			s := all[(i+j)%len(all)] // rotate the order from run to run
			d, err := run(s.c, s.wf)
			if err != nil {
				return nil, fmt.Errorf("run %d of %s: %w", i+1, s.wf, err)
			}
			s.got = append(s.got, d)
		}
		env.logf("P1b run %d: one activity %s, no activity %s, one activity on temporaltest %s",
			i+1, Dur(all[0].got[i]), Dur(all[1].got[i]), Dur(all[2].got[i]))
	}
	if len(all[0].got) == 0 {
		return nil, errors.New("no runs")
	}
	one := Median(all[0].got)
	return []Figure{
		{ID: "P1b", Name: fmt.Sprintf("one-activity workflow, start → result, embedded server, imago-worker's options (median of %d)", runs),
			Value: Dur(one) + " (p90 " + Dur(Percentile(all[0].got, 90)) + ")", Goal: "≤ 20 ms", Met: one <= 20*time.Millisecond},
		{ID: "P1b", Name: fmt.Sprintf("workflow with no activity, same server (median of %d)", runs),
			Value: Dur(Median(all[1].got)), Goal: "-", Met: true},
		{ID: "P1b", Name: fmt.Sprintf("one-activity workflow on temporaltest's in-memory server, P1's (median of %d)", runs),
			Value: Dur(Median(all[2].got)), Goal: "-", Met: true},
	}, nil
}
