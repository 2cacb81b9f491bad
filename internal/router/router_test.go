package router

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/runtimevar"
	"gocloud.dev/runtimevar/filevar"

	"github.com/imago/imago/internal/contract"
)

// backend is an in-process HTTP server answering its name.
func backend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		if r.URL.Path == "/fail" {
			http.Error(w, name+" failed", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWeightsAndMetrics(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	s := NewServer(nil)
	s.Apply(File{Generation: 1, Backends: []contract.Backend{
		{FleetID: "fa", Weight: 30, Targets: []string{a}},
		{FleetID: "fb", Weight: 70, Targets: []string{b}},
	}})
	front := httptest.NewServer(s)
	defer front.Close()
	counts := map[string]int{}
	for range 2000 {
		code, body := get(t, front.Client(), front.URL+"/")
		if code != 200 {
			t.Fatalf("status %d body %q", code, body)
		}
		counts[body]++
	}
	if counts["A"] < 500 || counts["A"] > 700 {
		t.Fatalf("A got %d of 2000, want 30%% ± 5 points", counts["A"])
	}
	// Smooth weighted round robin is exact.
	if counts["A"] != 600 || counts["B"] != 1400 {
		t.Errorf("counts %v, want exactly 600/1400", counts)
	}
	code, _ := get(t, front.Client(), front.URL+"/fail")
	if code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
	admin := httptest.NewServer(s.AdminHandler())
	defer admin.Close()
	// A request is counted when its handler returns, which may be just after the
	// client read the answer: wait for the last one.
	deadline := time.Now().Add(5 * time.Second)
	_, m := get(t, admin.Client(), admin.URL+"/metrics")
	for !strings.Contains(m, `imago_router_requests_total{fleet="fb"} 1401`) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		_, m = get(t, admin.Client(), admin.URL+"/metrics")
	}
	for _, want := range []string{
		`imago_router_generation 1`,
		`imago_router_requests_total{fleet="fa"} 600`,
		`imago_router_requests_total{fleet="fb"} 1401`,
		`imago_router_errors_total{fleet="fb"} 1`,
		`imago_router_errors_total{fleet="fa"} 0`,
		`imago_router_request_duration_seconds_count{fleet="fa"} 600`,
		`imago_router_request_duration_seconds_bucket{fleet="fb",le="+Inf"} 1401`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func TestNoBackend(t *testing.T) {
	s := NewServer(nil)
	front := httptest.NewServer(s)
	defer front.Close()
	if code, _ := get(t, front.Client(), front.URL); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", code)
	}
}

func TestRetryRefusedTarget(t *testing.T) {
	a := backend(t, "A")
	dead := closedAddr(t)
	s := NewServer(nil)
	s.Apply(File{Generation: 1, Backends: []contract.Backend{
		{FleetID: "fa", Weight: 100, Targets: []string{dead, a}},
	}})
	front := httptest.NewServer(s)
	defer front.Close()
	for i := range 20 {
		code, body := get(t, front.Client(), front.URL+"/")
		if code != 200 || body != "A" {
			t.Fatalf("request %d: status %d body %q", i, code, body)
		}
	}
	// A POST is not retried: half of them hit the dead target.
	fails := 0
	for range 10 {
		resp, err := front.Client().Post(front.URL+"/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway {
			fails++
		}
	}
	if fails != 5 {
		t.Errorf("%d of 10 POSTs failed, want 5 (no retry of non-idempotent requests)", fails)
	}
}

func TestInFlightKeepsOldTarget(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	s := NewServer(nil)
	s.Apply(File{Generation: 1, Backends: []contract.Backend{{FleetID: "fa", Weight: 100, Targets: []string{a}}}})
	front := httptest.NewServer(s)
	defer front.Close()
	type result struct {
		code int
		body string
	}
	done := make(chan result, 1)
	go func() {
		resp, err := front.Client().Get(front.URL + "/?sleep=500ms")
		if err != nil {
			done <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b)}
	}()
	// Wait until the slow request is in flight (the fleet's round robin moved).
	deadline := time.Now().Add(5 * time.Second)
	for s.table.Load().fleets[0].next.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow request never started")
		}
		time.Sleep(time.Millisecond)
	}
	s.Apply(File{Generation: 2, Backends: []contract.Backend{{FleetID: "fb", Weight: 100, Targets: []string{b}}}})
	if _, body := get(t, front.Client(), front.URL+"/"); body != "B" {
		t.Fatalf("new request went to %q, want B", body)
	}
	r := <-done
	if r.code != 200 || r.body != "A" {
		t.Fatalf("in-flight request: %d %q, want 200 A", r.code, r.body)
	}
}

// TestRunWatchesRenames runs a router in-process and replaces its route file many
// times; each new generation must be applied through the file watch alone.
func TestRunWatchesRenames(t *testing.T) {
	home := t.TempDir()
	config := filepath.Join(home, "routes", "test", "web.json")
	a, b := backend(t, "A"), backend(t, "B")
	listen := closedAddr(t)
	if err := WriteFile(config, File{Generation: 1, Listen: listen, Backends: []contract.Backend{{FleetID: "fa", Weight: 100, Targets: []string{a}}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the router stops
		if _, err := os.Stat(RunFilePath(config)); !os.IsNotExist(err) {
			t.Errorf("run file left behind: %v", err)
		}
	})
	var logBuf syncBuffer
	ri := startRouter(t, config, Options{Log: log.New(&logBuf, "", log.Lmicroseconds)})
	got, err := ReadRunInfo(RunFilePath(config))
	if err != nil || got.Admin != ri.Admin || got.PID != os.Getpid() || got.StartTime == 0 {
		t.Fatalf("run file %+v, %v; want %+v", got, err, ri)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	for gen := int64(2); gen <= 60; gen++ {
		name, target := "A", a
		if gen%2 == 0 {
			name, target = "B", b
		}
		if err := WriteFile(config, File{Generation: gen, Listen: listen, Backends: []contract.Backend{{FleetID: "f" + name, Weight: 100, Targets: []string{target}}}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			st, err := GetStatus(context.Background(), ri.Admin)
			if err == nil && st.Generation == gen {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("generation %d not applied by the watch within 3s (status %+v, %v)\nlog:\n%s", gen, st, err, logBuf.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		if _, body := get(t, c, "http://"+listen+"/"); body != name {
			t.Fatalf("generation %d: answer %q, want %q", gen, body, name)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunListenInUse(t *testing.T) {
	home := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	config := filepath.Join(home, "routes", "test", "web.json")
	if err := WriteFile(config, File{Generation: 1, Listen: ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Options{Config: config, Log: log.New(io.Discard, "", 0)})
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Run: %v, want address in use", err)
	}
}

func TestRunFilePath(t *testing.T) {
	got := RunFilePath("/h/routes/prod/web.json")
	if want := "/h/run/prod-web.router.json"; got != want {
		t.Fatalf("RunFilePath = %s, want %s", got, want)
	}
}

// TestRunPollsWithoutInotify: with the user's inotify instances spent (the
// watch fails with EMFILE), the router starts anyway and applies route
// changes by polling the file.
func TestRunPollsWithoutInotify(t *testing.T) {
	open := openWatch
	openWatch = func(string, *runtimevar.Decoder, *filevar.Options) (*runtimevar.Variable, error) {
		return nil, fmt.Errorf("couldn't initialize inotify: %w", syscall.EMFILE)
	}
	t.Cleanup(func() { openWatch = open })
	home := t.TempDir()
	config := filepath.Join(home, "routes", "test", "web.json")
	a, b := backend(t, "A"), backend(t, "B")
	listen := closedAddr(t)
	if err := WriteFile(config, File{Generation: 1, Listen: listen, Backends: []contract.Backend{{FleetID: "fa", Weight: 100, Targets: []string{a}}}}); err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	ri := startRouter(t, config, Options{Log: log.New(&logBuf, "", log.Lmicroseconds)})
	if err := WriteFile(config, File{Generation: 2, Listen: listen, Backends: []contract.Backend{{FleetID: "fb", Weight: 100, Targets: []string{b}}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := GetStatus(context.Background(), ri.Admin)
		if err == nil && st.Generation == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation 2 not applied by polling within 3s (status %+v, %v)\nlog:\n%s", st, err, logBuf.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, body := get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+listen+"/"); body != "B" {
		t.Fatalf("answer %q, want B", body)
	}
	if !strings.Contains(logBuf.String(), "polling it every 100ms instead") {
		t.Fatalf("log does not say it polls:\n%s", logBuf.String())
	}
}
