package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// healthcheck runs the built binary as a container runtime does and returns its
// exit code and output.
func healthcheck(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

func TestHealthcheckExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "imago-healthcheck")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Temporal cannot be reached", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(hang)

	code, msg := healthcheck(t, bin, srv.URL+"/readyz")
	assert.Equal(t, 0, code, msg)
	assert.Contains(t, msg, "healthy: GET "+srv.URL+"/readyz: 200 OK")

	code, msg = healthcheck(t, bin, srv.URL+"/down")
	assert.Equal(t, 1, code, msg)
	assert.Contains(t, msg, "unhealthy: GET "+srv.URL+"/down: 503 Service Unavailable Temporal cannot be reached")

	code, msg = healthcheck(t, bin, "--timeout", "300ms", srv.URL+"/hang")
	assert.Equal(t, 1, code, msg)
	assert.Contains(t, msg, "context deadline exceeded")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()
	code, msg = healthcheck(t, bin, closed)
	assert.Equal(t, 1, code, msg)
	assert.Contains(t, msg, "connection refused")

	code, msg = healthcheck(t, bin)
	assert.Equal(t, 2, code, msg)
	assert.Contains(t, msg, "want exactly one URL")
	code, msg = healthcheck(t, bin, "127.0.0.1:8080/readyz")
	assert.Equal(t, 2, code, msg)
	assert.True(t, strings.Contains(msg, `"127.0.0.1:8080/readyz" is not an http(s) URL`), msg)
}
