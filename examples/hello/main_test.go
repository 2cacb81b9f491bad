package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

var client = &http.Client{Timeout: 10 * time.Second}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// An unset failRate and latency leave hello as it was.
func TestHandlerDefault(t *testing.T) {
	ppm, err := parseFailRate("0")
	if err != nil || ppm != 0 {
		t.Fatalf("parseFailRate(0): %d %v", ppm, err)
	}
	srv := httptest.NewServer(handler("v1", time.Now(), &failures{ppm: ppm}, slowness{}))
	defer srv.Close()
	for range 100 {
		if code, body := get(t, srv.URL+"/"); code != 200 || body != "hello from v1\n" {
			t.Fatalf("GET /: %d %q", code, body)
		}
	}
	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("GET /healthz: %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/version"); code != 200 || body != "v1\n" {
		t.Fatalf("GET /version: %d %q", code, body)
	}
	if code, _ := get(t, srv.URL+"/nothere"); code != 404 {
		t.Fatalf("GET /nothere: %d", code)
	}
}

func TestFailuresSpread(t *testing.T) {
	for _, tc := range []struct {
		rate string
		per  int // every window of per requests from the start ...
		fail int // ... holds fail failures
	}{
		{"0", 10, 0}, {"0.3", 10, 3}, {"0.25", 4, 1}, {"0.5", 2, 1}, {"1", 1, 1}, {"0.01", 100, 1}, {".1", 10, 1},
	} {
		ppm, err := parseFailRate(tc.rate)
		if err != nil {
			t.Fatal(err)
		}
		f := &failures{ppm: ppm}
		for w := range 50 {
			n := 0
			for range tc.per {
				if f.next() {
					n++
				}
			}
			if n != tc.fail {
				t.Fatalf("failRate %s: window %d of %d requests has %d failures, want %d", tc.rate, w, tc.per, n, tc.fail)
			}
		}
	}
	for _, bad := range []string{"", "x", "-0.1", "1.5", "NaN", "30%"} {
		if _, err := parseFailRate(bad); err == nil {
			t.Errorf("parseFailRate(%q) succeeded", bad)
		}
	}
}

// With failAfter, the first requests never fail; then the rate applies as
// from the start.
func TestFailAfterLetsTheFirstRequestsThrough(t *testing.T) {
	f := &failures{ppm: 500000, after: 300}
	for i := range 300 {
		if f.next() {
			t.Fatalf("request %d of the first 300 failed", i+1)
		}
	}
	n := 0
	for range 100 {
		if f.next() {
			n++
		}
	}
	if n != 50 {
		t.Fatalf("after 300 requests, %d of the next 100 failed; want 50 at failRate 0.5", n)
	}
}

// TestFailRateBuild builds hello with -ldflags as a user would, runs it, and
// counts its failures.
func TestFailRateBuild(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "hello")
	build := exec.Command(goTool, "build", "-o", bin,
		"-ldflags", "-X main.version=v9 -X main.failRate=0.3 -X main.latency=10ms", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT=0") // hello logs the port it got
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
		close(logs)
		exited <- cmd.Wait() // after the pipe is drained, as Wait requires
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill() // our own child, by pid
			<-exited
		}
	})

	listening := regexp.MustCompile(`hello v9 listening on (127\.0\.0\.1:\d+)`)
	var addr string
	var seen []string
	timeout := time.After(10 * time.Second)
	for addr == "" {
		select {
		case line, ok := <-logs:
			if !ok {
				t.Fatalf("hello exited before it listened; log:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				addr = m[1]
			}
		case <-timeout:
			t.Fatalf("hello did not listen within 10s; log:\n%s", strings.Join(seen, "\n"))
		}
	}

	codes := map[int]int{}
	bodies := map[string]int{}
	var fastest time.Duration = time.Hour
	for range 100 {
		start := time.Now()
		code, body := get(t, "http://"+addr+"/")
		fastest = min(fastest, time.Since(start))
		codes[code]++
		bodies[body]++
	}
	if codes[500] != 30 || codes[200] != 70 {
		t.Fatalf("status codes over 100 requests: %v, want 30 500s and 70 200s", codes)
	}
	if bodies["hello from v9: injected failure\n"] != 30 || bodies["hello from v9\n"] != 70 {
		t.Fatalf("bodies: %v", bodies)
	}
	if fastest < 10*time.Millisecond {
		t.Fatalf("fastest answer took %v, want at least the 10ms latency", fastest)
	}
	for range 20 {
		if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("GET /healthz: %d %q", code, body)
		}
	}

	// SIGTERM stops it gracefully.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	select {
	case waitErr = <-exited:
		exited <- waitErr // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("hello did not stop within 10s of SIGTERM")
	}
	var rest []string
	for line := range logs { // closed before exited was sent
		rest = append(rest, line)
	}
	if waitErr != nil {
		t.Fatalf("hello exited with %v; log:\n%s", waitErr, strings.Join(rest, "\n"))
	}
	if log := strings.Join(rest, "\n"); !strings.Contains(log, "failRate 0.3, latency 10ms") || !strings.Contains(log, "hello v9 stopped") {
		t.Fatalf("log:\n%s", log)
	}
}

// healthLatency slows /healthz only: a client that will not wait that long gets
// no answer from it, while / answers at once.
func TestHealthLatencySlowsOnlyHealthz(t *testing.T) {
	srv := httptest.NewServer(handler("v1", time.Now(), &failures{}, slowness{health: time.Minute}))
	defer srv.Close()
	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	if resp, err := impatient.Get(srv.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /healthz answered %d before its minute of latency", resp.StatusCode)
	}
	if code, body := get(t, srv.URL+"/"); code != 200 || body != "hello from v1\n" {
		t.Fatalf("GET /: %d %q", code, body)
	}
}
