package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// P1: what Temporal costs. A blue/green rollout of 3 local instances through
// imago (the Rollout workflow on an in-process worker) against the same provider
// operations and probes called in a plain sequential Go program: resolve, read
// the route, provision, wait healthy, smoke checks, switch the route (with the
// traffic guard), terminate the old fleet. Soak 0 for both. The two alternate
// within each run (ABBA), and the figure is the median of the per-run ratios.
func init() {
	Register(Scenario{ID: "P1", Name: "overhead", Run: runP1})
}

func runP1(ctx context.Context, env *Env) ([]Figure, error) {
	im, err := startWithWorker(ctx, env)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	images, err := helloImages(ctx, env, im, "v1", "v2")
	if err != nil {
		return nil, err
	}
	bareListen, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	b := &bare{im: im, listen: bareListen, key: contract.RouteKey{Service: "hello", Environment: "bare"},
		hc: &http.Client{Timeout: 5 * time.Second}}

	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	viaImago := func(image string) error {
		r, err := im.Spec(image)
		if err != nil {
			return err
		}
		_, err = im.Rollout(ctx, r)
		return err
	}
	viaBare := func(image string) error {
		r, err := im.Spec(image)
		if err != nil {
			return err
		}
		return b.rollout(ctx, r)
	}
	// Warm up both paths (first router start, first image unpack).
	if err := viaImago(images[0]); err != nil {
		return nil, fmt.Errorf("warm-up rollout through imago: %w", err)
	}
	if err := viaBare(images[0]); err != nil {
		return nil, fmt.Errorf("warm-up bare rollout: %w", err)
	}

	// A run takes well under a second, and whether the first health probe finds
	// the instances listening makes a run 0 or 1 probe interval longer: take
	// 4 × Runs runs so the median ratio is stable.
	runs := 4 * env.Runs
	var ti, tb []time.Duration
	var ratios []float64
	for i := 0; i < runs; i++ {
		image := images[(i+1)%2]
		var di, db time.Duration
		first, second := &di, &db
		fi, fs := viaImago, viaBare
		if i%2 == 1 {
			first, second, fi, fs = &db, &di, viaBare, viaImago
		}
		if *first, err = timed(func() error { return fi(image) }); err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		if *second, err = timed(func() error { return fs(image) }); err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		env.logf("P1 run %d: imago %s, bare %s, ratio %.3f", i+1, Dur(di), Dur(db), float64(di)/float64(db))
		ti, tb = append(ti, di), append(tb, db)
		ratios = append(ratios, float64(di)/float64(db))
	}
	ratio := MedianFloat(ratios)
	return []Figure{
		{ID: "P1", Name: fmt.Sprintf("blue/green rollout, 3 instances, through imago (median of %d)", runs), Value: Dur(Median(ti)), Goal: "-", Met: true},
		{ID: "P1", Name: fmt.Sprintf("same provider calls and probes, plain Go (median of %d)", runs), Value: Dur(Median(tb)), Goal: "-", Met: true},
		{ID: "P1", Name: "overhead: imago ÷ plain Go (median of per-run ratios)", Value: fmt.Sprintf("%.3f", ratio), Goal: "≤ 2", Met: ratio <= 2},
	}, nil
}

// helloImages builds and imports hello at the given versions.
func helloImages(ctx context.Context, env *Env, im *Imago, versions ...string) ([]string, error) {
	var ids []string
	for _, v := range versions {
		dir, err := env.HelloVersion(v, 0)
		if err != nil {
			return nil, err
		}
		id, err := im.Import(ctx, dir)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// bare is the rollout without Temporal: the activities' provider calls and probes,
// one after the other.
type bare struct {
	im     *Imago
	listen string
	key    contract.RouteKey
	hc     *http.Client
	n      int
}

func (b *bare) rollout(ctx context.Context, r spec.Rollout) error {
	a := b.im.Deps.Activities
	b.n++
	img, err := a.ResolveImage(ctx, contract.ResolveImageInput{Service: r.Service, Ref: r.Image})
	if err != nil {
		return err
	}
	prev, err := a.ReadRoute(ctx, b.key)
	if err != nil {
		return err
	}
	fleet, err := a.Provision(ctx, contract.ProvisionRequest{
		Token: fmt.Sprintf("bare/%d/%d", time.Now().UnixNano(), b.n), Service: b.key.Service, Environment: b.key.Environment,
		ImageID: img.ImageID, Size: r.Fleet.Size,
	})
	if err != nil {
		return err
	}
	if err := WaitHealthy(ctx, b.im.Deps.Provider, b.hc, fleet.ID, r.Health.Path, r.Health.Interval.D(), r.Health.Timeout.D()); err != nil {
		return err
	}
	if err := a.RunChecks(ctx, contract.RunChecksInput{FleetID: fleet.ID, Checks: r.Checks}); err != nil {
		return err
	}
	route := contract.Route{Listen: b.listen, Backends: []contract.Backend{{FleetID: fleet.ID, Weight: 100, Targets: fleet.Addresses()}}}
	if err := a.SetRoute(ctx, contract.SetRouteInput{Key: b.key, Route: route, HealthPath: r.Health.Path}); err != nil {
		return err
	}
	for _, id := range prev.FleetIDs() {
		if id != fleet.ID {
			if err := a.Terminate(ctx, contract.TerminateInput{FleetID: id}); err != nil {
				return err
			}
		}
	}
	return nil
}
