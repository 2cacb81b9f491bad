package router

import (
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/router/routermetrics"
)

// The router's /metrics keeps its names, help texts and types (README, the
// analysis queries and dashboards name them), and promtool finds it clean.
func TestMetricsExpositionIsStableAndClean(t *testing.T) {
	a := backend(t, "A")
	s := NewServer(nil)
	s.Apply(File{Generation: 3, Backends: []contract.Backend{{FleetID: "fa", Weight: 100, Targets: []string{a}}}})
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

func TestParseFleetMetrics(t *testing.T) {
	text := `# HELP other_total Ignored.
# TYPE other_total counter
other_total{fleet="x"} 9
# TYPE imago_router_requests_total counter
imago_router_requests_total{fleet="fl-\"q\"\\n\n"} 4 1700000000000
imago_router_requests_total{fleet="fl-b"} 10
# TYPE imago_router_errors_total counter
imago_router_errors_total{fleet="fl-b"} 3
# TYPE imago_router_request_duration_seconds histogram
imago_router_request_duration_seconds_bucket{fleet="fl-b",le="0.5"} 9
imago_router_request_duration_seconds_bucket{fleet="fl-b",le="0.1"} 4
imago_router_request_duration_seconds_bucket{fleet="fl-b",le="+Inf"} 10
imago_router_request_duration_seconds_sum{fleet="fl-b"} 2.5
imago_router_request_duration_seconds_count{fleet="fl-b"} 10
`
	got, err := routermetrics.ParseFleetMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]contract.FleetMetrics{
		"fl-\"q\"\\n\n": {Requests: 4},
		"fl-b": {Requests: 10, Errors: 3, Latency: contract.Histogram{Count: 10, Sum: 2.5, Buckets: []contract.HistogramBucket{
			{UpperBound: 0.1, Count: 4}, {UpperBound: 0.5, Count: 9},
		}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	for _, bad := range []struct{ text, want string }{
		{"imago_router_requests_total 3\n", "router metric imago_router_requests_total has no fleet label"},
		{"ok 1\nx_total{a=\"1\" 3\n", "line 2"},
		{"x abc", "line 1"},
	} {
		if _, err := routermetrics.ParseFleetMetrics(strings.NewReader(bad.text)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("routermetrics.ParseFleetMetrics(%q) = %v, want an error containing %q", bad.text, err, bad.want)
		}
	}
}
