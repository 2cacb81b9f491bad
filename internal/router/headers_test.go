package router

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/imago/imago/internal/contract"
)

// seenHeaders is what an instance saw of one request.
type seenHeaders struct {
	host, xff, xfHost, xfProto, forwarded string
}

// headerBackend is an instance that records the headers of every request.
func headerBackend(t *testing.T) (string, func() []seenHeaders) {
	t.Helper()
	var mu sync.Mutex
	var seen []seenHeaders
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, seenHeaders{r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Forwarded")})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() []seenHeaders {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenHeaders(nil), seen...)
	}
}

// send makes a GET to the router at addr with the Host host and extra headers.
func send(t *testing.T, addr, host string, hdr map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET through the router: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET through the router: status %d", resp.StatusCode)
	}
}

// An instance behind the router sees the Host the client asked for and the
// X-Forwarded-* headers the router sets; what a client claims in them is
// replaced, not passed on.
func TestInstanceSeesClientHostAndForwardedHeaders(t *testing.T) {
	target, seen := headerBackend(t)
	addr := runRouter(t, target, Timeouts{})
	send(t, addr, "shop.example.com", nil)
	send(t, addr, "shop.example.com:8443", map[string]string{
		"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
		"Forwarded": "for=203.0.113.9;proto=https",
	})
	want := []seenHeaders{
		{host: "shop.example.com", xff: "127.0.0.1", xfHost: "shop.example.com", xfProto: "http"},
		{host: "shop.example.com:8443", xff: "127.0.0.1", xfHost: "shop.example.com:8443", xfProto: "http"},
	}
	got := seen()
	if len(got) != len(want) {
		t.Fatalf("the instance saw %d requests, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: the instance saw %+v, want %+v", i, got[i], want[i])
		}
	}
}

// A GET retried on another target after the first one refused still carries
// the client's Host.
func TestRetryKeepsClientHost(t *testing.T) {
	target, seen := headerBackend(t)
	s := NewServer(nil)
	s.Apply(File{Generation: 1, Backends: []contract.Backend{{FleetID: "fa", Weight: 1, Targets: []string{closedAddr(t), target}}}})
	front := httptest.NewServer(s)
	defer front.Close()
	for range 2 { // one of the two goes to the closed target first
		send(t, front.Listener.Addr().String(), "shop.example.com", nil)
	}
	for i, h := range seen() {
		if h.host != "shop.example.com" || h.xfHost != "shop.example.com" {
			t.Errorf("request %d: the instance saw Host %q, X-Forwarded-Host %q; want shop.example.com for both", i, h.host, h.xfHost)
		}
	}
	if n := len(seen()); n != 2 {
		t.Fatalf("the instance saw %d requests, want 2", n)
	}
}
