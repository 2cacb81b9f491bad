package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or 10s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flaky is a server that answers its version, and a 500 on every 4th request.
type flaky struct {
	served  atomic.Int64
	version atomic.Value // string
	delay   time.Duration
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(f.delay)
	v := f.version.Load().(string)
	if f.served.Add(1)%4 == 0 {
		http.Error(w, "boom "+v, http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%s\n", v)
}

func TestPhasesAndCounts(t *testing.T) {
	f := &flaky{delay: 2 * time.Millisecond}
	f.version.Store("v1")
	srv := httptest.NewServer(f)
	defer srv.Close()

	const clients = 8
	run := Start(context.Background(), Options{URL: srv.URL + "/", Clients: clients})
	waitFor(t, "200 requests in phase start", func() bool { return run.Snapshot().Requests >= 200 })
	if s := run.Snapshot(); s.Name != "start" || s.TransportErrors != 0 || s.ServerErrors == 0 || s.Duration <= 0 {
		t.Fatalf("snapshot: %+v", s)
	}
	f.version.Store("v2")
	run.Mark("v2")
	waitFor(t, "200 requests in phase v2", func() bool { return run.Snapshot().Requests >= 200 })
	rep := run.Stop()
	served := int(f.served.Load())
	time.Sleep(50 * time.Millisecond)
	if after := int(f.served.Load()); after != served {
		t.Fatalf("%d requests arrived after Stop returned", after-served)
	}
	for _, p := range append(rep.Phases, rep.Total) {
		t.Log(p)
	}

	if len(rep.Phases) != 2 || rep.Phases[0].Name != "start" || rep.Phases[1].Name != "v2" || rep.Total.Name != "total" {
		t.Fatalf("phases: %+v", rep.Phases)
	}
	tot := rep.Total
	// Every request sent completed, and counts once.
	if tot.Requests != served || tot.TransportErrors != 0 || tot.ServerErrors != served/4 || tot.Failures() != served/4 {
		t.Fatalf("total: %d requests, %d transport errors, %d 5xx; the server served %d (every 4th a 500)",
			tot.Requests, tot.TransportErrors, tot.ServerErrors, served)
	}
	if tot.Status[200] != served-served/4 || tot.Status[500] != served/4 || len(tot.Status) != 2 {
		t.Fatalf("total status counts: %v", tot.Status)
	}
	if r := tot.FailureRate(); r < 0.24 || r > 0.26 {
		t.Fatalf("failure rate %v, want 0.25", r)
	}
	if ok := tot.Bodies["v1"] + tot.Bodies["v2"]; ok != tot.Status[200] {
		t.Fatalf("bodies %v, want %d answers v1 or v2", tot.Bodies, tot.Status[200])
	}
	if boom := tot.BodiesWithPrefix("boom "); boom != tot.Status[500] {
		t.Fatalf("bodies %v, want %d booms", tot.Bodies, tot.Status[500])
	}
	// The phases add up to the total.
	start, v2 := rep.Phases[0], rep.Phases[1]
	if start.Requests+v2.Requests != tot.Requests || start.ServerErrors+v2.ServerErrors != tot.ServerErrors ||
		start.Bodies["v1"]+v2.Bodies["v1"] != tot.Bodies["v1"] {
		t.Fatalf("phases do not add up: %+v %+v total %+v", start, v2, tot)
	}
	if !v2.Start.After(start.Start) || !start.Start.Add(start.Duration).Equal(v2.Start) ||
		!tot.Start.Equal(start.Start) || tot.Duration != start.Duration+v2.Duration {
		t.Fatalf("phase times: start %v+%v, v2 %v+%v, total %v+%v", start.Start, start.Duration, v2.Start, v2.Duration, tot.Start, tot.Duration)
	}
	// Requests sent after Mark("v2") all met v2 (the switch came first); phase
	// start holds at most one v2 answer per client (sent before the Mark).
	if n := v2.BodiesWithPrefix("v1") + v2.BodiesWithPrefix("boom v1"); n != 0 || v2.BodiesWithPrefix("v2")+v2.BodiesWithPrefix("boom v2") != v2.Requests {
		t.Fatalf("phase v2 bodies: %v", v2.Bodies)
	}
	if n := start.BodiesWithPrefix("v2") + start.BodiesWithPrefix("boom v2"); n > clients {
		t.Fatalf("phase start has %d v2 answers, want at most %d: %v", n, clients, start.Bodies)
	}
	if start.BodiesWithPrefix("v1")+start.BodiesWithPrefix("boom v1") < 200-clients {
		t.Fatalf("phase start bodies: %v", start.Bodies)
	}
	// Latency: the server takes 2ms.
	if tot.P50 < 2*time.Millisecond || tot.P99 < tot.P50 || tot.Max < tot.P99 || tot.Mean < 2*time.Millisecond {
		t.Fatalf("latency: p50 %v p99 %v mean %v max %v", tot.P50, tot.P99, tot.Mean, tot.Max)
	}

	// Stop again: the same report; Mark after the end does nothing.
	run.Mark("late")
	if rep2 := run.Stop(); len(rep2.Phases) != 2 || rep2.Total.Requests != tot.Requests || rep2.Total.Duration != tot.Duration {
		t.Fatalf("second Stop: %+v", rep2.Total)
	}
	select {
	case <-run.Done():
	default:
		t.Fatal("Done is open after Stop")
	}
}

func TestTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connections are refused

	run := Start(context.Background(), Options{URL: "http://" + addr + "/", Clients: 2, ErrorPause: 5 * time.Millisecond})
	waitFor(t, "10 transport errors", func() bool { return run.Snapshot().TransportErrors >= 10 })
	rep := run.Stop()
	tot := rep.Total
	if tot.Requests != tot.TransportErrors || tot.ServerErrors != 0 || len(tot.Status) != 0 || len(tot.Bodies) != 0 {
		t.Fatalf("total: %+v", tot)
	}
	// The pause after an error bounds the rate: 2 clients, >= 5ms each.
	if limit := 2 * (tot.Duration/(5*time.Millisecond) + 1); time.Duration(tot.Requests) > limit {
		t.Fatalf("%d requests in %v: the error pause did not hold", tot.Requests, tot.Duration)
	}
	if len(tot.ErrorSamples) == 0 || !strings.Contains(tot.ErrorSamples[0], "connection refused") {
		t.Fatalf("error samples: %q", tot.ErrorSamples)
	}
}

func TestThinkTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	run := Start(context.Background(), Options{URL: srv.URL, Clients: 2, ThinkTime: 20 * time.Millisecond})
	waitFor(t, "10 requests", func() bool { return run.Snapshot().Requests >= 10 })
	tot := run.Stop().Total
	if tot.Failures() != 0 || tot.Bodies["ok"] != tot.Requests {
		t.Fatalf("total: %+v", tot)
	}
	// The think time bounds the rate: 2 clients, >= 20ms between requests each.
	if limit := 2 * (tot.Duration/(20*time.Millisecond) + 1); time.Duration(tot.Requests) > limit {
		t.Fatalf("%d requests in %v: the think time did not hold", tot.Requests, tot.Duration)
	}
}

func TestBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	// The context ends the run.
	ctx, cancel := context.WithCancel(context.Background())
	run := Start(ctx, Options{URL: srv.URL, Clients: 4})
	waitFor(t, "some requests", func() bool { return run.Snapshot().Requests > 10 })
	cancel()
	select {
	case <-run.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the run did not end within 5s of its context")
	}
	if rep := run.Stop(); rep.Total.Failures() != 0 || rep.Total.Bodies["ok"] != rep.Total.Requests {
		t.Fatalf("after cancel: %+v", rep.Total)
	}

	// MaxDuration ends a run nobody stops.
	start := time.Now()
	run = Start(context.Background(), Options{URL: srv.URL, Clients: 2, MaxDuration: 200 * time.Millisecond})
	select {
	case <-run.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the run did not end by itself")
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("the run ended after %v, before its MaxDuration", took)
	}
	rep := run.Stop()
	if d := rep.Total.Duration; d < 200*time.Millisecond || d > time.Second || rep.Total.Requests == 0 || rep.Total.Failures() != 0 {
		t.Fatalf("total after MaxDuration: %+v", rep.Total)
	}
}

// Requests in flight when the run stops complete and count; none is cut off.
func TestStopLetsRequestsFinish(t *testing.T) {
	var inflight atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "slow")
	}))
	defer srv.Close()
	run := Start(context.Background(), Options{URL: srv.URL, Clients: 4})
	waitFor(t, "4 requests in flight", func() bool { return inflight.Load() == 4 })
	rep := run.Stop()
	if tot := rep.Total; tot.Requests != 4 || tot.Bodies["slow"] != 4 || tot.Failures() != 0 || tot.P50 < 300*time.Millisecond {
		t.Fatalf("total: %+v", tot)
	}
}

// Each client keeps its own connection; NoKeepAlive opens one per request.
func TestConnections(t *testing.T) {
	for _, noKeepAlive := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoKeepAlive=%v", noKeepAlive), func(t *testing.T) {
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
			srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			run := Start(context.Background(), Options{URL: srv.URL, Clients: 3, NoKeepAlive: noKeepAlive})
			waitFor(t, "100 requests", func() bool { return run.Snapshot().Requests >= 100 })
			rep := run.Stop()
			want := 3
			if noKeepAlive {
				want = rep.Total.Requests
			}
			if got := int(conns.Load()); got != want || rep.Total.Failures() != 0 {
				t.Fatalf("%d connections for %d requests (%d failures), want %d", got, rep.Total.Requests, rep.Total.Failures(), want)
			}
		})
	}
}

func TestPhaseLimits(t *testing.T) {
	p := newPhase("p", time.Now())
	for i := 1; i <= 100; i++ {
		p.record(200, fmt.Sprintf("  body %d\n", i%(MaxBodies+10)), nil, time.Duration(i)*time.Millisecond)
	}
	for i := range MaxBodies + 5 {
		p.record(200, fmt.Sprint("other ", i), nil, time.Millisecond)
	}
	p.record(200, strings.Repeat("x", 2*BodyKeyLen), nil, time.Millisecond)
	s := p.snapshot(time.Now())
	if s.Bodies["body 7"] != 1 {
		t.Fatalf("bodies are not trimmed: %d keys", len(s.Bodies))
	}
	if len(s.Bodies) != MaxBodies+1 || s.Bodies[OtherBodies] != 100+MaxBodies+5+1-MaxBodies {
		t.Fatalf("%d body keys, %d under %q", len(s.Bodies), s.Bodies[OtherBodies], OtherBodies)
	}

	// Quantiles are within 2% of the exact ones.
	h := newPhase("h", time.Now())
	for i := 1; i <= 1000; i++ {
		h.record(200, "ok", nil, time.Duration(i)*100*time.Microsecond)
	}
	s = h.snapshot(time.Now())
	near := func(got, want time.Duration) bool {
		return got >= want && float64(got) <= 1.021*float64(want)
	}
	if !near(s.P50, 50*time.Millisecond) || !near(s.P99, 99*time.Millisecond) || s.Max != 100*time.Millisecond || s.Mean != 50050*time.Microsecond {
		t.Fatalf("p50 %v p99 %v max %v mean %v", s.P50, s.P99, s.Max, s.Mean)
	}
	// One sample: every quantile is that sample.
	one := newPhase("one", time.Now())
	one.record(0, "", fmt.Errorf("x"), 1234*time.Microsecond)
	if s := one.snapshot(time.Now()); s.P50 != 1234*time.Microsecond || s.P99 != s.P50 || s.Requests != 1 || s.TransportErrors != 1 {
		t.Fatalf("one sample: %+v", s)
	}
	if bucketOf(0) != 0 || bucketOf(histMin) != 0 || bucketOf(100*time.Hour) != histBuckets-1 {
		t.Fatal("bucket bounds")
	}
}
