package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imago/imago/internal/contract"
)

// P3: how fast a route write reaches traffic. Two fleets (hello v1 and v2) behind
// one local router; SetRoute flips between them while clients in a closed loop
// record which fleet answered each request. For every switch: from the start of
// the route write to the first answer from the new fleet, and to the first new
// answer after which no request went to the old fleet any more.
func init() {
	Register(Scenario{ID: "P3", Name: "switch latency", Run: runP3})
}

type p3Sample struct {
	sent, done time.Time
	body       string
}

func runP3(ctx context.Context, env *Env) ([]Figure, error) {
	im, err := StartImago(ctx, env)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	key := contract.RouteKey{Service: "hello", Environment: "bench"}
	fleets, err := helloFleets(ctx, env, im, key, 3, "v1", "v2")
	if err != nil {
		return nil, err
	}
	p := im.Deps.Provider
	var routes [2]contract.Route
	for i, f := range fleets {
		routes[i] = contract.Route{Listen: im.Listen, Backends: []contract.Backend{{FleetID: f.ID, Weight: 100, Targets: f.Addresses()}}}
	}
	bodies := [2]string{"hello from v1", "hello from v2"}
	if err := p.SetRoute(ctx, key, routes[0]); err != nil {
		return nil, err
	}

	// Clients: each its own keep-alive connection, as loadgen's.
	const clients = 4
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	samples := make([][]p3Sample, clients)
	errs := make([]int, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for cctx.Err() == nil {
				sent := time.Now()
				resp, err := cl.Get("http://" + im.Listen + "/")
				if err != nil {
					errs[c]++
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				samples[c] = append(samples[c], p3Sample{sent: sent, done: time.Now(), body: strings.TrimSpace(string(b))})
			}
		}(c)
	}

	switches := max(50, 10*env.Runs)
	starts := make([]time.Time, 0, switches)
	var writes []time.Duration
	time.Sleep(200 * time.Millisecond)
	for k := 0; k < switches; k++ {
		t0 := time.Now()
		if err := p.SetRoute(ctx, key, routes[(k+1)%2]); err != nil {
			stop()
			wg.Wait()
			return nil, fmt.Errorf("switch %d: %w", k+1, err)
		}
		writes = append(writes, time.Since(t0))
		starts = append(starts, t0)
		time.Sleep(150 * time.Millisecond)
	}
	end := time.Now()
	stop()
	wg.Wait()

	var all []p3Sample
	failed := 0
	for c := range samples {
		all = append(all, samples[c]...)
		failed += errs[c]
	}
	var firsts, alls []time.Duration
	for k, t0 := range starts {
		// Requests sent just before the next switch may reach the router after
		// it: leave them out of this switch's window.
		next := end
		if k+1 < len(starts) {
			next = starts[k+1]
		}
		t1 := next.Add(-50 * time.Millisecond)
		want, old := bodies[(k+1)%2], bodies[k%2]
		var first, lastOldSent time.Time
		for _, s := range all {
			if s.sent.Before(t0) || !s.sent.Before(t1) {
				continue
			}
			if s.body == want && (first.IsZero() || s.done.Before(first)) {
				first = s.done
			}
			// An old answer that came back after the next switch began may
			// be that switch's doing (a client stalled between taking the
			// time and sending): only one answered before it shows the
			// router still on the old fleet.
			if s.body == old && s.done.Before(next) && s.sent.After(lastOldSent) {
				lastOldSent = s.sent
			}
		}
		var settled time.Time
		for _, s := range all {
			if s.sent.Before(t0) || !s.sent.Before(t1) || s.body != want || !s.sent.After(lastOldSent) {
				continue
			}
			if settled.IsZero() || s.done.Before(settled) {
				settled = s.done
			}
		}
		if first.IsZero() || settled.IsZero() {
			n, nOld, other := 0, 0, ""
			for _, s := range all {
				if !s.sent.Before(t0) && s.sent.Before(t1) {
					n++
					if s.body == old {
						nOld++
					} else if s.body != want {
						other = s.body
					}
				}
			}
			return nil, fmt.Errorf("switch %d: no answer from the new fleet within %s (%d requests sent, %d answered by the old fleet, other answers like %q; SetRoute took %s)",
				k+1, t1.Sub(t0), n, nOld, abbrev(other, 200), writes[k])
		}
		firsts = append(firsts, first.Sub(t0))
		alls = append(alls, settled.Sub(t0))
	}
	env.logf("P3: %d switches, %d requests, %d failed", len(starts), len(all), failed)
	p99all := Percentile(alls, 99)
	return []Figure{
		{ID: "P3", Name: fmt.Sprintf("route write → first request on the new fleet (p50 / p99 of %d switches)", len(firsts)),
			Value: Dur(Percentile(firsts, 50)) + " / " + Dur(Percentile(firsts, 99)), Goal: "p99 ≤ 100 ms", Met: Percentile(firsts, 99) <= 100*time.Millisecond},
		{ID: "P3", Name: fmt.Sprintf("route write → all requests on the new fleet (p50 / p99 of %d switches)", len(alls)),
			Value: Dur(Percentile(alls, 50)) + " / " + Dur(p99all), Goal: "p99 ≤ 10 ms", Met: p99all <= 10*time.Millisecond},
		{ID: "P3", Name: "SetRoute call, returns once the router applied it (p50 / p99)",
			Value: Dur(Percentile(writes, 50)) + " / " + Dur(Percentile(writes, 99)), Goal: "-", Met: true},
		{ID: "P3", Name: fmt.Sprintf("failed requests during the %d switches (%d clients)", len(starts), clients),
			Value: fmt.Sprintf("%d of %d", failed, len(all)+failed), Goal: "0", Met: failed == 0},
	}, nil
}

func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// helloFleets imports hello at each version and provisions a healthy fleet of
// size instances of each for key, in the order of versions.
func helloFleets(ctx context.Context, env *Env, im *Imago, key contract.RouteKey, size int, versions ...string) ([]contract.Fleet, error) {
	images, err := helloImages(ctx, env, im, versions...)
	if err != nil {
		return nil, err
	}
	p := im.Deps.Provider
	hc := &http.Client{Timeout: 5 * time.Second}
	fleets := make([]contract.Fleet, 0, len(images))
	for i, img := range images {
		f, err := p.Provision(ctx, contract.ProvisionRequest{Token: fmt.Sprintf("%s/%d", key, i), Service: key.Service,
			Environment: key.Environment, ImageID: img, Size: size})
		if err != nil {
			return nil, err
		}
		if err := WaitHealthy(ctx, p, hc, f.ID, "/healthz", 50*time.Millisecond, 30*time.Second); err != nil {
			return nil, err
		}
		fleets = append(fleets, f)
	}
	return fleets, nil
}
