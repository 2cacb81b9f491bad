package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/router"
)

// TestSetRoutePushesAndKeepsTheFile: SetRoute on a running router pushes the
// route through the router's admin endpoint and writes the route file, its
// durable copy, with the same generation; it recovers from a router ahead of
// the file (a push whose SetRoute failed before the file was written) and from
// a route file that went away; and a router without a push token (started by
// an older imago) still gets the route through its file watch.
func TestSetRoutePushesAndKeepsTheFile(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	fa := e.provision("tok-a", e.image("A").ID, 1)
	fb := e.provision("tok-b", e.image("B").ID, 1)
	key := contract.RouteKey{Service: "web", Environment: "push"}
	to := func(f contract.Fleet) contract.Route {
		return contract.Route{Backends: []contract.Backend{{FleetID: f.ID, Weight: 100, Targets: f.Addresses()}}}
	}
	// inStep checks that the router and the route file hold generation gen,
	// routing to f, and that every request goes to f.
	inStep := func(what string, gen int64, f contract.Fleet, name string) router.RunInfo {
		t.Helper()
		ri, err := e.d.RouterProcess(key)
		if err != nil {
			t.Fatal(err)
		}
		st, err := router.GetStatus(ctx, ri.Admin)
		if err != nil || st.Generation != gen || len(st.Backends) != 1 || st.Backends[0].FleetID != f.ID {
			t.Fatalf("%s: router applies %+v, %v; want generation %d on %s", what, st, err, gen, f.ID)
		}
		file, err := router.ReadFile(e.d.routeFile(key))
		if err != nil || file.Generation != gen || len(file.Backends) != 1 || file.Backends[0].FleetID != f.ID {
			t.Fatalf("%s: route file %+v, %v; want generation %d on %s", what, file, err, gen, f.ID)
		}
		if c := countAnswers(t, st.Listen, 20); c[name] != 20 {
			t.Fatalf("%s: answers %v, want 20 from %s", what, c, name)
		}
		return ri
	}
	routerLog := func() string {
		b, _ := os.ReadFile(e.d.routerLog(key))
		return string(b)
	}

	if err := e.d.SetRoute(ctx, key, to(fa)); err != nil {
		t.Fatal(err)
	}
	ri := inStep("first route, new router", 1, fa, "A")
	// The push races the router's file watch (the file is written at the same
	// time); either may apply a generation, never both, and the push wins
	// unless the machine holds it up.
	gen := int64(1)
	for i := range 10 {
		f, name := fb, "B"
		if i%2 == 1 {
			f, name = fa, "A"
		}
		if err := e.d.SetRoute(ctx, key, to(f)); err != nil {
			t.Fatal(err)
		}
		gen++
		inStep(fmt.Sprintf("switch %d to %s", i+1, name), gen, f, name)
	}
	if l := routerLog(); !strings.Contains(l, " (pushed)\n") {
		t.Fatalf("router log shows no pushed generation in 10 switches:\n%s", l)
	}

	// A push the route file never saw: the router is ahead of it.
	if _, err := router.PushRoute(ctx, ri.Admin, ri.AdminToken, router.File{Generation: gen + 1, Listen: ri.Listen, Backends: to(fa).Backends}); err != nil {
		t.Fatal(err)
	}
	if err := e.d.SetRoute(ctx, key, to(fb)); err != nil {
		t.Fatal(err)
	}
	inStep("switch to B over a router ahead of its file", gen+2, fb, "B")

	// The route file went away: the next generation follows the router's.
	if err := os.Remove(e.d.routeFile(key)); err != nil {
		t.Fatal(err)
	}
	if err := e.d.SetRoute(ctx, key, to(fa)); err != nil {
		t.Fatal(err)
	}
	inStep("switch to A after the route file went away", gen+3, fa, "A")

	// A router without a push token (as one an older imago started) reads
	// the route file.
	ri.AdminToken = ""
	data, _ := json.Marshal(ri)
	if err := router.WriteAtomic(e.d.runFile(key), data); err != nil {
		t.Fatal(err)
	}
	if err := e.d.SetRoute(ctx, key, to(fb)); err != nil {
		t.Fatal(err)
	}
	inStep("switch to B through the file watch", gen+4, fb, "B")
	if l, want := routerLog(), fmt.Sprintf("applied route generation %d\n", gen+4); !strings.Contains(l, want) {
		t.Fatalf("router log does not show generation %d read from the file:\n%s", gen+4, l)
	}

	if err := e.d.StopRouter(ctx, key); err != nil {
		t.Fatal(err)
	}
	for _, f := range []contract.Fleet{fa, fb} {
		if err := e.d.Terminate(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHeaderRouteThroughTheRouterProcess: a header route set through the local
// driver reaches the router process (push and file alike), which sends the
// matching requests to the canary at weight 0.
func TestHeaderRouteThroughTheRouterProcess(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	stable := e.provision("tok-stable", e.image("A").ID, 1)
	canary := e.provision("tok-canary", e.image("B").ID, 1)
	key := contract.RouteKey{Service: "web", Environment: "headers"}
	route := contract.Route{Backends: []contract.Backend{
		{FleetID: stable.ID, Weight: 100, Targets: stable.Addresses()},
		{FleetID: canary.ID, Weight: 0, Targets: canary.Addresses()},
	}, RouteRules: contract.RouteRules{Matches: []contract.MatchRoute{{Name: "canary", FleetID: canary.ID,
		Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}}}}}}
	if err := e.d.SetRoute(ctx, key, route); err != nil {
		t.Fatal(err)
	}
	ri, err := e.d.RouterProcess(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := router.GetStatus(ctx, ri.Admin)
	if err != nil || len(st.Matches) != 1 || st.Matches[0].FleetID != canary.ID {
		t.Fatalf("router applies %+v (%v), want the header route to %s", st, err, canary.ID)
	}
	file, err := router.ReadFile(e.d.routeFile(key))
	if err != nil || len(file.Matches) != 1 {
		t.Fatalf("route file %+v (%v), want the header route kept", file, err)
	}
	for i := range 20 {
		req, _ := http.NewRequest("GET", "http://"+st.Listen+"/", nil)
		want := "A"
		if i%2 == 0 {
			req.Header.Set("X-Canary", "1")
			want = "B"
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != want {
			t.Fatalf("request %d (X-Canary %q) got %q, want %q", i, req.Header.Get("X-Canary"), body, want)
		}
	}
}
