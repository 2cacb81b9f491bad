// Package faulty is a provider driver decorator that injects faults: transient
// errors on a share of calls (some before the call does anything, some after it
// did its work, as a lost response would), latency on every call, and permanent
// errors on chosen operations. The fault suite runs real rollouts through it to
// show that transient faults never fail a rollout and permanent ones fail it
// cleanly, with the old fleet serving.
package faulty

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// Operations that faults can target.
const (
	OpProvision  = "Provision"
	OpDescribe   = "Describe"
	OpTerminate  = "Terminate"
	OpSetRoute   = "SetRoute"
	OpRoute      = "Route"
	OpListFleets = "ListFleets"
	OpResize     = "Resize"
	OpMetrics    = "FleetMetrics"
)

// Options say which faults to inject.
type Options struct {
	// TransientRate is the share of calls (0..1) that fail with a retryable error.
	TransientRate float64
	// Latency is added to every call.
	Latency time.Duration
	// Seed makes the fault sequence repeatable.
	Seed int64
}

// Driver wraps a provider driver and injects faults into its calls.
type Driver struct {
	inner provider.Driver
	opts  Options

	mu        sync.Mutex
	rnd       *rand.Rand
	permanent map[string]int // operation → how many more calls fail permanently
	counts    map[string]int // injected faults by kind, for tests
}

// Wrap decorates d.
func Wrap(d provider.Driver, o Options) *Driver {
	return &Driver{inner: d, opts: o, rnd: rand.New(rand.NewSource(o.Seed)), permanent: map[string]int{}, counts: map[string]int{}}
}

// FailNext makes the next n calls of op fail with a permanent (non-retryable) error.
func (d *Driver) FailNext(op string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.permanent[op] = n
}

// Injected returns how many faults of each kind were injected ("transient-before",
// "transient-after", "permanent").
func (d *Driver) Injected() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.counts))
	for k, v := range d.counts {
		out[k] = v
	}
	return out
}

// fault decides this call's fault: a permanent error, a transient error before the
// call, one after it, or none.
func (d *Driver) fault(ctx context.Context, op string) (before, after error) {
	if d.opts.Latency > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err(), nil
		case <-time.After(d.opts.Latency):
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.permanent[op]; n > 0 {
		d.permanent[op] = n - 1
		d.counts["permanent"]++
		return provider.Errorf(provider.FailedPrecondition, "injected permanent fault in %s", op), nil
	}
	if d.opts.TransientRate > 0 && d.rnd.Float64() < d.opts.TransientRate {
		if d.rnd.Intn(2) == 0 {
			d.counts["transient-before"]++
			return fmt.Errorf("injected transient fault in %s (before the call)", op), nil
		}
		d.counts["transient-after"]++
		return nil, fmt.Errorf("injected transient fault in %s (after the call did its work)", op)
	}
	return nil, nil
}

// Provision implements provider.Driver.
func (d *Driver) Provision(ctx context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
	before, after := d.fault(ctx, OpProvision)
	if before != nil {
		return contract.Fleet{}, before
	}
	f, err := d.inner.Provision(ctx, req)
	if err == nil && after != nil {
		return contract.Fleet{}, after
	}
	return f, err
}

// Describe implements provider.Driver.
func (d *Driver) Describe(ctx context.Context, id string) (contract.Fleet, error) {
	before, after := d.fault(ctx, OpDescribe)
	if before != nil {
		return contract.Fleet{}, before
	}
	f, err := d.inner.Describe(ctx, id)
	if err == nil && after != nil {
		return contract.Fleet{}, after
	}
	return f, err
}

// Terminate implements provider.Driver.
func (d *Driver) Terminate(ctx context.Context, id string) error {
	before, after := d.fault(ctx, OpTerminate)
	if before != nil {
		return before
	}
	if err := d.inner.Terminate(ctx, id); err != nil {
		return err
	}
	return after
}

// SetRoute implements provider.Driver.
func (d *Driver) SetRoute(ctx context.Context, key contract.RouteKey, r contract.Route) error {
	before, after := d.fault(ctx, OpSetRoute)
	if before != nil {
		return before
	}
	if err := d.inner.SetRoute(ctx, key, r); err != nil {
		return err
	}
	return after
}

// Route implements provider.Driver.
func (d *Driver) Route(ctx context.Context, key contract.RouteKey) (contract.Route, error) {
	before, after := d.fault(ctx, OpRoute)
	if before != nil {
		return contract.Route{}, before
	}
	r, err := d.inner.Route(ctx, key)
	if err == nil && after != nil {
		return contract.Route{}, after
	}
	return r, err
}

// ListFleets implements provider.Driver.
func (d *Driver) ListFleets(ctx context.Context, f provider.Filter) ([]contract.Fleet, error) {
	before, after := d.fault(ctx, OpListFleets)
	if before != nil {
		return nil, before
	}
	out, err := d.inner.ListFleets(ctx, f)
	if err == nil && after != nil {
		return nil, after
	}
	return out, err
}

// Resize implements provider.Resizer when the inner driver does.
func (d *Driver) Resize(ctx context.Context, id string, size int) (contract.Fleet, error) {
	rs, ok := d.inner.(provider.Resizer)
	if !ok {
		return contract.Fleet{}, provider.Errorf(provider.FailedPrecondition, "the wrapped driver cannot resize fleets")
	}
	before, after := d.fault(ctx, OpResize)
	if before != nil {
		return contract.Fleet{}, before
	}
	f, err := rs.Resize(ctx, id, size)
	if err == nil && after != nil {
		return contract.Fleet{}, after
	}
	return f, err
}

// FleetMetrics implements provider.MetricsDriver when the inner driver does.
func (d *Driver) FleetMetrics(ctx context.Context, key contract.RouteKey) (map[string]contract.FleetMetrics, error) {
	md, ok := d.inner.(provider.MetricsDriver)
	if !ok {
		return nil, provider.Errorf(provider.FailedPrecondition, "the wrapped driver exports no router metrics")
	}
	before, after := d.fault(ctx, OpMetrics)
	if before != nil {
		return nil, before
	}
	m, err := md.FleetMetrics(ctx, key)
	if err == nil && after != nil {
		return nil, after
	}
	return m, err
}

// Capabilities implements provider.CapableDriver: those of the wrapped
// driver, whose optional interfaces Driver forwards.
func (d *Driver) Capabilities() provider.Capabilities { return provider.DriverCapabilities(d.inner) }

// Close implements provider.Driver.
func (d *Driver) Close() error { return d.inner.Close() }
