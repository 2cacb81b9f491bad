package router

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

// startRouter runs a router in-process on config with opts (without the
// polling safety net unless opts asks for it) and returns its run info; it
// stops when the test ends.
func startRouter(t *testing.T, config string, opts Options) RunInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan RunInfo, 1)
	errc := make(chan error, 1)
	opts.Config = config
	if opts.PollInterval == 0 {
		opts.PollInterval = -1
	}
	opts.Ready = func(ri RunInfo) { ready <- ri }
	go func() { errc <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case ri := <-ready:
		return ri
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	}
	return RunInfo{}
}

func route(gen int64, listen, fleet, target string) File {
	return File{Generation: gen, Listen: listen, Backends: []contract.Backend{{FleetID: fleet, Weight: 100, Targets: []string{target}}}}
}

// TestPushRoute pushes routes to a running router: with the token of its run
// file a newer generation applies at once (no file watch involved: the file is
// not written); without it, or with another token, nothing changes; a
// generation not newer than the applied one is refused with the router's own,
// and a route file read late (older than the pushed route) is ignored.
func TestPushRoute(t *testing.T) {
	home := t.TempDir()
	config := filepath.Join(home, "routes", "test", "web.json")
	a, b := backend(t, "A"), backend(t, "B")
	listen := closedAddr(t)
	if err := WriteFile(config, route(1, listen, "fa", a)); err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	ri := startRouter(t, config, Options{Log: log.New(&logBuf, "", log.Lmicroseconds)})
	ctx := context.Background()
	c := &http.Client{Timeout: 5 * time.Second}

	// The token is in the run file, which only its owner reads.
	got, err := ReadRunInfo(RunFilePath(config))
	if err != nil || len(got.AdminToken) != 64 || got.AdminToken != ri.AdminToken {
		t.Fatalf("run file %+v, %v: want a 64-hex-digit admin token", got, err)
	}
	if fi, err := os.Stat(RunFilePath(config)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("run file mode %v, %v; want 0600", fi.Mode(), err)
	}

	// No token, a wrong one, another scheme: 401, the route stays.
	for _, auth := range []string{"", "Bearer " + strings.Repeat("0", 64), "Basic " + ri.AdminToken, ri.AdminToken} {
		req, _ := http.NewRequest(http.MethodPut, "http://"+ri.Admin+"/route", strings.NewReader(`{"generation":2,"backends":[]}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("PUT /route with Authorization %q: %s, want 401 with a challenge", auth, resp.Status)
		}
	}
	if _, err := PushRoute(ctx, ri.Admin, "wrong", route(2, listen, "fb", b)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("PushRoute with a wrong token: %v, want 401", err)
	}
	if _, body := get(t, c, "http://"+listen+"/"); body != "A" {
		t.Fatalf("after refused pushes: answer %q, want A", body)
	}

	// Bad routes: 400 naming what is wrong.
	for body, want := range map[string]string{
		`{"generation":2,"backends":[],"extra":1}`: `unknown field "extra"`,
		`{"generation":"2"}`:                       "generation",
		`{"backends":[]}`:                          "generation must be positive",
	} {
		req, _ := http.NewRequest(http.MethodPut, "http://"+ri.Admin+"/route", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ri.AdminToken)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), want) {
			t.Fatalf("PUT /route %s: %s %q, want 400 naming %q", body, resp.Status, msg, want)
		}
	}

	// A newer generation applies before PushRoute returns; the route file
	// still holds generation 1.
	st, err := PushRoute(ctx, ri.Admin, ri.AdminToken, route(2, listen, "fb", b))
	if err != nil || st.Generation != 2 || st.Backends[0].FleetID != "fb" {
		t.Fatalf("PushRoute generation 2: %+v, %v", st, err)
	}
	if _, body := get(t, c, "http://"+listen+"/"); body != "B" {
		t.Fatalf("right after the push: answer %q, want B", body)
	}

	// Not newer: refused, with the generation the router applies.
	for _, gen := range []int64{1, 2} {
		st, err = PushRoute(ctx, ri.Admin, ri.AdminToken, route(gen, listen, "fa", a))
		if !errors.Is(err, ErrNotNewer) || st.Generation != 2 {
			t.Fatalf("PushRoute generation %d over 2: %+v, %v; want ErrNotNewer and generation 2", gen, st, err)
		}
	}

	// The file watch reports an older generation after the push: ignored.
	// Then a newer one in the file: applied.
	if err := WriteFile(config, route(1, listen, "fa", a)); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(config, route(3, listen, "fa", a)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st, err = GetStatus(ctx, ri.Admin); err != nil || st.Generation != 3; st, err = GetStatus(ctx, ri.Admin) {
		if time.Now().After(deadline) {
			t.Fatalf("generation 3 of the route file not applied within 5s: %+v, %v\nlog:\n%s", st, err, logBuf.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, body := get(t, c, "http://"+listen+"/"); body != "A" {
		t.Fatalf("after generation 3: answer %q, want A", body)
	}
	if l := logBuf.String(); strings.Count(l, "applied route generation 1\n") != 0 || !strings.Contains(l, "applied route generation 2 (pushed)") {
		t.Fatalf("router log:\n%s\nwant generation 2 pushed and the late generation 1 never applied", l)
	}
}

// TestApplyOnlyMovesForward: a table never goes back to an older generation.
func TestApplyOnlyMovesForward(t *testing.T) {
	s := NewServer(nil)
	a, b := backend(t, "A"), backend(t, "B")
	if !s.Apply(route(5, "", "fa", a)) {
		t.Fatal("first Apply refused")
	}
	if s.Apply(route(4, "", "fb", b)) || s.Apply(route(5, "", "fb", b)) {
		t.Fatal("Apply took a generation not newer than 5")
	}
	if st := s.Status(); st.Generation != 5 || st.Backends[0].FleetID != "fa" {
		t.Fatalf("status %+v, want generation 5 on fa", st)
	}
	if !s.Apply(route(6, "", "fb", b)) || s.Status().Backends[0].FleetID != "fb" {
		t.Fatalf("generation 6 not applied: %+v", s.Status())
	}
	// Without a token (NewServer), the admin handler takes no push.
	srv := httptest.NewServer(s.AdminHandler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/route", strings.NewReader(`{"generation":7,"backends":[]}`))
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || s.Status().Generation != 6 {
		t.Fatalf("push to a server without a token: %s, generation %d", resp.Status, s.Status().Generation)
	}
}

// TestSwitchBackReusesConnections: a switch leaves the idle connections to
// the fleet it routes away from open, so switching back (a rollback) sends the
// next requests over them instead of dialing again.
func TestSwitchBackReusesConnections(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	a, b := srv.Listener.Addr().String(), backend(t, "B")
	s := NewServer(nil)
	front := httptest.NewServer(s)
	defer front.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	s.Apply(route(1, "", "fa", a))
	for range 5 {
		if _, body := get(t, c, front.URL); body != "A" {
			t.Fatalf("answer %q, want A", body)
		}
	}
	before := dials.Load()
	s.Apply(route(2, "", "fb", b))
	if _, body := get(t, c, front.URL); body != "B" {
		t.Fatalf("answer %q, want B", body)
	}
	s.Apply(route(3, "", "fa", a))
	for range 5 {
		if _, body := get(t, c, front.URL); body != "A" {
			t.Fatalf("answer %q after switching back, want A", body)
		}
	}
	if n := dials.Load(); n != before || n == 0 {
		t.Fatalf("fleet A got %d connections after the switch back (%d before): want its idle one reused", n-before, before)
	}
}
