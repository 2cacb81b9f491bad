package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
)

// loopback is the client of a worker whose operator set IMAGO_ANALYSIS_ALLOW=127.0.0.1:
// the tests' servers listen there.
func loopback() Env {
	return Env{HTTP: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)}
}

// fakePrometheus answers GET /api/v1/query like Prometheus' HTTP API: the
// response for a query is looked up in answers (a JSON "data" object, or an
// error as status + errorType + error).
type fakePrometheus struct {
	mu      sync.Mutex
	queries []string
	answers map[string]promAnswer
}

type promAnswer struct {
	status    int
	data      string // the "data" member, JSON
	errorType string
	err       string
}

func (p *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/prom/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query().Get("query")
	p.mu.Lock()
	p.queries = append(p.queries, q)
	a, ok := p.answers[q]
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		a = promAnswer{status: http.StatusBadRequest, errorType: "bad_data", err: fmt.Sprintf("invalid parameter \"query\": 1:1: parse error: unexpected %q", q)}
	}
	if a.err != "" {
		w.WriteHeader(a.status)
		json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": a.errorType, "error": a.err})
		return
	}
	fmt.Fprintf(w, `{"status":"success","data":%s}`, a.data)
}

func TestPrometheusProviderAgainstFakePrometheus(t *testing.T) {
	const now = "1767323045.781"
	fake := &fakePrometheus{answers: map[string]promAnswer{
		`sum(rate(errors{fleet="fl-1"}[1m])) / sum(rate(requests{fleet="fl-1"}[1m]))`: {
			data: `{"resultType":"vector","result":[{"metric":{},"value":[` + now + `,"0.0123"]}]}`},
		`scalar(vector(0.5))`: {data: `{"resultType":"scalar","result":[` + now + `,"0.5"]}`},
		`up{job="none"}`:      {data: `{"resultType":"vector","result":[]}`},
		`up`: {data: `{"resultType":"vector","result":[` +
			`{"metric":{"__name__":"up","instance":"a:9100"},"value":[` + now + `,"1"]},` +
			`{"metric":{"__name__":"up","instance":"b:9100"},"value":[` + now + `,"0"]}]}`},
		`up[5m]`:           {data: `{"resultType":"matrix","result":[{"metric":{},"values":[[` + now + `,"1"]]}]}`},
		`0/0`:              {data: `{"resultType":"scalar","result":[` + now + `,"NaN"]}`},
		`slow`:             {status: http.StatusServiceUnavailable, errorType: "timeout", err: "query timed out in expression evaluation"},
		`sum(latency_p99)`: {data: `{"resultType":"vector","result":[{"metric":{"service":"web"},"value":[` + now + `,"+Inf"]}]}`},
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	addr := srv.URL + "/prom/"

	measure := func(query string) (Reading, error) {
		t.Helper()
		m, err := NewMeasurer(contract.AnalysisSpec{Provider: ProviderPrometheus, Address: addr, Query: query, Max: f64(1)}, loopback())
		if err != nil {
			t.Fatal(err)
		}
		return m.Measure(context.Background())
	}
	if r, err := measure(`sum(rate(errors{fleet="fl-1"}[1m])) / sum(rate(requests{fleet="fl-1"}[1m]))`); err != nil || r.Value != 0.0123 || r.Detail != "" {
		t.Errorf("one-series vector: %+v %v", r, err)
	}
	if r, err := measure(`scalar(vector(0.5))`); err != nil || r.Value != 0.5 {
		t.Errorf("scalar: %+v %v", r, err)
	}
	if _, err := measure(`up{job="none"}`); !IsNoData(err) || err.Error() != "no samples yet: the query returned an empty vector" {
		t.Errorf("empty vector: %v, want no data", err)
	}
	if _, err := measure(`up`); err == nil || IsInconclusive(err) ||
		!strings.Contains(err.Error(), `returned 2 series; it must return one`) || strings.Contains(err.Error(), "9100") {
		t.Errorf("two series: %v", err)
	}
	if _, err := measure(`up[5m]`); err == nil || !strings.Contains(err.Error(), "returned a matrix") {
		t.Errorf("matrix: %v", err)
	}
	if r, err := measure(`0/0`); err != nil || !math.IsNaN(r.Value) {
		t.Errorf("NaN: %+v %v", r, err)
	}
	if r, err := measure(`sum(latency_p99)`); err != nil || !math.IsInf(r.Value, 1) {
		t.Errorf("+Inf: %+v %v", r, err)
	}
	// Prometheus' own message is not repeated (an answer's text never is): its
	// status, size and errorType are.
	if _, err := measure(`slow`); err == nil || !strings.Contains(err.Error(), "refused the query: 503 Service Unavailable, 92 bytes, errorType timeout") || strings.Contains(err.Error(), "query timed out") {
		t.Errorf("error answer: %v", err)
	}
	if _, err := measure(`sum(`); err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "errorType bad_data") || strings.Contains(err.Error(), "parse error") {
		t.Errorf("bad query: %v", err)
	}
	m, _ := NewMeasurer(contract.AnalysisSpec{Provider: ProviderPrometheus, Address: "http://127.0.0.1:1", Query: "up", Max: f64(1)}, loopback())
	if _, err := m.Measure(context.Background()); err == nil || IsPermanent(err) || IsInconclusive(err) {
		t.Errorf("no Prometheus listening: %v", err)
	}
	notProm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>login</html>") }))
	defer notProm.Close()
	m, _ = NewMeasurer(contract.AnalysisSpec{Provider: ProviderPrometheus, Address: notProm.URL, Query: "up", Max: f64(1)}, loopback())
	if _, err := m.Measure(context.Background()); err == nil || !strings.Contains(err.Error(), "the answer (200 OK, 18 bytes) is not a Prometheus API answer") || strings.Contains(err.Error(), "login") {
		t.Errorf("not Prometheus: %v", err)
	}

	// A whole analysis, the query naming the fleet under analysis.
	spec := contract.AnalysisSpec{Provider: ProviderPrometheus, Metric: "errorRate", Address: addr,
		Query: `sum(rate(errors{fleet="{{fleet}}"}[1m])) / sum(rate(requests{fleet="{{fleet}}"}[1m]))`,
		Max:   f64(0.05), Interval: time.Minute, Count: 3}
	spec = Expand(spec, map[string]string{"fleet": "fl-1"})
	pm, err := NewMeasurer(spec, loopback())
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	res, err := c.runner().Run(context.Background(), spec, pm, nil)
	if err != nil || res.Phase != PhaseSuccessful || res.Message != "errorRate met max 0.05 in 3 of 3 measurements" {
		t.Fatalf("analysis: %+v %v", res, err)
	}
	spec.Max = f64(0.01)
	res, err = c.runner().Run(context.Background(), spec, pm, nil)
	if err != nil || res.Phase != PhaseFailed || res.Message != "errorRate was 0.0123 > max 0.01 in 1 of 1 measurements" {
		t.Fatalf("failing analysis: %+v %v", res, err)
	}
	spec.Query, spec.Metric = "slow", ""
	res, err = c.runner().Run(context.Background(), spec, &PrometheusMeasurer{Address: addr, Query: "slow", HTTP: loopback().HTTP}, nil)
	if err != nil || res.Phase != PhaseFailed || res.Reason != ReasonCouldNotMeasure ||
		!strings.HasPrefix(res.Message, `could not measure the query's value: 5 errors in a row (consecutiveErrorLimit 4); last: prometheus`) {
		t.Fatalf("unreachable analysis: %+v %v", res, err)
	}
}

func TestHTTPProvider(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":{"errorRate":0.02,"big":12345678901234567890,"none":null,"text":"0.5","word":"high","ok":true},"items":[{"value":1.5},{"value":"2"}]}`)
	})
	mux.HandleFunc("GET /bare", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, " 0.75\n") })
	mux.HandleFunc("GET /down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /html", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	measure := func(path, field string) (Reading, error) {
		t.Helper()
		m, err := NewMeasurer(contract.AnalysisSpec{Provider: ProviderHTTP, URL: srv.URL + path, Field: field, Max: f64(1)}, loopback())
		if err != nil {
			t.Fatal(err)
		}
		return m.Measure(context.Background())
	}
	for _, tc := range []struct {
		path, field string
		want        float64
	}{
		{"/stats", "data.errorRate", 0.02},
		{"/stats", "data.big", 12345678901234567890},
		{"/stats", "data.text", 0.5},
		{"/stats", "items.0.value", 1.5},
		{"/stats", "items.1.value", 2},
		{"/bare", "", 0.75},
	} {
		if r, err := measure(tc.path, tc.field); err != nil || r.Value != tc.want {
			t.Errorf("%s %s: %+v %v, want %v", tc.path, tc.field, r, err, tc.want)
		}
	}
	for _, tc := range []struct {
		path, field, want string
	}{
		{"/stats", "data.missing", `field data.missing: data has no member "missing"`},
		{"/stats", "items.2.value", "field items.2.value: items has 2 elements, no index 2"},
		{"/stats", "items.first", `items is an array, and "first" is not an index`},
		{"/stats", "data.errorRate.x", "data.errorRate is a number, not an object or array"},
		{"/stats", "data.word", `field data.word is a string of 4 bytes, not a number`},
		{"/stats", "data.ok", "field data.ok is a boolean, not a number"},
		{"/stats", "data", "field data is an object, not a number"},
		{"/down", "x", `answered 503 Service Unavailable, 12 bytes`},
		{"/html", "x", "the answer (200 OK, 6 bytes) is not JSON"},
	} {
		_, err := measure(tc.path, tc.field)
		if err == nil || IsInconclusive(err) || !strings.Contains(err.Error(), tc.want) ||
			strings.Contains(err.Error(), "maintenance") || strings.Contains(err.Error(), "high") {
			t.Errorf("%s %s: %v, want an error containing %q", tc.path, tc.field, err, tc.want)
		}
	}
	if _, err := measure("/stats", "data.none"); !IsInconclusive(err) {
		t.Errorf("null: %v, want inconclusive", err)
	}

	spec := contract.AnalysisSpec{Provider: ProviderHTTP, URL: srv.URL + "/stats", Field: "data.errorRate", Max: f64(0.01), Interval: time.Second, Count: 2}
	m, err := NewMeasurer(spec, loopback())
	if err != nil {
		t.Fatal(err)
	}
	res, err := newClock().runner().Run(context.Background(), spec, m, nil)
	if err != nil || res.Phase != PhaseFailed || res.Message != "data.errorRate of GET "+srv.URL+"/stats was 0.02 > max 0.01 in 1 of 1 measurements" {
		t.Fatalf("%+v %v", res, err)
	}
}

// The query goes as GET /api/v1/query?query=..., as it always did (the API
// client would POST it). A null result has no data, as an empty vector.
func TestPrometheusProviderSendsGETAndNullIsNoData(t *testing.T) {
	var methods []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method)
		mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/query" {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("query") {
		case "one":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767323045.781,"0.25"]}]}}`)
		default:
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":null}}`)
		}
	}))
	defer srv.Close()
	m, err := NewMeasurer(contract.AnalysisSpec{Provider: ProviderPrometheus, Address: srv.URL, Query: "one", Max: f64(1)}, loopback())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := m.Measure(context.Background()); err != nil || r.Value != 0.25 {
		t.Errorf("one series: %+v %v", r, err)
	}
	m, _ = NewMeasurer(contract.AnalysisSpec{Provider: ProviderPrometheus, Address: srv.URL, Query: "none", Max: f64(1)}, loopback())
	if _, err := m.Measure(context.Background()); !IsNoData(err) || err.Error() != "no samples yet: the query returned an empty vector" {
		t.Errorf("null result: %v, want no data", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(methods, ",") != "GET,GET" {
		t.Errorf("methods %v, want one GET a query", methods)
	}
}
