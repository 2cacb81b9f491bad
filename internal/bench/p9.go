package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imago/imago/internal/contract"
)

// P9: what mirroring costs the live path. Two fleets of hello behind one local
// router, the live one at 100 %; rounds alternate between a route without a
// mirror and the same route mirroring 100 % of requests to the other fleet,
// while clients time every live request. Issue 17: p99 with the mirror within
// 1 ms of p99 without it.
//
// Two loads: closed-loop clients, which keep the 2 cores of the bench machine
// saturated (every copy then takes CPU from a live request, whatever the
// router does), and clients paced at a fixed rate well below what the machine
// serves, as a service runs, timed from each request's scheduled start (so a
// request that waits behind a slow one counts its wait: no coordinated
// omission). The goal is the same for both; only the paced one measures what
// the router's mirroring costs rather than what a second fleet's CPU does.
func init() {
	Register(Scenario{ID: "P9", Name: "mirror overhead", Run: runP9})
}

func runP9(ctx context.Context, env *Env) ([]Figure, error) {
	im, err := StartImago(ctx, env)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	key := contract.RouteKey{Service: "hello", Environment: "bench-mirror"}
	fleets, err := helloFleets(ctx, env, im, key, 2, "v1", "v2")
	if err != nil {
		return nil, err
	}
	p := im.Deps.Provider
	live, canary := fleets[0], fleets[1]
	plain := contract.Route{Listen: im.Listen, Backends: []contract.Backend{
		{FleetID: live.ID, Weight: 100, Targets: live.Addresses()},
		{FleetID: canary.ID, Weight: 0, Targets: canary.Addresses()},
	}}
	mirrored := plain
	mirrored.Mirror = &contract.Mirror{FleetID: canary.ID, Percent: 100}

	const clients, perRound = 4, 500
	// paced: 4 clients × 50 requests/s, 200 requests a round (1 s)
	const pacedRate, pacedPerRound = 50, 200
	var without, with, pacedWithout, pacedWith []time.Duration
	failed := 0
	url := "http://" + im.Listen + "/"
	for round := range 2 * max(env.Runs, 5) {
		route, into, paced := plain, &without, &pacedWithout
		if round%2 == 1 {
			route, into, paced = mirrored, &with, &pacedWith
		}
		if err := p.SetRoute(ctx, key, route); err != nil {
			return nil, err
		}
		lat, bad := timeRequests(ctx, url, clients, perRound)
		*into = append(*into, lat...)
		failed += bad
		lat, bad = timePaced(ctx, url, clients, pacedRate, pacedPerRound)
		*paced = append(*paced, lat...)
		failed += bad
	}
	if err := p.SetRoute(ctx, key, plain); err != nil {
		return nil, err
	}
	// Copies are counted on the canary once each is done: wait for them.
	copies := 0.0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		m, err := p.FleetMetrics(ctx, key)
		if err != nil {
			return nil, err
		}
		if copies = m[canary.ID].Requests; copies >= float64(len(with)+len(pacedWith)) {
			break
		}
	}
	p99a, p99b := Percentile(without, 99), Percentile(with, 99)
	q99a, q99b := Percentile(pacedWithout, 99), Percentile(pacedWith, 99)
	env.logf("P9: closed loop: %d requests without the mirror, %d with; p50 %s and %s", len(without), len(with),
		Dur(Percentile(without, 50)), Dur(Percentile(with, 50)))
	env.logf("P9: paced: %d requests without the mirror, %d with; p50 %s and %s", len(pacedWithout), len(pacedWith),
		Dur(Percentile(pacedWithout, 50)), Dur(Percentile(pacedWith, 50)))
	mirroredAll := len(with) + len(pacedWith)
	return []Figure{
		{ID: "P9", Name: fmt.Sprintf("live p99 without / with a 100%% mirror (%d closed-loop clients, %d requests each)", clients, len(with)),
			Value: Dur(p99a) + " / " + Dur(p99b), Goal: "-", Met: true},
		{ID: "P9", Name: "live p99 with the mirror − without, closed loop (both cores saturated)", Value: Dur(p99b - p99a), Goal: "≤ 1 ms", Met: p99b-p99a <= time.Millisecond},
		{ID: "P9", Name: fmt.Sprintf("live p99 without / with a 100%% mirror (%d clients paced at %d/s each, %d requests each)", clients, pacedRate, len(pacedWith)),
			Value: Dur(q99a) + " / " + Dur(q99b), Goal: "-", Met: true},
		{ID: "P9", Name: "live p99 with the mirror − without, paced", Value: Dur(q99b - q99a), Goal: "≤ 1 ms", Met: q99b-q99a <= time.Millisecond},
		{ID: "P9", Name: "copies counted on the mirrored fleet", Value: fmt.Sprintf("%.0f of %d", copies, mirroredAll),
			Goal: "all", Met: copies == float64(mirroredAll)},
		{ID: "P9", Name: "failed live requests", Value: fmt.Sprintf("%d", failed), Goal: "0", Met: failed == 0},
	}, nil
}

// timeRequests sends n GETs to url from clients closed-loop clients (one
// keep-alive connection each) and returns each successful one's duration and
// the number that failed.
func timeRequests(ctx context.Context, url string, clients, n int) ([]time.Duration, int) {
	var next atomic.Int64
	return runClients(url, clients, func(_ int, get func(since time.Time)) {
		for next.Add(1) <= int64(n) && ctx.Err() == nil {
			get(time.Now())
		}
	})
}

// timePaced sends n GETs to url from clients clients, each at rate requests a
// second on its own keep-alive connection, and returns each successful one's
// time from its scheduled start to its whole answer, and the number that
// failed. A client that falls behind sends at once, and the request's wait
// counts in its time.
func timePaced(ctx context.Context, url string, clients, rate, n int) ([]time.Duration, int) {
	every := time.Second / time.Duration(rate)
	per := (n + clients - 1) / clients
	start := time.Now()
	return runClients(url, clients, func(c int, get func(since time.Time)) {
		// clients start spread over one interval, not all at once
		first := start.Add(every * time.Duration(c) / time.Duration(clients))
		for i := range per {
			due := first.Add(every * time.Duration(i))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(due)): // the schedule of a paced client, not a wait for readiness
			}
			get(due)
		}
	})
}

// runClients runs clients clients at once, each with its own keep-alive
// connection to url through get, which GETs url and keeps the time since since
// of a 200 or counts a failure; it returns the times and the failures.
func runClients(url string, clients int, client func(c int, get func(since time.Time))) ([]time.Duration, int) {
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer cl.CloseIdleConnections()
			client(c, func(since time.Time) {
				d, ok := getTimed(cl, url, since)
				if !ok {
					failed.Add(1)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	return lat, int(failed.Load())
}

// getTimed GETs url and reads the whole answer; the time is from since (the
// request's start, or its scheduled start) to the answer's end, ok whether it
// was a 200.
func getTimed(cl *http.Client, url string, since time.Time) (time.Duration, bool) {
	resp, err := cl.Get(url)
	if err != nil {
		return 0, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(since), resp.StatusCode == http.StatusOK
}
