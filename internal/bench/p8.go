package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// P8: campaign throughput. Campaign workflows do not exist yet, so this is the
// campaign's load as its own scenario: 200 services × 2 environments, each a
// rollout of a small sim fleet behind its own router, all started at once on
// one imago-worker process, timed from the first start to the last result.
func init() {
	Register(Scenario{ID: "P8", Name: "campaign: 200 services × 2 environments on one imago-worker", Run: runP8})
}

const (
	p8Services = 200
	p8Size     = 2 // sim instances per fleet
	p8Goal     = 60 * time.Second
	p8RSSGoal  = 300 // MB, imago-worker's peak RSS
	// p8Budget bounds the run: rollouts not finished by then are counted, not
	// waited for (the first try on the shared 2-core machine had finished 128
	// of 400 after ~8 min, setup included; docs/performance.md).
	p8Budget = 3 * p8Goal
)

var p8Environments = []string{"staging", "production"}

func runP8(ctx context.Context, env *Env) ([]Figure, error) {
	im, w, err := startSimWorker(ctx, env, "p8")
	if err != nil {
		return nil, err
	}
	defer im.Close()
	var specs []spec.Rollout
	for i := range p8Services {
		svc := fmt.Sprintf("svc%03d", i+1)
		v1, _, err := im.SimImages(ctx, svc)
		if err != nil {
			return nil, err
		}
		for _, e := range p8Environments {
			listen, err := routerAddr()
			if err != nil {
				return nil, err
			}
			r, err := im.SimSpec(svc, listen, v1, "v1", p8Size)
			if err != nil {
				return nil, err
			}
			r.Environment = e
			r.Strategy.Waves = "100%"
			specs = append(specs, r)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, p8Budget)
	defer cancel()
	start := time.Now()
	errs := make([]error, len(specs))
	late := make([]bool, len(specs)) // not finished within p8Budget
	runs := make([]Execution, len(specs))
	outOfBudget := func(err error) bool { return rctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) }
	var wg sync.WaitGroup
	for i, r := range specs {
		wg.Go(func() {
			run, err := im.StartRollout(rctx, r)
			if err != nil && outOfBudget(err) {
				late[i] = true
				return
			}
			if err != nil {
				errs[i] = err
				return
			}
			runs[i] = Execution{ID: run.GetID(), RunID: run.GetRunID()}
			var res contract.RolloutResult
			if err := run.Get(rctx, &res); err != nil && outOfBudget(err) {
				late[i] = true
			} else if err != nil {
				errs[i] = fmt.Errorf("%s/%s: %s", r.Environment, r.Service, rollouts.Reason(err))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	failed, finished := 0, 0
	var first error
	for i, err := range errs {
		switch {
		case late[i]:
			// out of budget: not finished, not failed
		case err == nil:
			finished++
		default:
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d rollouts failed, first: %w", failed, len(specs), first)
	}
	var done []Execution
	for i, r := range runs {
		if errs[i] == nil && !late[i] {
			done = append(done, r)
		}
	}
	if b, err := NewBreakdown(ctx, im.Client, done); err == nil {
		env.logf("P8: where the time of the %d rollouts went:\n%s", len(runs), b)
	}
	hwm, err := vmHWM(w.Cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	mb := float64(hwm) / 1024
	n := len(specs)
	value := Dur(took)
	if finished < n {
		value = fmt.Sprintf("> %s (%d of %d finished)", Dur(took), finished, n)
	}
	return []Figure{
		{Name: fmt.Sprintf("%d rollouts (%d services × %d environments), total (1 run: %d sim instances, %d routers)",
			n, p8Services, len(p8Environments), n*p8Size, n), Value: value, Goal: "≤ " + Dur(p8Goal), Met: finished == n && took <= p8Goal},
		{Name: "imago-worker peak RSS (VmHWM)", Value: fmt.Sprintf("%.0f MB", mb), Goal: fmt.Sprintf("≤ %d MB", p8RSSGoal), Met: mb <= p8RSSGoal},
	}, nil
}
