package activities

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/probe"
	"github.com/imago/imago/internal/provider"
)

func healthServer(t *testing.T, status int) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// WaitHealthy probes every running instance (more than probe.MaxConcurrent
// here) and, when some do not pass, names each one and why.
func TestWaitHealthyProbesEveryInstanceAndNamesEachProblem(t *testing.T) {
	ok, down := healthServer(t, http.StatusOK), healthServer(t, http.StatusServiceUnavailable)
	f := contract.Fleet{ID: "fl-p", Service: "web", Environment: "test", ImageID: "img-1", Token: "tok"}
	for i := range probe.MaxConcurrent + 8 {
		f.Instances = append(f.Instances, contract.Instance{ID: fmt.Sprintf("fl-p-%02d", i), Address: ok, State: contract.InstanceRunning})
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &Activities{Provider: provider.New("fake", &fakeDriver{fleet: f})}
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.WaitHealthy, contract.WaitHealthyInput{FleetID: f.ID, Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var res contract.WaitHealthyResult
	if err := val.Get(&res); err != nil || res.Healthy != len(f.Instances) {
		t.Fatalf("all healthy: %+v %v", res, err)
	}

	f.Instances = append(f.Instances,
		contract.Instance{ID: "fl-p-zz", Address: down, State: contract.InstanceRunning},
		exitedInstance("fl-p-yy", "exit status 1", ""))
	typ, msg := waitHealthy(t, f, contract.WaitHealthyInput{Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	want := fmt.Sprintf("fleet fl-p not healthy within 200ms: %d of %d instances pass /healthz; fl-p-yy is exited; fl-p-zz: /healthz answered 503",
		probe.MaxConcurrent+8, probe.MaxConcurrent+10)
	if typ != contract.ErrHealthTimeout || !strings.HasPrefix(msg, want+" (type: ") {
		t.Fatalf("failure %s: %q, want %q", typ, msg, want)
	}
}

// The traffic guard lets a route through when each weighted fleet has one
// healthy instance, and refuses it, naming the fleet, when one has none.
func TestTrafficGuardNeedsOneHealthyInstancePerWeightedFleet(t *testing.T) {
	ok, down := healthServer(t, http.StatusOK), healthServer(t, http.StatusInternalServerError)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &Activities{Provider: provider.New("fake", &fakeDriver{fleet: fakeFleet()})}
	env.RegisterActivity(a)
	key := contract.RouteKey{Service: "web", Environment: "test"}
	route := func(backends ...contract.Backend) contract.SetRouteInput {
		return contract.SetRouteInput{Key: key, HealthPath: "/healthz", Route: contract.Route{Listen: "127.0.0.1:8080", Backends: backends}}
	}
	if _, err := env.ExecuteActivity(a.SetRoute, route(
		contract.Backend{FleetID: "fl-a", Weight: 100, Targets: []string{"127.0.0.1:1", down, ok}},
		contract.Backend{FleetID: "fl-old", Weight: 0, Targets: []string{"127.0.0.1:1"}},
	)); err != nil {
		t.Fatalf("a fleet with one healthy instance: %v", err)
	}
	_, err := env.ExecuteActivity(a.SetRoute, route(
		contract.Backend{FleetID: "fl-a", Weight: 90, Targets: []string{ok}},
		contract.Backend{FleetID: "fl-b", Weight: 10, Targets: []string{"127.0.0.1:1", down}},
	))
	var ae *temporal.ApplicationError
	want := "traffic guard: refusing to send 10% of test/web to fleet fl-b: none of its 2 instances passes /healthz; the current route stays"
	if !errors.As(err, &ae) || ae.Type() != contract.ErrTrafficGuard || !ae.NonRetryable() || !strings.Contains(ae.Error(), want) {
		t.Fatalf("a fleet without a healthy instance: %v, want %s %q", err, contract.ErrTrafficGuard, want)
	}
}

// A fleet at weight 0 that a header route sends requests to is guarded as a
// weighted one: without a healthy instance the route is refused.
func TestTrafficGuardCoversFleetsOfRouteRules(t *testing.T) {
	ok, down := healthServer(t, http.StatusOK), healthServer(t, http.StatusInternalServerError)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &Activities{Provider: provider.New("fake", &fakeDriver{fleet: fakeFleet()})}
	env.RegisterActivity(a)
	in := contract.SetRouteInput{Key: contract.RouteKey{Service: "web", Environment: "test"}, HealthPath: "/healthz", Route: contract.Route{
		Backends: []contract.Backend{{FleetID: "fl-a", Weight: 100, Targets: []string{ok}}, {FleetID: "fl-b", Targets: []string{down}}},
		RouteRules: contract.RouteRules{Matches: []contract.MatchRoute{{Name: "canary", FleetID: "fl-b",
			Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}}}}},
	}}
	_, err := env.ExecuteActivity(a.SetRoute, in)
	want := "traffic guard: refusing to send the requests route rules of test/web pick to fleet fl-b: none of its 1 instances passes /healthz"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a header route to a fleet without a healthy instance: %v, want %q", err, want)
	}
}
