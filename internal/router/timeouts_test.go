package router

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

// runRouter runs a router in-process in front of target with tmo, and returns
// its proxy address.
func runRouter(t *testing.T, target string, tmo Timeouts) string {
	t.Helper()
	config := filepath.Join(t.TempDir(), "routes", "test", "web.json")
	listen := closedAddr(t)
	if err := WriteFile(config, File{Generation: 1, Listen: listen, Backends: []contract.Backend{{FleetID: "fa", Weight: 100, Targets: []string{target}}}}); err != nil {
		t.Fatal(err)
	}
	return startRouter(t, config, Options{Timeouts: tmo, DrainTimeout: time.Second, Log: log.New(io.Discard, "", 0)}).Listen
}

// A slowloris client (half a header, then nothing) is disconnected once the
// header timeout passes, instead of holding a connection forever.
func TestRouterDropsAClientThatNeverFinishesItsHeader(t *testing.T) {
	listen := runRouter(t, backend(t, "A"), Timeouts{ReadHeader: 200 * time.Millisecond})
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: web\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// The router closes the connection; our own deadline (50 times the header
	// timeout) only keeps a broken router from hanging the test.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the router kept the half-open request for 10s (read %q)", got)
	}
	if strings.Contains(string(got), "200 OK") {
		t.Fatalf("the router answered a request whose header never ended: %q", got)
	}
}

// Long transfers that keep moving outlive the stall timeout in both directions;
// a fleet that stops sending mid-answer has the answer cut after it.
func TestRouterStallTimeoutCutsOnlyTransfersThatStopMoving(t *testing.T) {
	const stall = 2 * time.Second
	const chunks, every = 15, 250 * time.Millisecond // 3.75s in all, each gap far below stall
	stuck := make(chan struct{})
	fleet := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			rc := http.NewResponseController(w)
			for i := range chunks {
				fmt.Fprintf(w, "chunk %d\n", i)
				rc.Flush()
				time.Sleep(every)
			}
		case "/upload":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
		case "/stuck":
			io.WriteString(w, "part")
			http.NewResponseController(w).Flush()
			<-stuck
		}
	}))
	defer fleet.Close()
	defer close(stuck) // before the fleet closes: Close waits for its handlers
	listen := runRouter(t, fleet.Listener.Addr().String(), Timeouts{Stall: stall})
	client := &http.Client{Timeout: time.Minute}

	type result struct {
		name, body string
		err        error
	}
	results := make(chan result, 3)
	fetch := func(name string, do func() (*http.Response, error)) {
		resp, err := do()
		if err != nil {
			results <- result{name, "", err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		results <- result{name, string(b), err}
	}
	go fetch("stream", func() (*http.Response, error) { return client.Get("http://" + listen + "/stream") })
	go fetch("upload", func() (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			for range chunks {
				pw.Write([]byte(strings.Repeat("x", 1000)))
				time.Sleep(every)
			}
			pw.Close()
		}()
		return client.Post("http://"+listen+"/upload", "application/octet-stream", pr)
	})
	go fetch("stuck", func() (*http.Response, error) { return client.Get("http://" + listen + "/stuck") })
	for range 3 {
		r := <-results
		switch r.name {
		case "stream":
			if r.err != nil || strings.Count(r.body, "chunk") != chunks {
				t.Errorf("a stream of %d chunks over %s through a router with stall timeout %s: %q, %v", chunks, chunks*every, stall, r.body, r.err)
			}
		case "upload":
			if want := fmt.Sprintf("%d <nil>", chunks*1000); r.err != nil || r.body != want {
				t.Errorf("an upload over %s: %q, %v; want %q", chunks*every, r.body, r.err, want)
			}
		case "stuck":
			if r.err == nil || r.body != "part" {
				t.Errorf("a fleet stuck mid-answer: %q, %v; want the part sent, then the answer cut", r.body, r.err)
			}
		}
	}
}
