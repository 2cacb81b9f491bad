package local

import (
	"context"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/router"
)

// TestRegionsAreIndependentRouters: one service and environment in two
// regions is two routers — two processes, two route files, two listen
// addresses — and switching one region's traffic leaves the other's alone;
// the environment without a region is a third. A fleet keeps its region.
func TestRegionsAreIndependentRouters(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	fa := e.provision("tok-a", e.image("A").ID, 1)
	fb := e.provision("tok-b", e.image("B").ID, 1)
	eu := contract.RouteKey{Service: "web", Environment: "test", Region: "eu-west-1"}
	us := contract.RouteKey{Service: "web", Environment: "test", Region: "us-east-1"}
	plain := contract.RouteKey{Service: "web", Environment: "test"}
	to := func(listen string, f contract.Fleet) contract.Route {
		return contract.Route{Listen: listen, Backends: []contract.Backend{{FleetID: f.ID, Weight: 100, Targets: f.Addresses()}}}
	}
	listen := map[contract.RouteKey]string{eu: freeAddr(t), us: freeAddr(t), plain: freeAddr(t)}
	for k, f := range map[contract.RouteKey]contract.Fleet{eu: fa, us: fb, plain: fa} {
		if err := e.d.SetRoute(ctx, k, to(listen[k], f)); err != nil {
			t.Fatalf("set route %s: %v", k, err)
		}
	}
	answers := func(k contract.RouteKey, want string) {
		t.Helper()
		if c := countAnswers(t, listen[k], 10); c[want] != 10 {
			t.Fatalf("%s answers %v, want 10 from %s", k, c, want)
		}
	}
	answers(eu, "A")
	answers(us, "B")
	answers(plain, "A")

	pids := map[int]contract.RouteKey{}
	files := map[string]contract.RouteKey{}
	for _, k := range []contract.RouteKey{eu, us, plain} {
		ri, err := e.d.RouterProcess(k)
		if err != nil {
			t.Fatalf("router of %s: %v", k, err)
		}
		if other, dup := pids[ri.PID]; dup {
			t.Fatalf("%s and %s share router process %d", k, other, ri.PID)
		}
		pids[ri.PID] = k
		if other, dup := files[e.d.routeFile(k)]; dup {
			t.Fatalf("%s and %s share route file %s", k, other, e.d.routeFile(k))
		}
		files[e.d.routeFile(k)] = k
		if _, err := router.ReadFile(e.d.routeFile(k)); err != nil {
			t.Fatalf("route file of %s: %v", k, err)
		}
	}

	// Switching eu to B leaves us (B) and the region-less router (A) alone.
	if err := e.d.SetRoute(ctx, eu, to(listen[eu], fb)); err != nil {
		t.Fatal(err)
	}
	answers(eu, "B")
	answers(us, "B")
	answers(plain, "A")
	if r, err := e.d.Route(ctx, us); err != nil || len(r.Backends) != 1 || r.Backends[0].FleetID != fb.ID {
		t.Fatalf("route of %s after eu's switch: %+v, %v", us, r, err)
	}
	if err := e.d.SetRoute(ctx, us, to(listen[us], fa)); err != nil {
		t.Fatal(err)
	}
	answers(us, "A")
	answers(eu, "B")

	// A fleet provisioned for a region keeps it; a bad region is refused.
	fr, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: "tok-r", Service: "web", Environment: "test", Region: "eu-west-1", ImageID: e.image("A").ID, Size: 1})
	if err != nil || fr.Region != "eu-west-1" {
		t.Fatalf("provision in eu-west-1: %+v, %v", fr, err)
	}
	if err := e.d.SetRoute(ctx, contract.RouteKey{Service: "web", Environment: "test", Region: "eu/west"}, to(freeAddr(t), fa)); provider.ErrorCode(err) != provider.InvalidArgument {
		t.Fatalf("a region with '/': %v, want InvalidArgument", err)
	}
}
