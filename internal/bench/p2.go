package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// P2: traffic keeps flowing through rollouts. 32 clients send GET / through the
// router in a closed loop (internal/loadgen) while ten rollouts run back to back:
// blue/green, canary (25% → 1s → 50% → 1s → 100%), and rollback to the previous
// image, in turn. Each rollout is one load phase: its requests, failed requests
// (transport errors and 5xx), p50 and p99 latency.
func init() {
	Register(Scenario{ID: "P2", Name: "load through rollouts", Run: runP2})
}

const p2Rollouts = 10

func runP2(ctx context.Context, env *Env) ([]Figure, error) {
	im, err := startWithWorker(ctx, env)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	images, err := helloImages(ctx, env, im, "v1", "v2")
	if err != nil {
		return nil, err
	}
	canary := func(r *spec.Rollout) {
		w25, w50, pause := 25, 50, contract.Duration(time.Second)
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{
			{SetWeight: &w25}, {Pause: &contract.Pause{Duration: &pause}}, {SetWeight: &w50}, {Pause: &contract.Pause{Duration: &pause}},
		}}
	}
	r, err := im.Spec(images[0])
	if err != nil {
		return nil, err
	}
	if _, err := im.Rollout(ctx, r); err != nil {
		return nil, fmt.Errorf("first rollout: %w", err)
	}
	live := 0

	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + im.Listen + "/", Clients: 32, MaxDuration: 10 * time.Minute})
	time.Sleep(time.Second)
	kinds := []string{"blue/green", "canary", "rollback"}
	var names []string
	var runErr error
	for i := 0; i < p2Rollouts; i++ {
		kind := kinds[i%len(kinds)]
		name := fmt.Sprintf("%d %s", i+1, kind)
		load.Mark(name)
		names = append(names, name)
		next := 1 - live
		start := time.Now()
		switch kind {
		case "rollback":
			rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			run, _, err := rollouts.RollbackToPrevious(rctx, im.Client, im.Deps.Catalog, r.Service, r.Environment, "imago-bench")
			if err == nil {
				err = run.Get(rctx, nil)
				if err != nil {
					err = fmt.Errorf("%s", rollouts.Reason(err))
				}
			}
			cancel()
			runErr = err
		default:
			var mut []func(*spec.Rollout)
			if kind == "canary" {
				mut = append(mut, canary)
			}
			s, err := im.Spec(images[next], mut...)
			if err == nil {
				_, err = im.Rollout(ctx, s)
			}
			runErr = err
		}
		if runErr != nil {
			runErr = fmt.Errorf("rollout %d (%s): %w", i+1, kind, runErr)
			break
		}
		live = next
		env.logf("P2 rollout %d (%s) took %s", i+1, kind, Dur(time.Since(start)))
		load.Mark(fmt.Sprintf("after %d", i+1))
		time.Sleep(300 * time.Millisecond)
	}
	rep := load.Stop()

	var figs []Figure
	failed, requests := 0, 0
	for _, name := range names {
		ph, ok := rep.Phase(name)
		if !ok {
			continue
		}
		failed += ph.Failures()
		requests += ph.Requests
		val := fmt.Sprintf("%d requests, %d failed, p50 %s, p99 %s", ph.Requests, ph.Failures(), Dur(ph.P50), Dur(ph.P99))
		if d := p2Failures(ph); d != "" {
			val += " (" + d + ")"
		}
		figs = append(figs, Figure{ID: "P2", Name: "rollout " + name + " under load (32 clients)", Value: val, Goal: "0 failed", Met: ph.Failures() == 0})
	}
	tot := rep.Total
	figs = append(figs, Figure{ID: "P2", Name: fmt.Sprintf("all %d rollouts and the gaps between them", len(names)),
		Value: fmt.Sprintf("%d requests, %d failed, p50 %s, p99 %s", tot.Requests, tot.Failures(), Dur(tot.P50), Dur(tot.P99)),
		Goal:  "0 failed", Met: tot.Failures() == 0 && runErr == nil && len(names) == p2Rollouts})
	return figs, runErr
}

// p2Failures describes what failed: statuses other than 200, answers that are not
// hello's, transport errors.
func p2Failures(ph loadgen.Phase) string {
	var parts []string
	var codes []int
	for code := range ph.Status {
		if code != 200 {
			codes = append(codes, code)
		}
	}
	sort.Ints(codes)
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%d× status %d", ph.Status[code], code))
	}
	for body, n := range ph.Bodies {
		if !strings.HasPrefix(body, "hello from") {
			parts = append(parts, fmt.Sprintf("%d× %q", n, abbrev(body, 120)))
		}
	}
	if ph.TransportErrors > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors: %s", ph.TransportErrors, strings.Join(ph.ErrorSamples, "; ")))
	}
	return strings.Join(parts, ", ")
}
