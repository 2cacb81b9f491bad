// Package drivertest is the conformance suite of provider drivers, the go-cloud
// drivertest way: a driver is done when it passes RunConformanceTests, not when
// it looks right. Each driver's tests call it with a HarnessMaker that makes a
// fresh driver and whatever it needs (images to provision, a router key, a way
// to make instances healthy):
//
//	func TestConformance(t *testing.T) {
//		drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
//			return newHarness(t)
//		})
//	}
//
// The suite checks, through the portable *provider.Provider and the driver
// itself: provisioning is idempotent by token (concurrent retries too) and
// refuses a token reused for a different request; Describe reports the fleet's
// fields, labels and instances; Terminate is idempotent and the fleet is then
// NotFound and no longer listed; route weights set across two fleets read back
// exactly, an invalid split is InvalidArgument and leaves the route alone; the
// traffic guard refuses to terminate a fleet that receives traffic; ListFleets
// filters by service and environment and returns exactly the fleets that exist,
// with the token, labels and creation time a leak reaper needs (and, for a
// harness that can stop a provision half way, Leaker, lists and terminates what
// it left); and the portable error codes of bad requests.
//
// A harness declares the driver's capabilities (provider.CapWeights,
// CapResize, CapFleetMetrics). The suite checks that the driver claims exactly
// those, implements the optional interface of each (Resizer, MetricsDriver)
// and that each works: split routes read back, fleets grow and shrink in place
// and a retry adopts the resize, the router counts requests per fleet (with
// TrafficSender: the requests the harness sent). For a capability the harness
// does not declare, it checks that the portable Provider refuses it with
// FailedPrecondition and leaves everything as it was.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// Harness gives the suite a driver and what it needs to exercise it. Every test
// makes its own harness, and the driver it makes must start empty: no fleets.
type Harness interface {
	// MakeDriver returns the driver under test. The suite closes it.
	MakeDriver(ctx context.Context) (provider.Driver, error)
	// Images returns image IDs the driver can (and cannot) provision.
	Images(ctx context.Context) (Images, error)
	// RouteKey is the service and environment the suite provisions fleets of and
	// routes traffic for: the driver must be able to set its route.
	RouteKey() contract.RouteKey
	// MakeHealthy makes every instance of the fleet pass the driver's health
	// check (on a cloud fake: as once they booted) and returns once Describe
	// reports each of them running.
	MakeHealthy(ctx context.Context, d provider.Driver, fleet contract.Fleet) error
	// Capabilities are what the driver can do beyond the Driver interface: the
	// suite tests each one declared, and that the driver claims no other.
	Capabilities() provider.Capabilities
	// Close releases what the harness holds, including anything the driver
	// started that outlives it (processes, servers).
	Close()
}

// TrafficSender is an optional Harness interface: a harness that can send
// requests through the router of a route key (as a client would) implements
// it, and the suite checks that FleetMetrics counts them for the fleet that
// served them.
type TrafficSender interface {
	// SendRequests sends n GET / requests through the router of key and
	// returns once each was answered.
	SendRequests(ctx context.Context, d provider.Driver, key contract.RouteKey, n int) error
}

// Images are the image IDs a harness offers.
type Images struct {
	// First and Second are two different images the driver can provision.
	First, Second string
	// Missing is an image ID of the driver's form that does not exist:
	// provisioning it must fail with NotFound.
	Missing string
}

// Leaker is an optional Harness interface. A harness that can make a
// Provision stop half way, as a worker killed in the middle of the call would,
// leaving part of a fleet behind, implements it; the suite then checks that
// ListFleets lists such a leftover with what a leak reaper needs, and that
// Terminate removes it.
type Leaker interface {
	// LeakProvision calls d.Provision(req) so that it fails after making part
	// of the fleet, and returns its error.
	LeakProvision(ctx context.Context, d provider.Driver, req contract.ProvisionRequest) error
}

// HarnessMaker makes a harness for one test.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// DriverTrafficGuard is an optional Harness interface. A harness whose driver
// refuses on its own (FailedPrecondition) to terminate a fleet its router sends
// traffic to says so, and the suite checks that guard too; the portable
// Provider's guard is checked for every driver.
type DriverTrafficGuard interface {
	DriverGuardsTraffic() bool
}

// StickyCookieNamer is an optional Harness interface: a harness whose
// driver's stickiness cookie has a fixed name (an ALB's AWSALBTG) says which,
// and the suite sets stickiness by it; others are tested with imago-fleet.
type StickyCookieNamer interface {
	StickyCookie() string
}

// RunConformanceTests runs the suite against the driver newHarness makes.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*env)
	}{
		{"ProvisionIsIdempotentByToken", testProvisionIdempotent},
		{"DescribeReportsFleet", testDescribe},
		{"TerminateIsIdempotent", testTerminate},
		{"RouteWeights", testRouteWeights},
		{"TrafficGuard", testTrafficGuard},
		{"ListFleetsForLeakCollection", testListFleets},
		{"ErrorCodes", testErrorCodes},
		{"CapabilitiesAreWhatTheHarnessDeclares", testCapabilities},
		{"Resize", testResize},
		{"FleetMetrics", testFleetMetrics},
		{"RouteRules", testRouteRules},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			h, err := newHarness(ctx, t)
			if err != nil {
				t.Fatalf("make harness: %v", err)
			}
			defer h.Close()
			d, err := h.MakeDriver(ctx)
			if err != nil {
				t.Fatalf("make driver: %v", err)
			}
			defer func() {
				if err := d.Close(); err != nil {
					t.Errorf("close driver: %v", err)
				}
			}()
			imgs, err := h.Images(ctx)
			if err != nil {
				t.Fatalf("images: %v", err)
			}
			if imgs.First == "" || imgs.Second == "" || imgs.First == imgs.Second || imgs.Missing == "" {
				t.Fatalf("harness images %+v: want two different images and a missing one", imgs)
			}
			tc.run(&env{t: t, ctx: ctx, h: h, d: d, p: provider.New("conformance", d), key: h.RouteKey(), imgs: imgs, start: time.Now(),
				caps: h.Capabilities()})
		})
	}
}

type env struct {
	t     *testing.T
	ctx   context.Context
	h     Harness
	d     provider.Driver
	p     *provider.Provider
	key   contract.RouteKey
	imgs  Images
	start time.Time
	caps  provider.Capabilities
}

func (e *env) request(token string, key contract.RouteKey, image string, size int) contract.ProvisionRequest {
	return contract.ProvisionRequest{
		Token: token, Service: key.Service, Environment: key.Environment, ImageID: image, Size: size,
		Labels: map[string]string{"rollout": "rollout/" + key.Environment + "/" + key.Service, "run": token + "-run"},
	}
}

// provision provisions a fleet of size instances of the first image in key.
func (e *env) provision(token string, key contract.RouteKey, size int) contract.Fleet {
	e.t.Helper()
	f, err := e.p.Provision(e.ctx, e.request(token, key, e.imgs.First, size))
	if err != nil {
		e.t.Fatalf("provision %s (%s): %v", token, key, err)
	}
	return f
}

// healthy provisions a fleet in e.key and makes it healthy; it returns the
// fleet as Describe reports it.
func (e *env) healthy(token string, size int) contract.Fleet {
	e.t.Helper()
	f := e.provision(token, e.key, size)
	if err := e.h.MakeHealthy(e.ctx, e.d, f); err != nil {
		e.t.Fatalf("make fleet %s healthy: %v", f.ID, err)
	}
	f, err := e.p.Describe(e.ctx, f.ID)
	if err != nil {
		e.t.Fatalf("describe %s: %v", f.ID, err)
	}
	for _, in := range f.Instances {
		if in.State != contract.InstanceRunning {
			e.t.Fatalf("after MakeHealthy, instance %s of fleet %s is %s, want %s", in.ID, f.ID, in.State, contract.InstanceRunning)
		}
	}
	return f
}

// wantCode fails the test unless err carries the portable code want.
func (e *env) wantCode(what string, err error, want provider.Code) {
	e.t.Helper()
	if err == nil {
		e.t.Fatalf("%s: no error, want %s", what, want)
	}
	if got := provider.ErrorCode(err); got != want {
		e.t.Fatalf("%s: error %q has code %s, want %s", what, err, got, want)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Error() == "" {
		e.t.Fatalf("%s: error %q is not a *provider.Error with a message", what, err)
	}
}

// listIDs lists the fleets matching f and returns their IDs, sorted.
func (e *env) listIDs(f provider.Filter) []string {
	e.t.Helper()
	fleets, err := e.p.ListFleets(e.ctx, f)
	if err != nil {
		e.t.Fatalf("list fleets %+v: %v", f, err)
	}
	ids := make([]string, 0, len(fleets))
	for _, fl := range fleets {
		ids = append(ids, fl.ID)
	}
	sort.Strings(ids)
	return ids
}

func sorted(ids ...string) []string {
	out := append([]string{}, ids...)
	sort.Strings(out)
	return out
}

func instanceIDs(f contract.Fleet) []string {
	ids := make([]string, 0, len(f.Instances))
	for _, in := range f.Instances {
		ids = append(ids, in.ID)
	}
	sort.Strings(ids)
	return ids
}

func testProvisionIdempotent(e *env) {
	t := e.t
	req := e.request("conformance-a", e.key, e.imgs.First, 2)
	first, err := e.p.Provision(e.ctx, req)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	if first.ID == "" || len(first.Instances) != 2 {
		t.Fatalf("provision returned fleet %q with %d instances, want an ID and 2 instances", first.ID, len(first.Instances))
	}

	// A retry with the same token, sequential or concurrent, adopts the fleet.
	again, err := e.p.Provision(e.ctx, req)
	if err != nil {
		t.Fatalf("provision retry: %v", err)
	}
	if again.ID != first.ID || !reflect.DeepEqual(instanceIDs(again), instanceIDs(first)) {
		t.Fatalf("provision retry made fleet %s %v, want the first one %s %v", again.ID, instanceIDs(again), first.ID, instanceIDs(first))
	}
	var wg sync.WaitGroup
	ids := make([]string, 3)
	errs := make([]error, 3)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := e.p.Provision(e.ctx, req)
			ids[i], errs[i] = f.ID, err
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != first.ID {
			t.Fatalf("concurrent provision retry %d: fleet %q, %v; want %s", i, ids[i], errs[i], first.ID)
		}
	}
	if got := e.listIDs(provider.Filter{Service: e.key.Service, Environment: e.key.Environment}); !reflect.DeepEqual(got, []string{first.ID}) {
		t.Fatalf("after retries, fleets %v, want only %s", got, first.ID)
	}

	// A different token makes a new fleet.
	other, err := e.p.Provision(e.ctx, e.request("conformance-b", e.key, e.imgs.First, 1))
	if err != nil {
		t.Fatalf("provision another token: %v", err)
	}
	if other.ID == first.ID {
		t.Fatalf("a different token returned the same fleet %s", other.ID)
	}
	if got := e.listIDs(provider.Filter{Service: e.key.Service, Environment: e.key.Environment}); !reflect.DeepEqual(got, sorted(first.ID, other.ID)) {
		t.Fatalf("fleets %v, want %v", got, sorted(first.ID, other.ID))
	}

	// The same token for a different request is refused, and changes nothing.
	changed := req
	changed.ImageID = e.imgs.Second
	_, err = e.p.Provision(e.ctx, changed)
	e.wantCode("provision with a reused token and another image", err, provider.InvalidArgument)
	f, err := e.p.Describe(e.ctx, first.ID)
	if err != nil || f.ImageID != e.imgs.First {
		t.Fatalf("after the refused request, fleet %s has image %q (%v), want %s", first.ID, f.ImageID, err, e.imgs.First)
	}
	if got := e.listIDs(provider.Filter{Service: e.key.Service, Environment: e.key.Environment}); !reflect.DeepEqual(got, sorted(first.ID, other.ID)) {
		t.Fatalf("after the refused request, fleets %v, want %v", got, sorted(first.ID, other.ID))
	}
}

func testDescribe(e *env) {
	t := e.t
	req := e.request("conformance-describe", e.key, e.imgs.First, 3)
	req.Labels["team"] = "payments"
	made, err := e.p.Provision(e.ctx, req)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	if err := e.h.MakeHealthy(e.ctx, e.d, made); err != nil {
		t.Fatalf("make healthy: %v", err)
	}
	f, err := e.p.Describe(e.ctx, made.ID)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if f.ID != made.ID || f.Service != req.Service || f.Environment != req.Environment || f.ImageID != req.ImageID || f.Token != req.Token {
		t.Fatalf("describe: fleet %s %s/%s image %s token %q; want %s %s/%s image %s token %q",
			f.ID, f.Environment, f.Service, f.ImageID, f.Token, made.ID, req.Environment, req.Service, req.ImageID, req.Token)
	}
	if !reflect.DeepEqual(f.Labels, req.Labels) {
		t.Fatalf("describe: labels %v, want %v", f.Labels, req.Labels)
	}
	e.checkCreated(f)
	if len(f.Instances) != req.Size {
		t.Fatalf("describe: %d instances, want %d", len(f.Instances), req.Size)
	}
	ids, addrs := map[string]bool{}, map[string]bool{}
	for _, in := range f.Instances {
		if in.ID == "" || ids[in.ID] {
			t.Fatalf("describe: instance ID %q empty or repeated in %+v", in.ID, f.Instances)
		}
		if in.Address == "" || addrs[in.Address] {
			t.Fatalf("describe: instance address %q empty or repeated in %+v", in.Address, f.Instances)
		}
		if in.State != contract.InstanceRunning {
			t.Fatalf("describe: healthy instance %s is %s, want %s", in.ID, in.State, contract.InstanceRunning)
		}
		ids[in.ID], addrs[in.Address] = true, true
	}
	if !reflect.DeepEqual(instanceIDs(f), instanceIDs(made)) {
		t.Fatalf("describe: instances %v, provision returned %v", instanceIDs(f), instanceIDs(made))
	}
	for _, id := range []string{"no-such-fleet", "fleet-that-never-was-0"} {
		_, err := e.p.Describe(e.ctx, id)
		e.wantCode("describe unknown fleet "+id, err, provider.NotFound)
	}
}

// checkCreated checks that f was created during the test (give or take a minute
// of clock skew between the test and the provider).
func (e *env) checkCreated(f contract.Fleet) {
	e.t.Helper()
	if f.Created.IsZero() || f.Created.Before(e.start.Add(-time.Minute)) || f.Created.After(time.Now().Add(time.Minute)) {
		e.t.Fatalf("fleet %s created at %v, want a time during the test (started %v)", f.ID, f.Created, e.start)
	}
}

func testTerminate(e *env) {
	t := e.t
	gone := e.healthy("conformance-terminate-1", 2)
	stays := e.healthy("conformance-terminate-2", 1)
	if err := e.p.Terminate(e.ctx, gone.ID); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if err := e.p.Terminate(e.ctx, gone.ID); err != nil {
		t.Fatalf("terminate again: %v", err)
	}
	if err := e.d.Terminate(e.ctx, gone.ID); err != nil {
		t.Fatalf("driver terminate of a terminated fleet: %v", err)
	}
	_, err := e.p.Describe(e.ctx, gone.ID)
	e.wantCode("describe a terminated fleet", err, provider.NotFound)
	if got := e.listIDs(provider.Filter{Service: e.key.Service, Environment: e.key.Environment}); !reflect.DeepEqual(got, []string{stays.ID}) {
		t.Fatalf("after terminate, fleets %v, want only %s", got, stays.ID)
	}
	for _, id := range []string{"no-such-fleet", "fleet-that-never-was-0"} {
		if err := e.p.Terminate(e.ctx, id); err != nil {
			t.Fatalf("terminate unknown fleet %s: %v", id, err)
		}
	}
	f, err := e.p.Describe(e.ctx, stays.ID)
	if err != nil || !reflect.DeepEqual(instanceIDs(f), instanceIDs(stays)) {
		t.Fatalf("the other fleet after terminate: %v %v, want %v", instanceIDs(f), err, instanceIDs(stays))
	}
	for _, in := range f.Instances {
		if in.State != contract.InstanceRunning {
			t.Fatalf("the other fleet's instance %s is %s after terminating %s", in.ID, in.State, gone.ID)
		}
	}
}

// routeOf returns the route's weights and sorted targets by fleet ID.
func routeOf(r contract.Route) map[string]string {
	out := map[string]string{}
	for _, b := range r.Backends {
		targets := sorted(b.Targets...)
		out[b.FleetID] = fmt.Sprintf("%d%% %v", b.Weight, targets)
	}
	return out
}

func backend(f contract.Fleet, weight int) contract.Backend {
	return contract.Backend{FleetID: f.ID, Weight: weight, Targets: f.Addresses()}
}

func (e *env) wantRoute(what string, want contract.Route) {
	e.t.Helper()
	got, err := e.p.Route(e.ctx, e.key)
	if err != nil {
		e.t.Fatalf("%s: read route: %v", what, err)
	}
	if !reflect.DeepEqual(routeOf(got), routeOf(want)) {
		e.t.Fatalf("%s: route %v, want %v", what, routeOf(got), routeOf(want))
	}
}

func testRouteWeights(e *env) {
	t := e.t
	e.wantRoute("a router never set", contract.Route{})
	blue := e.healthy("conformance-blue", 2)
	green := e.healthy("conformance-green", 2)

	split := contract.Route{Backends: []contract.Backend{backend(blue, 30), backend(green, 70)}}
	if !e.caps.Has(provider.CapWeights) {
		// A driver that routes all traffic to one fleet refuses a split and
		// keeps its route; the checks below start from all to blue.
		e.wantCode("set route 30/70 on a driver without weights", e.p.SetRoute(e.ctx, e.key, split), provider.FailedPrecondition)
		e.wantRoute("after a refused split", contract.Route{})
		split = contract.Route{Backends: []contract.Backend{backend(blue, 100), backend(green, 0)}}
	}
	if err := e.p.SetRoute(e.ctx, e.key, split); err != nil {
		t.Fatalf("set route %v: %v", routeOf(split), err)
	}
	e.wantRoute("after "+fmt.Sprint(routeOf(split)), split)

	bad := []struct {
		what  string
		route contract.Route
	}{
		{"weights summing to 90", contract.Route{Backends: []contract.Backend{backend(blue, 20), backend(green, 70)}}},
		{"weights summing to 110", contract.Route{Backends: []contract.Backend{backend(blue, 40), backend(green, 70)}}},
		{"a weight above 100", contract.Route{Backends: []contract.Backend{backend(blue, 150)}}},
		{"a negative weight", contract.Route{Backends: []contract.Backend{backend(blue, -10), backend(green, 110)}}},
		{"a weighted fleet without targets", contract.Route{Backends: []contract.Backend{{FleetID: blue.ID, Weight: 100}}}},
	}
	for _, b := range bad {
		e.wantCode("set route with "+b.what, e.p.SetRoute(e.ctx, e.key, b.route), provider.InvalidArgument)
		e.wantRoute("after a refused route with "+b.what, split)
	}

	all := contract.Route{Backends: []contract.Backend{backend(green, 100)}}
	if err := e.p.SetRoute(e.ctx, e.key, all); err != nil {
		t.Fatalf("set route 0/100: %v", err)
	}
	e.wantRoute("after 100% green", all)
	r, err := e.p.Route(e.ctx, e.key)
	if err != nil || r.Serves(blue.ID) || r.Weight(green.ID) != 100 {
		t.Fatalf("route %+v (%v): want blue unserved and green at 100", r, err)
	}

	if err := e.p.SetRoute(e.ctx, e.key, contract.Route{}); err != nil {
		t.Fatalf("set an empty route: %v", err)
	}
	e.wantRoute("after an empty route", contract.Route{})
}

func testTrafficGuard(e *env) {
	t := e.t
	old := e.healthy("conformance-guard-old", 1)
	next := e.healthy("conformance-guard-new", 1)
	if err := e.p.SetRoute(e.ctx, e.key, contract.Route{Backends: []contract.Backend{backend(old, 100)}}); err != nil {
		t.Fatalf("set route: %v", err)
	}
	e.wantCode("terminate the serving fleet", e.p.Terminate(e.ctx, old.ID), provider.FailedPrecondition)
	if g, ok := e.h.(DriverTrafficGuard); ok && g.DriverGuardsTraffic() {
		e.wantCode("driver terminate of the serving fleet", e.d.Terminate(e.ctx, old.ID), provider.FailedPrecondition)
	}
	f, err := e.p.Describe(e.ctx, old.ID)
	if err != nil {
		t.Fatalf("the serving fleet after a refused terminate: %v", err)
	}
	for _, in := range f.Instances {
		if in.State != contract.InstanceRunning {
			t.Fatalf("the serving fleet's instance %s is %s after a refused terminate", in.ID, in.State)
		}
	}
	e.wantRoute("after a refused terminate", contract.Route{Backends: []contract.Backend{backend(old, 100)}})

	// Once the traffic moved away, the old fleet can go.
	moved := contract.Route{Backends: []contract.Backend{backend(next, 100)}}
	if err := e.p.SetRoute(e.ctx, e.key, moved); err != nil {
		t.Fatalf("move traffic: %v", err)
	}
	if err := e.p.Terminate(e.ctx, old.ID); err != nil {
		t.Fatalf("terminate the fleet that no longer serves: %v", err)
	}
	_, err = e.p.Describe(e.ctx, old.ID)
	e.wantCode("describe the terminated fleet", err, provider.NotFound)
	e.wantRoute("after terminating the old fleet", moved)
}

func testListFleets(e *env) {
	t := e.t
	svc, env := e.key.Service, e.key.Environment
	otherSvc := contract.RouteKey{Service: svc + "-other", Environment: env}
	otherEnv := contract.RouteKey{Service: svc, Environment: env + "-other"}
	if got := e.listIDs(provider.Filter{}); len(got) != 0 {
		t.Fatalf("a new driver lists fleets %v, want none", got)
	}
	a1 := e.provision("conformance-list-a1", e.key, 1)
	a2 := e.provision("conformance-list-a2", e.key, 2)
	b := e.provision("conformance-list-b", otherSvc, 1)
	c := e.provision("conformance-list-c", otherEnv, 1)

	cases := []struct {
		f    provider.Filter
		want []string
	}{
		{provider.Filter{Service: svc, Environment: env}, sorted(a1.ID, a2.ID)},
		{provider.Filter{Environment: env}, sorted(a1.ID, a2.ID, b.ID)},
		{provider.Filter{Service: svc}, sorted(a1.ID, a2.ID, c.ID)},
		{provider.Filter{Service: otherSvc.Service, Environment: env}, []string{b.ID}},
		{provider.Filter{}, sorted(a1.ID, a2.ID, b.ID, c.ID)},
		{provider.Filter{Service: "no-such-service"}, []string{}},
	}
	for _, tc := range cases {
		if got := e.listIDs(tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("list %+v: %v, want %v", tc.f, got, tc.want)
		}
	}

	// What a reaper needs: which rollout made each fleet, and when.
	fleets, err := e.p.ListFleets(e.ctx, provider.Filter{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	made := map[string]contract.Fleet{a1.ID: a1, a2.ID: a2, b.ID: b, c.ID: c}
	tokens := map[string]string{a1.ID: "conformance-list-a1", a2.ID: "conformance-list-a2", b.ID: "conformance-list-b", c.ID: "conformance-list-c"}
	for i, f := range fleets {
		m := made[f.ID]
		want := e.request(tokens[f.ID], contract.RouteKey{Service: m.Service, Environment: m.Environment}, e.imgs.First, 1)
		if f.Token != want.Token || f.Service != m.Service || f.Environment != m.Environment || f.ImageID != e.imgs.First {
			t.Fatalf("listed fleet %s: token %q %s/%s image %s; want token %q %s/%s image %s",
				f.ID, f.Token, f.Environment, f.Service, f.ImageID, want.Token, m.Environment, m.Service, e.imgs.First)
		}
		if !reflect.DeepEqual(f.Labels, want.Labels) {
			t.Fatalf("listed fleet %s: labels %v, want %v", f.ID, f.Labels, want.Labels)
		}
		e.checkCreated(f)
		if i > 0 && f.Created.Before(fleets[i-1].Created) {
			t.Fatalf("fleets not listed oldest first: %s (%v) after %s (%v)", f.ID, f.Created, fleets[i-1].ID, fleets[i-1].Created)
		}
		if len(f.Instances) != len(m.Instances) {
			t.Fatalf("listed fleet %s has %d instances, want %d", f.ID, len(f.Instances), len(m.Instances))
		}
	}

	if err := e.p.Terminate(e.ctx, a1.ID); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if got := e.listIDs(provider.Filter{Service: svc, Environment: env}); !reflect.DeepEqual(got, []string{a2.ID}) {
		t.Fatalf("after terminating %s: %v, want only %s", a1.ID, got, a2.ID)
	}
	if got := e.listIDs(provider.Filter{}); !reflect.DeepEqual(got, sorted(a2.ID, b.ID, c.ID)) {
		t.Fatalf("after terminating %s: %v, want %v", a1.ID, got, sorted(a2.ID, b.ID, c.ID))
	}

	// What a provision killed half way left is a fleet too: the reaper must
	// find it, with its token and labels, and Terminate must remove it.
	l, ok := e.h.(Leaker)
	if !ok {
		return
	}
	req := e.request("conformance-list-leak", e.key, e.imgs.First, 2)
	if err := l.LeakProvision(e.ctx, e.d, req); err == nil {
		t.Fatalf("LeakProvision: the provision did not fail")
	}
	fleets, err = e.p.ListFleets(e.ctx, provider.Filter{Service: svc, Environment: env})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var leak *contract.Fleet
	for i := range fleets {
		if fleets[i].Token == req.Token {
			leak = &fleets[i]
		}
	}
	if leak == nil {
		t.Fatalf("after a provision that stopped half way, fleets %+v: none has token %q, so a reaper cannot find what it left", fleets, req.Token)
	}
	if leak.Service != svc || leak.Environment != env || !reflect.DeepEqual(leak.Labels, req.Labels) {
		t.Fatalf("leftover %+v: want %s/%s with labels %v", *leak, env, svc, req.Labels)
	}
	if err := e.p.Terminate(e.ctx, leak.ID); err != nil {
		t.Fatalf("terminate the leftover %s: %v", leak.ID, err)
	}
	if got := e.listIDs(provider.Filter{Service: svc, Environment: env}); !reflect.DeepEqual(got, []string{a2.ID}) {
		t.Fatalf("after terminating the leftover %s: %v, want only %s", leak.ID, got, a2.ID)
	}
	_, err = e.p.Describe(e.ctx, leak.ID)
	e.wantCode("describe the terminated leftover", err, provider.NotFound)
}

func testErrorCodes(e *env) {
	req := e.request("conformance-errors", e.key, e.imgs.First, 1)
	noToken := req
	noToken.Token = ""
	_, err := e.p.Provision(e.ctx, noToken)
	e.wantCode("provision without a token", err, provider.InvalidArgument)
	zero := req
	zero.Size = 0
	_, err = e.p.Provision(e.ctx, zero)
	e.wantCode("provision of 0 instances", err, provider.InvalidArgument)
	_, err = e.d.Provision(e.ctx, zero)
	e.wantCode("driver provision of 0 instances", err, provider.InvalidArgument)
	badName := req
	badName.Service = "bad name!"
	_, err = e.p.Provision(e.ctx, badName)
	e.wantCode("provision with an invalid service name", err, provider.InvalidArgument)
	missing := req
	missing.ImageID = e.imgs.Missing
	_, err = e.p.Provision(e.ctx, missing)
	e.wantCode("provision of a missing image", err, provider.NotFound)
	if got := e.listIDs(provider.Filter{}); len(got) != 0 {
		e.t.Fatalf("refused provisions left fleets %v", got)
	}
	_, err = e.p.Describe(e.ctx, "no-such-fleet")
	e.wantCode("describe an unknown fleet", err, provider.NotFound)
	e.wantCode("set route of an invalid service", e.p.SetRoute(e.ctx, contract.RouteKey{Service: "bad name!", Environment: e.key.Environment},
		contract.Route{}), provider.InvalidArgument)
	_, err = e.p.Route(e.ctx, contract.RouteKey{Service: "bad name!", Environment: e.key.Environment})
	e.wantCode("read route of an invalid service", err, provider.InvalidArgument)
}

// testCapabilities checks that the driver claims exactly what the harness
// declares, and has the optional interface of each capability it claims.
func testCapabilities(e *env) {
	t := e.t
	got := provider.DriverCapabilities(e.d)
	for _, c := range provider.AllCapabilities {
		if got.Has(c) != e.caps.Has(c) {
			t.Fatalf("the driver claims %s, the harness declares %s: they must agree on %s", got, e.caps, c)
		}
	}
	if got := e.p.Capabilities(); got.String() != e.caps.String() {
		t.Fatalf("the portable provider reports %s, want %s", got, e.caps)
	}
	_, resizer := e.d.(provider.Resizer)
	_, metrics := e.d.(provider.MetricsDriver)
	if e.caps.Has(provider.CapResize) && !resizer {
		t.Fatalf("the driver claims %s but does not implement provider.Resizer", provider.CapResize)
	}
	if e.caps.Has(provider.CapFleetMetrics) && !metrics {
		t.Fatalf("the driver claims %s but does not implement provider.MetricsDriver", provider.CapFleetMetrics)
	}
}

func testResize(e *env) {
	t := e.t
	f := e.healthy("conformance-resize", 2)
	if !e.caps.Has(provider.CapResize) {
		_, err := e.p.Resize(e.ctx, f.ID, 3)
		e.wantCode("resize on a driver without "+string(provider.CapResize), err, provider.FailedPrecondition)
		got, err := e.p.Describe(e.ctx, f.ID)
		if err != nil || len(got.Instances) != 2 {
			t.Fatalf("after a refused resize, fleet %s has %d instances (%v), want 2", f.ID, len(got.Instances), err)
		}
		return
	}
	first := instanceIDs(f)
	grown, err := e.p.Resize(e.ctx, f.ID, 3)
	if err != nil {
		t.Fatalf("grow %s to 3: %v", f.ID, err)
	}
	if len(grown.Instances) != 3 || grown.ID != f.ID {
		t.Fatalf("grow to 3 returned fleet %s with %d instances, want %s with 3", grown.ID, len(grown.Instances), f.ID)
	}
	if !containsAll(instanceIDs(grown), first) {
		t.Fatalf("grow kept instances %v, want the first ones %v among them", instanceIDs(grown), first)
	}
	// A retry with the same size adopts what the first call started.
	again, err := e.p.Resize(e.ctx, f.ID, 3)
	if err != nil || !reflect.DeepEqual(instanceIDs(again), instanceIDs(grown)) {
		t.Fatalf("resize retry: %v %v, want %v", instanceIDs(again), err, instanceIDs(grown))
	}
	if err := e.h.MakeHealthy(e.ctx, e.d, grown); err != nil {
		t.Fatalf("make the grown fleet healthy: %v", err)
	}
	shrunk, err := e.p.Resize(e.ctx, f.ID, 1)
	if err != nil {
		t.Fatalf("shrink %s to 1: %v", f.ID, err)
	}
	if len(shrunk.Instances) != 1 || !containsAll(first, instanceIDs(shrunk)) {
		t.Fatalf("shrink to 1 kept %v, want one of the first instances %v (the highest-numbered go)", instanceIDs(shrunk), first)
	}
	got, err := e.p.Describe(e.ctx, f.ID)
	if err != nil || !reflect.DeepEqual(instanceIDs(got), instanceIDs(shrunk)) {
		t.Fatalf("describe after the shrink: %v %v, want %v", instanceIDs(got), err, instanceIDs(shrunk))
	}
	// A provision retry with the fleet's token returns the resized fleet.
	retried, err := e.p.Provision(e.ctx, e.request("conformance-resize", e.key, e.imgs.First, 2))
	if err != nil || retried.ID != f.ID || len(retried.Instances) != 1 {
		t.Fatalf("provision retry after the resize: fleet %s with %d instances (%v), want %s with 1", retried.ID, len(retried.Instances), err, f.ID)
	}
	_, err = e.p.Resize(e.ctx, f.ID, 0)
	e.wantCode("resize to 0", err, provider.InvalidArgument)
	_, err = e.d.(provider.Resizer).Resize(e.ctx, f.ID, 0)
	e.wantCode("driver resize to 0", err, provider.InvalidArgument)
	_, err = e.p.Resize(e.ctx, "no-such-fleet", 2)
	e.wantCode("resize an unknown fleet", err, provider.NotFound)
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func testFleetMetrics(e *env) {
	t := e.t
	f := e.healthy("conformance-metrics", 2)
	if err := e.p.SetRoute(e.ctx, e.key, contract.Route{Backends: []contract.Backend{backend(f, 100)}}); err != nil {
		t.Fatalf("set route: %v", err)
	}
	if !e.caps.Has(provider.CapFleetMetrics) {
		_, err := e.p.FleetMetrics(e.ctx, e.key)
		e.wantCode("fleet metrics on a driver without "+string(provider.CapFleetMetrics), err, provider.FailedPrecondition)
		return
	}
	before, err := e.p.FleetMetrics(e.ctx, e.key)
	if err != nil {
		t.Fatalf("fleet metrics: %v", err)
	}
	for id, m := range before {
		checkMetrics(t, id, m)
	}
	sender, ok := e.h.(TrafficSender)
	if !ok {
		return
	}
	const n = 5
	if err := sender.SendRequests(e.ctx, e.d, e.key, n); err != nil {
		t.Fatalf("send %d requests through the router: %v", n, err)
	}
	// The router counts a request when it has answered it: poll for the count.
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, err := e.p.FleetMetrics(e.ctx, e.key)
		if err != nil {
			t.Fatalf("fleet metrics: %v", err)
		}
		m := after[f.ID]
		checkMetrics(t, f.ID, m)
		if got := m.Requests - before[f.ID].Requests; got >= n {
			if got != n {
				t.Fatalf("fleet %s: %v more requests counted, want %d", f.ID, got, n)
			}
			if m.Latency.Count-before[f.ID].Latency.Count != n {
				t.Fatalf("fleet %s: %v more latencies observed, want %d", f.ID, m.Latency.Count-before[f.ID].Latency.Count, n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet %s: %v requests counted after sending %d (before: %v)", f.ID, m.Requests, n, before[f.ID].Requests)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkMetrics checks one fleet's counters are consistent: errors within
// requests, buckets ascending and cumulative, within the histogram's count.
func checkMetrics(t *testing.T, id string, m contract.FleetMetrics) {
	t.Helper()
	if m.Errors < 0 || m.Errors > m.Requests {
		t.Fatalf("fleet %s: %v errors of %v requests", id, m.Errors, m.Requests)
	}
	prev := contract.HistogramBucket{UpperBound: -1}
	for _, b := range m.Latency.Buckets {
		if b.UpperBound <= prev.UpperBound || b.Count < prev.Count || b.Count > m.Latency.Count {
			t.Fatalf("fleet %s: latency buckets %+v are not ascending and cumulative within count %v", id, m.Latency.Buckets, m.Latency.Count)
		}
		prev = b
	}
}

// testRouteRules: a driver that claims header routes, stickiness and mirroring
// keeps them in its route, and its guard counts a fleet they name as served;
// one that does not refuses them and keeps its route.
func testRouteRules(e *env) {
	t := e.t
	stable := e.healthy("conformance-rules-stable", 1)
	canary := e.healthy("conformance-rules-canary", 1)
	base := contract.Route{Backends: []contract.Backend{backend(stable, 100), backend(canary, 0)}}
	if err := e.p.SetRoute(e.ctx, e.key, base); err != nil {
		t.Fatalf("set route: %v", err)
	}
	cookie := "imago-fleet"
	if n, ok := e.h.(StickyCookieNamer); ok {
		cookie = n.StickyCookie()
	}
	rules := []struct {
		c     provider.Capability
		rules contract.RouteRules
	}{
		{provider.CapHeaderRoutes, contract.RouteRules{Matches: []contract.MatchRoute{{Name: "canary", FleetID: canary.ID,
			Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}}}}}},
		{provider.CapStickiness, contract.RouteRules{Stickiness: &contract.Stickiness{Cookie: cookie, TTL: contract.Duration(time.Hour)}}},
		{provider.CapMirror, contract.RouteRules{Mirror: &contract.Mirror{FleetID: canary.ID, Percent: 50}}},
	}
	for _, r := range rules {
		route := base
		route.RouteRules = r.rules
		err := e.p.SetRoute(e.ctx, e.key, route)
		if !e.caps.Has(r.c) {
			e.wantCode("set a route with "+string(r.c)+" on a driver without it", err, provider.FailedPrecondition)
			continue
		}
		if err != nil {
			t.Fatalf("set a route with %s: %v", r.c, err)
		}
		got, err := e.p.Route(e.ctx, e.key)
		if err != nil || !reflect.DeepEqual(got.RouteRules, r.rules) {
			t.Fatalf("route after setting %s: rules %+v (%v), want %+v", r.c, got.RouteRules, err, r.rules)
		}
		if r.rules.Stickiness == nil {
			e.wantCode("terminate the fleet "+string(r.c)+" sends traffic to", e.p.Terminate(e.ctx, canary.ID), provider.FailedPrecondition)
		}
	}
	if e.caps.Has(provider.CapHeaderRoutes) {
		bad := base
		bad.Matches = []contract.MatchRoute{{Name: "x", FleetID: "no-such-fleet", Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}}}}
		e.wantCode("set a header route to a fleet outside the route", e.p.SetRoute(e.ctx, e.key, bad), provider.InvalidArgument)
		bad.Matches = []contract.MatchRoute{{Name: "x", FleetID: canary.ID, Match: []contract.MatchRule{{Header: "X-Canary", Cookie: "c", Exact: "1"}}}}
		e.wantCode("set a match rule with both header and cookie", e.p.SetRoute(e.ctx, e.key, bad), provider.InvalidArgument)
	}
	if err := e.p.SetRoute(e.ctx, e.key, base); err != nil {
		t.Fatalf("set the route back: %v", err)
	}
}
