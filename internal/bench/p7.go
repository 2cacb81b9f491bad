package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/prometheus/procfs"
)

func init() {
	Register(Scenario{ID: "P7", Name: "concurrency: 50 rollouts at once on one imago-worker", Run: runP7})
}

const (
	p7Rollouts = 50
	p7Size     = 10    // sim instances per rollout
	p7Waves    = "50%" // rolling, two waves
)

func runP7(ctx context.Context, env *Env) ([]Figure, error) {
	im, w, err := startSimWorker(ctx, env, "p7")
	if err != nil {
		return nil, err
	}
	defer im.Close()
	type service struct {
		name, listen string
		v1, v2       string
	}
	svcs := make([]service, p7Rollouts)
	for i := range svcs {
		s := &svcs[i]
		s.name = fmt.Sprintf("conc%02d", i+1)
		if s.listen, err = routerAddr(); err != nil {
			return nil, err
		}
		if s.v1, s.v2, err = im.SimImages(ctx, s.name); err != nil {
			return nil, err
		}
	}
	mk := func(s service, n int) (spec.Rollout, string, error) {
		img, version := s.v1, "v1"
		if n%2 == 1 {
			img, version = s.v2, "v2"
		}
		r, err := im.SimSpec(s.name, s.listen, img, version, p7Size)
		r.Strategy.Waves = p7Waves
		return r, version, err
	}
	var (
		runsMu sync.Mutex
		runs   = map[int][]Execution{} // n → the runs of round n
	)
	one := func(s service, n, round int) error {
		r, version, err := mk(s, n)
		if err != nil {
			return err
		}
		run, err := im.StartRollout(ctx, r)
		if err != nil {
			return fmt.Errorf("rollout %d of %s: %w", n, s.name, err)
		}
		runsMu.Lock()
		runs[round] = append(runs[round], Execution{ID: run.GetID(), RunID: run.GetRunID()})
		runsMu.Unlock()
		var res contract.RolloutResult
		if err := run.Get(ctx, &res); err != nil {
			return fmt.Errorf("rollout %d of %s: %s", n, s.name, rollouts.Reason(err))
		}
		if res.Instances != p7Size {
			return fmt.Errorf("rollout of %s ended with %d instances", s.name, res.Instances)
		}
		if body, err := getBody(s.listen); err != nil || body != version {
			return fmt.Errorf("after rolling %s to %s its router answered %q, %v", s.name, version, body, err)
		}
		return nil
	}
	all := func(n int) (time.Duration, error) {
		start := time.Now()
		errs := make([]error, len(svcs))
		var wg sync.WaitGroup
		for i, s := range svcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = one(s, n, n)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		for _, err := range errs {
			if err != nil {
				return took, err
			}
		}
		return took, nil
	}
	// Warm up: every service gets its first fleet and router (not measured).
	if _, err := all(0); err != nil {
		return nil, fmt.Errorf("first rollouts: %w", err)
	}
	// One rollout at a time, on the same worker.
	var singles []time.Duration
	for n := 1; n <= env.Runs; n++ {
		start := time.Now()
		if err := one(svcs[0], n, -n); err != nil {
			return nil, err
		}
		singles = append(singles, time.Since(start))
	}
	// svcs[0] ran Runs more rollouts than the others: back to v1 like them.
	if env.Runs%2 == 1 {
		if err := one(svcs[0], 0, 0); err != nil {
			return nil, err
		}
	}
	var totals []time.Duration
	for n := 1; n <= env.Runs; n++ {
		took, err := all(n)
		if err != nil {
			return nil, err
		}
		totals = append(totals, took)
		env.logf("P7: %d rollouts at once took %s", len(svcs), took.Round(time.Millisecond))
	}
	// Where the time went: the histories of the first single rollout (n=1 ran
	// alone first) and of the last round of 50.
	for _, n := range []int{-1, env.Runs} {
		if b, err := NewBreakdown(ctx, im.Client, runs[n]); err == nil {
			env.logf("P7: where the time of the %d rollout(s) of round %d went:\n%s", len(runs[n]), n, b)
		}
	}
	hwm, err := vmHWM(w.Cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	tOne, tAll := Median(singles), Median(totals)
	ratio := float64(tAll) / float64(tOne)
	mb := float64(hwm) / 1024
	what := fmt.Sprintf("rolling, %d sim instances, waves %s", p7Size, p7Waves)
	return []Figure{
		{Name: fmt.Sprintf("one rollout (%s; median of %d)", what, len(singles)), Value: Dur(tOne), Goal: "-", Met: true},
		{Name: fmt.Sprintf("%d rollouts at once, total (median of %d)", len(svcs), len(totals)), Value: Dur(tAll), Goal: "-", Met: true},
		{Name: fmt.Sprintf("%d at once ÷ one rollout", len(svcs)), Value: fmt.Sprintf("%.2f", ratio), Goal: "≤ 3", Met: ratio <= 3},
		{Name: "imago-worker peak RSS (VmHWM)", Value: fmt.Sprintf("%.0f MB", mb), Goal: "≤ 250 MB", Met: mb <= 250},
	}, nil
}

// startSimWorker starts imago (StartImago) and one imago-worker process whose
// local driver starts its sim hosts from this binary: imago-worker does not
// serve as one, this binary's init calls local.RunSimIfChild. Close im when
// done; that also restores the environment.
func startSimWorker(ctx context.Context, env *Env, name string) (*Imago, *WorkerProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	restore := func() {}
	if os.Getenv(local.SimCommandEnv) == "" {
		os.Setenv(local.SimCommandEnv, exe)
		restore = func() { os.Unsetenv(local.SimCommandEnv) }
	}
	im, err := StartImago(ctx, env)
	if err != nil {
		restore()
		return nil, nil, err
	}
	im.cleanup = append(im.cleanup, restore)
	w, err := im.StartWorkerProcess(name)
	if err != nil {
		im.Close()
		return nil, nil, err
	}
	return im, w, nil
}

// vmHWM returns the peak resident set size of pid, in KiB.
func vmHWM(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	if st.VmHWM == 0 {
		return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return int64(st.VmHWM / 1024), nil // procfs gives bytes
}
