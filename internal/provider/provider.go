// Package provider is imago's portable compute and traffic API.
//
// A provider owns fleets (groups of identical instances started from one image) and
// one router per service and environment. Users hold a *Provider; backends implement
// the small Driver interface (drivers "local" and "aws"; every driver passes the
// conformance suite in drivertest). Errors carry a
// portable Code so callers never match driver errors.
package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/imago/imago/internal/contract"
)

// Filter selects fleets in ListFleets; empty fields match everything.
type Filter struct {
	Service     string
	Environment string
}

// Driver is what a backend implements. Every method must be safe to retry.
type Driver interface {
	// Provision creates a fleet, or returns the one already made for req.Token,
	// replacing instances that died.
	Provision(ctx context.Context, req contract.ProvisionRequest) (contract.Fleet, error)
	// Describe returns the fleet with the live state of its instances.
	Describe(ctx context.Context, fleetID string) (contract.Fleet, error)
	// Terminate stops every instance of the fleet and forgets it. Terminating a
	// fleet that is already gone succeeds.
	Terminate(ctx context.Context, fleetID string) error
	// SetRoute switches the router's traffic atomically; it returns once the
	// router serves new requests by the new route.
	SetRoute(ctx context.Context, key contract.RouteKey, route contract.Route) error
	// Route returns the router's current route; a router that was never set
	// returns an empty Route and no error.
	Route(ctx context.Context, key contract.RouteKey) (contract.Route, error)
	// ListFleets returns the fleets the driver knows, for inventory and leak collection.
	ListFleets(ctx context.Context, f Filter) ([]contract.Fleet, error)
	// Close releases the driver's resources (not its fleets or routers).
	Close() error
}

// Resizer is an optional Driver interface: drivers that can change the number of
// instances of a fleet in place implement it (rolling rollouts replace a fleet in
// waves by growing the new fleet and shrinking the old one).
//
// Resize must be safe to retry: a retry with the same size adopts the instances an
// interrupted call started. Growing adds instances numbered after the highest
// existing one; shrinking stops the highest-numbered instances gracefully and
// forgets them. The returned fleet lists the remaining instances. After a Resize,
// a Provision retry with the fleet's original token returns the resized fleet (it
// does not shrink or grow it back).
//
// Resize does not touch routes. Traffic safety is the caller's: before shrinking,
// take the instances that go away out of the router's targets of the fleet
// (SetRoute); after growing, wait until the new instances are healthy before
// adding them to the targets.
type Resizer interface {
	Resize(ctx context.Context, fleetID string, size int) (contract.Fleet, error)
}

// MetricsDriver is an optional Driver interface: drivers whose routers count
// requests per fleet implement it (analysis reads error rates and latencies from
// it). FleetMetrics returns the cumulative metrics of every fleet the router of
// key has counted, by fleet ID; a fleet that received no request may be absent.
type MetricsDriver interface {
	FleetMetrics(ctx context.Context, key contract.RouteKey) (map[string]contract.FleetMetrics, error)
}

// Code is a portable error class.
type Code int

// Error codes.
const (
	Unknown Code = iota
	NotFound
	InvalidArgument
	FailedPrecondition
)

func (c Code) String() string {
	switch c {
	case NotFound:
		return "not found"
	case InvalidArgument:
		return "invalid argument"
	case FailedPrecondition:
		return "failed precondition"
	}
	return "unknown"
}

// Error is an error with a portable code.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error with code c.
func Errorf(c Code, format string, args ...any) error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the portable code of err, Unknown when it carries none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Unknown
}

type progressKey struct{}

// WithProgress returns a context whose driver calls report that a long
// operation is alive (a Terminate waiting for a load balancer to drain) by
// calling fn; an activity passes a function that heartbeats.
func WithProgress(ctx context.Context, fn func(msg string)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress tells the caller of a driver method that it is alive and
// what it waits for; without WithProgress it does nothing. Drivers call it in
// every round of a long wait.
func ReportProgress(ctx context.Context, format string, args ...any) {
	if fn, ok := ctx.Value(progressKey{}).(func(string)); ok && fn != nil {
		fn(fmt.Sprintf(format, args...))
	}
}

// Provider is the portable type users hold.
type Provider struct {
	name string
	url  string
	d    Driver
	caps Capabilities
}

// New wraps a driver.
func New(name string, d Driver) *Provider {
	return &Provider{name: name, url: name + "://", d: d, caps: DriverCapabilities(d)}
}

// Name is the driver's name ("local", "aws"): its URL scheme, the name a
// rollout spec's provider field gives.
func (p *Provider) Name() string { return p.name }

// URL is the provider URL the provider was opened with (secrets redacted), or
// name:// for one made with New.
func (p *Provider) URL() string { return p.url }

// Capabilities returns what the driver can do beyond the Driver interface.
func (p *Provider) Capabilities() Capabilities {
	out := Capabilities{}
	for c, ok := range p.caps {
		out[c] = ok
	}
	return out
}

// Provision creates (or adopts, by token) a fleet.
func (p *Provider) Provision(ctx context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
	if req.Token == "" {
		return contract.Fleet{}, Errorf(InvalidArgument, "provision: a request token is required so retries adopt the same fleet")
	}
	if req.Size < 1 {
		return contract.Fleet{}, Errorf(InvalidArgument, "provision: fleet size must be at least 1, got %d", req.Size)
	}
	if req.Provider != "" && req.Provider != p.name {
		return contract.Fleet{}, Errorf(InvalidArgument, "provision: the spec asks for provider %q, but this worker runs %q; run a worker with IMAGO_PROVIDER_URL=%s://…", req.Provider, p.name, req.Provider)
	}
	return p.d.Provision(ctx, req)
}

// Describe returns a fleet with its instances' live state.
func (p *Provider) Describe(ctx context.Context, fleetID string) (contract.Fleet, error) {
	return p.d.Describe(ctx, fleetID)
}

// Terminate stops a fleet. It refuses, with FailedPrecondition, to terminate a fleet
// that the service's router still sends traffic to (the traffic guard).
func (p *Provider) Terminate(ctx context.Context, fleetID string) error {
	f, err := p.d.Describe(ctx, fleetID)
	if ErrorCode(err) == NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	r, err := p.d.Route(ctx, contract.RouteKey{Service: f.Service, Environment: f.Environment})
	if err != nil {
		return err
	}
	if r.Serves(fleetID) {
		return Errorf(FailedPrecondition, "refusing to terminate fleet %s: the %s/%s router still sends it traffic (weight %d%%%s)",
			fleetID, f.Environment, f.Service, r.Weight(fleetID), rulesNaming(r, fleetID))
	}
	return p.d.Terminate(ctx, fleetID)
}

// SetRoute switches traffic. Weights must be 0..100 and sum to 100; a route with
// no backends makes the router answer 503.
func (p *Provider) SetRoute(ctx context.Context, key contract.RouteKey, route contract.Route) error {
	sum := 0
	for _, b := range route.Backends {
		if b.Weight < 0 || b.Weight > 100 {
			return Errorf(InvalidArgument, "route %s: weight of fleet %s is %d, want 0..100", key, b.FleetID, b.Weight)
		}
		if b.Weight > 0 && len(b.Targets) == 0 {
			return Errorf(InvalidArgument, "route %s: fleet %s has weight %d but no targets", key, b.FleetID, b.Weight)
		}
		sum += b.Weight
	}
	// An empty route is allowed: the router then answers 503 (nothing to serve yet).
	if len(route.Backends) > 0 && sum != 100 {
		return Errorf(InvalidArgument, "route %s: weights sum to %d, want 100", key, sum)
	}
	if err := checkRules(key, route, p.caps, p.name); err != nil {
		return err
	}
	if !p.caps.Has(CapWeights) {
		for _, b := range route.Backends {
			if b.Weight > 0 && b.Weight < 100 {
				return Errorf(FailedPrecondition, "route %s: fleet %s would get %d%% of traffic, but the %s provider routes all traffic to one fleet (it has no %s)",
					key, b.FleetID, b.Weight, p.name, CapWeights.Describe())
			}
		}
	}
	return p.d.SetRoute(ctx, key, route)
}

// Route returns the router's current route.
func (p *Provider) Route(ctx context.Context, key contract.RouteKey) (contract.Route, error) {
	return p.d.Route(ctx, key)
}

// ListFleets lists fleets matching f.
func (p *Provider) ListFleets(ctx context.Context, f Filter) ([]contract.Fleet, error) {
	return p.d.ListFleets(ctx, f)
}

// Resize changes the number of instances of a fleet (see Resizer, including who
// keeps traffic safe: Resize does not update routes). It returns InvalidArgument
// for a size below 1 and FailedPrecondition when the driver cannot resize.
func (p *Provider) Resize(ctx context.Context, fleetID string, size int) (contract.Fleet, error) {
	if size < 1 {
		return contract.Fleet{}, Errorf(InvalidArgument, "resize fleet %s: size must be at least 1, got %d", fleetID, size)
	}
	r, ok := p.d.(Resizer)
	if !ok || !p.caps.Has(CapResize) {
		return contract.Fleet{}, Errorf(FailedPrecondition, "resize fleet %s: the %s provider cannot resize fleets", fleetID, p.name)
	}
	return r.Resize(ctx, fleetID, size)
}

// FleetMetrics returns the cumulative per-fleet metrics of the router of key (see
// MetricsDriver). It returns FailedPrecondition when the driver exports none.
func (p *Provider) FleetMetrics(ctx context.Context, key contract.RouteKey) (map[string]contract.FleetMetrics, error) {
	m, ok := p.d.(MetricsDriver)
	if !ok || !p.caps.Has(CapFleetMetrics) {
		return nil, Errorf(FailedPrecondition, "fleet metrics of %s: driver %s exports no router metrics", key, p.name)
	}
	return m.FleetMetrics(ctx, key)
}

// Close releases the driver.
func (p *Provider) Close() error { return p.d.Close() }

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName refuses a name (service, environment, label) a driver could not use
// safely in file names, tags or resource names, with an InvalidArgument error.
func CheckName(what, s string) error {
	if !safeName.MatchString(s) {
		return Errorf(InvalidArgument,
			"%s %q is not valid: use letters, digits, '.', '_' and '-', starting with a letter or digit", what, s)
	}
	return nil
}

// Driver returns the driver p wraps, for the worker's wiring (a local driver
// shared with bake tests); users call p's methods.
func (p *Provider) Driver() Driver { return p.d }
