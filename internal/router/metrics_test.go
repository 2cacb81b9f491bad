package router

import (
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/imago/imago/internal/provider"
)

// The router's /metrics keeps its names, help texts and types (README, the
// analysis queries and dashboards name them), and promtool finds it clean.
func TestMetricsExpositionIsStableAndClean(t *testing.T) {
	a := backend(t, "A")
	s := NewServer(nil)
	s.Apply(File{Generation: 3, Backends: []provider.Backend{{FleetID: "fa", Weight: 100, Targets: []string{a}}}})
	front := httptest.NewServer(s)
	defer front.Close()
	get(t, front.Client(), front.URL+"/")
	admin := httptest.NewServer(s.AdminHandler())
	defer admin.Close()
	_, m := get(t, admin.Client(), admin.URL+"/metrics")
	for _, want := range []string{
		"# HELP imago_router_generation Generation of the route the router applies.\n# TYPE imago_router_generation gauge\nimago_router_generation 3\n",
		"# HELP imago_router_requests_total Requests proxied, by fleet.\n# TYPE imago_router_requests_total counter\n",
		"# HELP imago_router_errors_total Requests answered with a 5xx status, by fleet.\n# TYPE imago_router_errors_total counter\n",
		"# HELP imago_router_request_duration_seconds Request latency through the router, by fleet.\n# TYPE imago_router_request_duration_seconds histogram\n",
		`imago_router_request_duration_seconds_bucket{fleet="fa",le="0.001"} `,
		`imago_router_request_duration_seconds_bucket{fleet="fa",le="10"} 1`,
		`imago_router_errors_total{fleet="fa"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed: run `make deps`: %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(m)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
