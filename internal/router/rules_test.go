package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

// load sends n requests from workers goroutines through front, each built by
// req, and counts the answers' bodies; any failed request fails the test.
func load(t *testing.T, c *http.Client, n, workers int, req func(i int) *http.Request) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				resp, err := c.Do(req(i))
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				counts[fmt.Sprintf("%d %s", resp.StatusCode, b)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

// Requests with the canary header or cookie all reach the canary, though its
// weight is 0; the rest follow the weights.
func TestHeaderAndCookieRoutes(t *testing.T) {
	stable, canary := backend(t, "stable"), backend(t, "canary")
	s := NewServer(nil)
	s.Apply(File{Generation: 1, Backends: []contract.Backend{
		{FleetID: "stable", Weight: 100, Targets: []string{stable}},
		{FleetID: "canary", Weight: 0, Targets: []string{canary}},
	}, RouteRules: contract.RouteRules{Matches: []contract.MatchRoute{{Name: "canary", FleetID: "canary",
		Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}, {Cookie: "imago-canary", Exact: "1"}}}}}})
	front := httptest.NewServer(s)
	defer front.Close()
	counts := load(t, front.Client(), 600, 16, func(i int) *http.Request {
		r, _ := http.NewRequest("GET", front.URL+"/", nil)
		switch i % 3 {
		case 0:
			r.Header.Set("X-Canary", "1")
		case 1:
			r.AddCookie(&http.Cookie{Name: "imago-canary", Value: "1"})
		default:
			r.Header.Set("X-Canary", "0") // no match: weights
		}
		return r
	})
	if counts["200 canary"] != 400 || counts["200 stable"] != 200 || len(counts) != 2 {
		t.Fatalf("answers %v, want 400 from the canary (header or cookie) and 200 from stable", counts)
	}
	if st := s.Status(); len(st.Matches) != 1 || st.Matches[0].FleetID != "canary" {
		t.Fatalf("GET /route shows matches %+v, want the canary route", st.Matches)
	}
}

// A client with the sticky cookie keeps its fleet at 50/50 until that fleet
// loses its weight; then it gets a new fleet and a new cookie.
func TestStickySessions(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	s := NewServer(nil)
	route := func(gen int64, wa, wb int) File {
		return File{Generation: gen, Backends: []contract.Backend{
			{FleetID: "fa", Weight: wa, Targets: []string{a}},
			{FleetID: "fb", Weight: wb, Targets: []string{b}},
		}, RouteRules: contract.RouteRules{Stickiness: &contract.Stickiness{Cookie: "imago-fleet", TTL: contract.Duration(time.Hour)}}}
	}
	s.Apply(route(1, 50, 50))
	front := httptest.NewServer(s)
	defer front.Close()

	clients := make([]*http.Client, 20)
	first := make([]string, len(clients))
	for i := range clients {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Jar: jar, Transport: front.Client().Transport}
		_, first[i] = get(t, clients[i], front.URL+"/")
	}
	if n := strings.Count(strings.Join(first, ""), "A"); n != 10 {
		t.Fatalf("first answers %v: want the 20 new clients split 10/10", first)
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for range 50 {
				resp, err := c.Get(front.URL + "/")
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != first[i] {
					t.Errorf("client %d flipped from %s to %s", i, first[i], body)
					return
				}
			}
		})
	}
	wg.Wait()
	resp, err := clients[0].Get(front.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := resp.Cookies(); len(ck) != 0 {
		t.Fatalf("a stuck client got cookies %v again", ck)
	}

	// fa leaves the route: its clients move to fb and are told so.
	s.Apply(route(2, 0, 100))
	for i, c := range clients {
		resp, err := c.Get(front.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "B" {
			t.Fatalf("client %d got %s after fa lost its weight, want B", i, body)
		}
		if first[i] == "A" {
			if ck := resp.Cookies(); len(ck) != 1 || ck[0].Value != "fb" || ck[0].MaxAge != 3600 || !ck[0].HttpOnly {
				t.Fatalf("client %d moved to fb with cookies %v, want imago-fleet=fb for an hour, HttpOnly", i, ck)
			}
		}
	}
}

// Mirroring copies its share of requests, bodies included, to the mirror
// fleet, whose answers nobody sees and whose counters fill; a mirror that
// never answers delays no live request.
func TestMirror(t *testing.T) {
	live := backend(t, "live")
	var mirrored atomic.Int64
	var bodies sync.Map
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Imago-Mirror") == "1" {
			bodies.Store(string(b), true)
			mirrored.Add(1)
		}
		io.WriteString(w, "mirror")
	}))
	defer mirror.Close()
	s := NewServer(nil)
	s.Apply(File{Generation: 1, Backends: []contract.Backend{
		{FleetID: "live", Weight: 100, Targets: []string{live}},
		{FleetID: "canary", Weight: 0, Targets: []string{mirror.Listener.Addr().String()}},
	}, RouteRules: contract.RouteRules{Mirror: &contract.Mirror{FleetID: "canary", Percent: 50}}})
	front := httptest.NewServer(s)
	defer front.Close()
	counts := load(t, front.Client(), 400, 16, func(i int) *http.Request {
		r, _ := http.NewRequest("POST", front.URL+"/", strings.NewReader(fmt.Sprintf("body %d", i)))
		return r
	})
	if counts["200 live"] != 400 || len(counts) != 1 {
		t.Fatalf("answers %v, want all 400 from the live fleet", counts)
	}
	deadline := time.Now().Add(10 * time.Second)
	for mirrored.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := mirrored.Load(); n != 200 {
		t.Fatalf("the mirror got %d copies, want 200 (50%% of 400)", n)
	}
	distinct := 0
	bodies.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), "body ") {
			distinct++
		}
		return true
	})
	if distinct != 200 {
		t.Errorf("the mirror got %d distinct request bodies, want 200", distinct)
	}
	admin := httptest.NewServer(s.AdminHandler())
	defer admin.Close()
	for _, want := range []string{`imago_router_requests_total{fleet="canary"} 200`, `imago_router_requests_total{fleet="live"} 400`} {
		_, m := get(t, admin.Client(), admin.URL+"/metrics")
		for !strings.Contains(m, want) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			_, m = get(t, admin.Client(), admin.URL+"/metrics")
		}
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// A mirror that hangs: every live request still gets its answer, and the
	// copies beyond the slots are dropped, not queued.
	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer stuck.Close()
	defer close(hang)
	s.Apply(File{Generation: 2, Backends: []contract.Backend{
		{FleetID: "live", Weight: 100, Targets: []string{live}},
		{FleetID: "canary", Weight: 0, Targets: []string{stuck.Listener.Addr().String()}},
	}, RouteRules: contract.RouteRules{Mirror: &contract.Mirror{FleetID: "canary", Percent: 100}}})
	counts = load(t, front.Client(), 300, 16, func(int) *http.Request {
		r, _ := http.NewRequest("GET", front.URL+"/", nil)
		return r
	})
	if counts["200 live"] != 300 {
		t.Fatalf("with a hanging mirror: answers %v, want 300 from the live fleet", counts)
	}
	_, m := get(t, admin.Client(), admin.URL+"/metrics")
	if !strings.Contains(m, fmt.Sprintf("imago_router_mirror_dropped_total %d", 300-mirrorSlots)) {
		t.Errorf("metrics: want %d dropped copies (300 − %d slots):\n%s", 300-mirrorSlots, mirrorSlots, grep(m, "mirror"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
