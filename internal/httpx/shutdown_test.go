package httpx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serve starts srv on a loopback port from :0 and returns its address.
func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// A connection that never sent a request does not hold Shutdown up, while a
// request being served still finishes first.
func TestShutdownClosesSilentConnsAndWaitsForRequests(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}), ShortTimeouts)
	addr := serve(t, srv)

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Make sure the server has accepted it (a request on a second connection
	// is served only after the accept loop passed the first one).
	answer := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/")
		if err != nil {
			answer <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answer <- string(b)
	}()
	<-started

	// net/http alone would keep the silent connection for 5 s and return
	// DeadlineExceeded from a 4 s Shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()

	// The silent connection is closed while the request is still in flight.
	silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection: read %v, want EOF (closed by Shutdown)", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) before the request in flight finished", err)
	default:
	}
	close(release)
	if got := <-answer; got != "finished" {
		t.Fatalf("request in flight during Shutdown got %q, want its answer", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v, want nil (no connection left to wait for)", err)
	}
}

// A server's own ConnState hook still sees every state.
func TestCloseSilentConnsChainsConnState(t *testing.T) {
	states := make(chan http.ConnState, 16)
	srv := &http.Server{Handler: http.NotFoundHandler(), ConnState: func(_ net.Conn, s http.ConnState) { states <- s }}
	CloseSilentConnsOnShutdown(srv)
	addr := serve(t, srv)
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, want := range []http.ConnState{http.StateNew, http.StateActive} {
		if got := <-states; got != want {
			t.Fatalf("ConnState hook saw %v, want %v", got, want)
		}
	}
}
