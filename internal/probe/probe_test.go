package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func server(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// refused is an address nothing listens on (port 1 is not served on loopback).
const refused = "127.0.0.1:1"

// All probes in parallel, never more than MaxConcurrent at once, and says of
// each address why it is not healthy.
func TestAllBoundsConcurrencyAndReportsEach(t *testing.T) {
	var inflight, most atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	ok := server(t, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == MaxConcurrent {
			once.Do(func() { close(release) })
		}
		select { // the first MaxConcurrent probes wait for each other: they run at once
		case <-release:
		case <-r.Context().Done():
		}
	})
	down := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	addrs := []string{down, refused}
	for range MaxConcurrent + 8 {
		addrs = append(addrs, ok)
	}
	errs := All(context.Background(), Client(), addrs, "/healthz")
	if len(errs) != len(addrs) {
		t.Fatalf("%d outcomes for %d addresses", len(errs), len(addrs))
	}
	if errs[0] == nil || errs[0].Error() != "/healthz answered 503" {
		t.Errorf("503: %v", errs[0])
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "connection refused") {
		t.Errorf("nothing listening: %v", errs[1])
	}
	for i, err := range errs[2:] {
		if err != nil {
			t.Errorf("healthy instance %d: %v", i, err)
		}
	}
	if m := most.Load(); m > MaxConcurrent {
		t.Errorf("%d probes in flight at once, want at most %d", m, MaxConcurrent)
	}
}

// Each probe has its own deadline (the client's timeout): one that hangs fails
// alone.
func TestAllGivesEachProbeItsDeadline(t *testing.T) {
	hang := server(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ok := server(t, func(w http.ResponseWriter, r *http.Request) {})
	c := Client()
	c.Timeout = 200 * time.Millisecond
	errs := All(context.Background(), c, []string{hang, ok}, "/")
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "Client.Timeout") {
		t.Errorf("hanging instance: %v, want the probe's timeout", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("healthy instance: %v", errs[1])
	}
}

// Any stops at the first healthy answer: the probe still waiting is cancelled.
func TestAnyStopsAtTheFirstHealthy(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	hang := server(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(cancelled)
	})
	// The healthy instance answers once the hanging probe has reached its
	// server: a probe cancelled before it is sent never reaches a handler.
	ok := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-started:
		case <-r.Context().Done():
		}
	})
	down := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	c := &http.Client{} // no timeout: only Any's cancellation ends the hanging probe
	if !Any(context.Background(), c, []string{hang, down, ok}, "/") {
		t.Fatal("one healthy instance: Any = false")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe of the hanging instance was not cancelled")
	}
	if Any(context.Background(), c, []string{down, refused}, "/") {
		t.Error("no healthy instance: Any = true")
	}
	if Any(context.Background(), c, nil, "/") {
		t.Error("no instance: Any = true")
	}
}

// Redirects are answers, not followed.
func TestClientFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int32
	target := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	redirect := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+target+"/", http.StatusFound)
	})
	if err := Healthy(context.Background(), Client(), redirect, "/healthz"); err == nil || err.Error() != "/healthz answered 302" {
		t.Errorf("redirect: %v", err)
	}
	if hits.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

// A health wait probes again FirstRetry after its first round, twice as long
// after each next one, and every interval once the doubling reaches it.
func TestBackoffDoublesFromFirstRetryUpToTheInterval(t *testing.T) {
	next := Backoff(200 * time.Millisecond)
	var got []time.Duration
	for range 7 {
		got = append(got, next())
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond,
		160 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	short := Backoff(4 * time.Millisecond)
	if a, b := short(), short(); a != 4*time.Millisecond || b != 4*time.Millisecond {
		t.Errorf("an interval under FirstRetry: waits %v, %v, want the interval each time", a, b)
	}
}
