package bench

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// P10: virtual machines on the qemu provider (QEMU under TCG, 128 MB guests, as
// the VM integration test runs them: KVM hangs on the machines this was built
// on). examples/hello/bake-vm.yaml is baked once through the Bake workflow (not
// timed); then, each run, one VM is provisioned and timed until its /healthz
// answers ("boot → healthy"), and a blue/green rollout of that image to 2 VMs,
// through the Rollout workflow and the router, is timed from start to result
// (it boots 2 VMs while the previous 2 serve, and decommissions those). No goal
// is set for either.
func init() {
	Register(Scenario{ID: "P10", Name: "VM boot and rollout (qemu, TCG)", Run: runP10})
}

const p10ProviderURL = "qemu://?accel=tcg&memory=128"

func runP10(ctx context.Context, env *Env) ([]Figure, error) {
	im, err := StartImago(ctx, env)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	// The same installation with the qemu provider, as an imago-worker run
	// with --provider qemu://… opens it.
	cfg := im.Config
	cfg.ProviderURL = p10ProviderURL
	deps, err := app.OpenDeps(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the qemu provider (make deps installs QEMU): %w", err)
	}
	im.Deps.Close()
	im.Config, im.Deps = cfg, deps
	im.cleanup = append(im.cleanup, func() { deps.Close() })
	if err := im.StartWorker(); err != nil {
		return nil, err
	}

	b, err := spec.LoadBake(filepath.Join(env.Root, "examples", "hello", "bake-vm.yaml"))
	if err != nil {
		return nil, err
	}
	if err := b.Normalize(); err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	run, err := bakes.Start(bctx, im.Client, b, "imago-bench")
	if err != nil {
		return nil, err
	}
	var baked contract.BakeResult
	if err := run.Get(bctx, &baked); err != nil {
		return nil, fmt.Errorf("bake examples/hello/bake-vm.yaml: %w", err)
	}
	bakeTook := time.Since(start)
	env.logf("P10: VM bake took %s", Dur(bakeTook))

	hc := &http.Client{Timeout: 5 * time.Second}
	var boots, rollouts []time.Duration
	for i := 0; i < env.Runs; i++ {
		d, err := p10Boot(ctx, im, hc, baked.ImageID, i)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		r, err := im.Spec(baked.ImageID, func(r *spec.Rollout) {
			r.Service, r.Provider = "hello-vm", "qemu"
			r.Fleet.Size = 2
			r.Health.Path = "/healthz"
			r.Health.Timeout = contract.Duration(3 * time.Minute)
			r.Checks = []contract.Check{{Path: "/", ExpectBody: "v1"}}
		})
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		start := time.Now()
		_, err = im.Rollout(rctx, r)
		took := time.Since(start)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("run %d: rollout of 2 VMs: %w", i+1, err)
		}
		env.logf("P10 run %d: boot → healthy %s, rollout of 2 VMs %s", i+1, Dur(d), Dur(took))
		boots, rollouts = append(boots, d), append(rollouts, took)
	}
	return []Figure{
		{ID: "P10", Name: "bake examples/hello/bake-vm.yaml: build, VM disk, boot test, publish (1 run, for scale)", Value: Dur(bakeTook), Goal: "-", Met: true},
		{ID: "P10", Name: fmt.Sprintf("VM boot → healthy, 1 VM, TCG, 128 MB (median of %d)", len(boots)), Value: Dur(Median(boots)), Goal: "-", Met: true},
		{ID: "P10", Name: fmt.Sprintf("blue/green rollout of 2 VMs through imago, start → result (median of %d)", len(rollouts)), Value: Dur(Median(rollouts)), Goal: "-", Met: true},
	}, nil
}

// p10Boot provisions a fleet of 1 VM, times it until /healthz answers 2xx (as
// WaitHealthy probes it), and terminates it.
func p10Boot(ctx context.Context, im *Imago, hc *http.Client, imageID string, i int) (time.Duration, error) {
	p := im.Deps.Provider
	start := time.Now()
	fleet, err := p.Provision(ctx, contract.ProvisionRequest{
		Token: fmt.Sprintf("p10-boot-%d", i), Service: "hello-vm", Environment: "bench-boot", ImageID: imageID, Size: 1,
	})
	if err != nil {
		return 0, fmt.Errorf("provision 1 VM: %w", err)
	}
	err = WaitHealthy(ctx, p, hc, fleet.ID, "/healthz", 200*time.Millisecond, 3*time.Minute)
	took := time.Since(start)
	if terr := p.Terminate(ctx, fleet.ID); err == nil && terr != nil {
		err = fmt.Errorf("terminate %s: %w", fleet.ID, terr)
	}
	return took, err
}
