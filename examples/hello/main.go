// Command hello is imago's example service: `/` answers with its version and
// `/healthz` says whether it is up. Build a version with
//
//	go build -ldflags "-X main.version=v2" -o hello ./examples/hello
//
// It listens on $PORT (imago's local provider sets it) and drains in-flight
// requests on SIGTERM.
//
// Other -ldflags make a build misbehave on purpose, to exercise rollouts (a
// canary that fails its analysis, a slow fleet):
//
//	-X main.startDelay=5s  /healthz answers 503 for the first 5s
//	-X main.failRate=0.3   / answers 500 "hello from <version>: injected failure"
//	                       on 30% of its requests, spread evenly and
//	                       deterministically (exactly 3 of every 10 requests
//	                       in a row, counted per process)
//	-X main.failAfter=300  failRate applies only after the first 300 requests
//	                       to / (per process): a build that starts failing
//	                       once it takes traffic (a bake time's prey)
//	-X main.latency=50ms   / answers 50ms later
//	-X main.healthLatency=2s  /healthz answers 2s later (a health endpoint
//	                       that checks its dependencies)
//
// /healthz and /version never fail; only healthLatency slows /healthz. Unset,
// hello behaves as a plain build.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	version = "dev"
	// startDelay (a duration, set with -ldflags) makes the app slow to become
	// healthy, as a real service warming caches is.
	startDelay = "0s"
	// failRate (a number from 0 to 1, set with -ldflags) is the share of requests
	// to / that answer 500, as a buggy release's.
	failRate = "0"
	// failAfter (a count, set with -ldflags) is how many requests to / succeed
	// before failRate applies.
	failAfter = "0"
	// latency (a duration, set with -ldflags) is added to every answer of /, as a
	// slow release's.
	latency = "0s"
	// healthLatency (a duration, set with -ldflags) is added to every answer of
	// /healthz, as a health check that asks a slow database.
	healthLatency = "0s"
)

// failures decides which requests fail: request n (counting from 1) fails when
// floor(n*rate) > floor((n-1)*rate), so the first n requests hold exactly
// floor(n*rate) failures, spread evenly. The rate is kept in parts per million,
// so the arithmetic is exact integer arithmetic.
type failures struct {
	ppm   int64
	after int64 // requests that never fail before the rate applies
	n     atomic.Int64
}

func parseFailRate(s string) (int64, error) {
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
		return 0, fmt.Errorf("bad failRate %q: want a number from 0 to 1", s)
	}
	return int64(math.Round(r * 1e6)), nil
}

// next counts a request and reports whether it fails.
func (f *failures) next() bool {
	if f.ppm == 0 {
		return false
	}
	n := f.n.Add(1) - f.after
	if n < 1 {
		return false
	}
	return n*f.ppm/1e6 > (n-1)*f.ppm/1e6
}

// slowness is how much later than at once hello answers.
type slowness struct {
	root   time.Duration // /
	health time.Duration // /healthz
}

// wait holds an answer for d; false when the client went away meanwhile.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// handler serves hello's endpoints. ready is when /healthz starts to answer 200.
func handler(version string, ready time.Time, fail *failures, slow slowness) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if !wait(r, slow.root) {
			return // the client is gone
		}
		if fail.next() {
			http.Error(w, fmt.Sprintf("hello from %s: injected failure", version), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !wait(r, slow.health) {
			return
		}
		if time.Now().Before(ready) {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, version)
	})
	return mux
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	delay, err := time.ParseDuration(startDelay)
	if err != nil {
		log.Fatalf("bad startDelay %q: %v", startDelay, err)
	}
	ready := time.Now().Add(delay)
	ppm, err := parseFailRate(failRate)
	if err != nil {
		log.Fatal(err)
	}
	after, err := strconv.ParseInt(failAfter, 10, 64)
	if err != nil || after < 0 {
		log.Fatalf("bad failAfter %q: want a count of requests such as 300", failAfter)
	}
	lat, err := time.ParseDuration(latency)
	if err != nil || lat < 0 {
		log.Fatalf("bad latency %q: want a duration such as 50ms", latency)
	}
	hlat, err := time.ParseDuration(healthLatency)
	if err != nil || hlat < 0 {
		log.Fatalf("bad healthLatency %q: want a duration such as 2s", healthLatency)
	}
	mux := handler(version, ready, &failures{ppm: ppm, after: after}, slowness{root: lat, health: hlat})

	// HOST is the address to listen on: 127.0.0.1 for a local process, 0.0.0.0
	// in a VM (the qemu provider forwards a host port to the guest's PORT).
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	// Shutdown waits for requests in flight, and also (for 5 s, a net/http
	// constant) for connections that have not sent a request yet, such as the
	// spare ones a proxy's connection pool keeps: close those at once, so that
	// stopping takes as long as the requests, not 5 s more.
	var fresh sync.Map
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			fresh.Store(c, true)
		} else {
			fresh.Delete(c)
		}
	}
	srv.RegisterOnShutdown(func() { fresh.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true }) })
	log.Printf("hello %s listening on %s", version, ln.Addr())
	if ppm > 0 || lat > 0 || hlat > 0 {
		log.Printf("hello %s misbehaves on purpose: failRate %s, latency %s, healthLatency %s", version, failRate, lat, hlat)
		if after > 0 {
			log.Printf("hello %s fails only after its first %d requests", version, after)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Printf("hello %s stopped", version)
}
