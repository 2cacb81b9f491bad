package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/router/routermetrics"
)

// newRouter starts an in-process router (the proxy and its admin handler) in
// front of backends, each fleet weighted equally; it returns the proxy URL and
// the admin address.
func newRouter(t *testing.T, backends map[string]*httptest.Server) (string, string) {
	t.Helper()
	s := router.NewServer(nil)
	f := router.File{Generation: 1}
	for id, b := range backends {
		f.Backends = append(f.Backends, contract.Backend{FleetID: id, Weight: 100 / len(backends), Targets: []string{b.Listener.Addr().String()}})
	}
	s.Apply(f)
	proxy := httptest.NewServer(s)
	t.Cleanup(proxy.Close)
	admin := httptest.NewServer(s.AdminHandler())
	t.Cleanup(admin.Close)
	return proxy.URL, admin.Listener.Addr().String()
}

func adminSource(admin string) MetricsSource {
	return func(ctx context.Context) (map[string]contract.FleetMetrics, error) {
		text, err := router.GetMetrics(ctx, admin)
		if err != nil {
			return nil, err
		}
		return routermetrics.ParseFleetMetrics(strings.NewReader(text))
	}
}

// drive sends n requests to url and returns the status counts.
func drive(t *testing.T, url string, n int) map[int]int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	out := map[int]int{}
	for range n {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		out[resp.StatusCode]++
	}
	return out
}

// waitMetrics polls the router until its counters reach the requests sent: the
// router counts a request after its handler returns, which can be just after
// the client read the answer.
func waitMetrics(t *testing.T, src MetricsSource, want func(map[string]contract.FleetMetrics) bool) map[string]contract.FleetMetrics {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := src(context.Background())
		if err == nil && want(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("router metrics did not reach the expected counts: %+v, %v", m, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRouterFleetMetricsFromARealRouter(t *testing.T) {
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer fail.Close()
	url, admin := newRouter(t, map[string]*httptest.Server{"fl-a": fail})
	drive(t, url+"/ok", 7)
	drive(t, url+"/fail", 3)
	m := waitMetrics(t, adminSource(admin), func(m map[string]contract.FleetMetrics) bool { return m["fl-a"].Requests == 10 })
	fm := m["fl-a"]
	if fm.Errors != 3 || fm.Latency.Count != 10 || fm.Latency.Sum <= 0 {
		t.Fatalf("fl-a: %+v", fm)
	}
	if n := len(fm.Latency.Buckets); n != 13 || fm.Latency.Buckets[0].UpperBound != 0.001 || fm.Latency.Buckets[n-1].UpperBound != 10 {
		t.Fatalf("buckets %+v", fm.Latency.Buckets)
	}
	for i, b := range fm.Latency.Buckets {
		if i > 0 && b.Count < fm.Latency.Buckets[i-1].Count {
			t.Fatalf("buckets are not cumulative: %+v", fm.Latency.Buckets)
		}
	}
	if fm.Latency.Buckets[12].Count != 10 {
		t.Fatalf("all requests took under 10s: %+v", fm.Latency.Buckets)
	}
}

func hist(count float64, buckets ...float64) contract.Histogram {
	h := contract.Histogram{Count: count}
	for i := 0; i < len(buckets); i += 2 {
		h.Buckets = append(h.Buckets, contract.HistogramBucket{UpperBound: buckets[i], Count: buckets[i+1]})
	}
	return h
}

func TestQuantile(t *testing.T) {
	h := hist(50, 0.1, 10, 0.5, 30, 1, 40)
	for _, tc := range []struct {
		q, want float64
	}{
		{0.1, 0.05},  // rank 5 of the 10 in [0, 0.1]
		{0.2, 0.1},   // rank 10: the top of the first bucket
		{0.5, 0.4},   // rank 25: 15 of the 20 in (0.1, 0.5]
		{0.8, 1},     // rank 40: the top of the last finite bucket
		{0.9, 1},     // rank 45 is in +Inf: the highest finite bound
		{0.99, 1},    // likewise
		{0.7, 0.75},  // rank 35: 5 of the 10 in (0.5, 1]
		{0.6, 0.5},   // rank 30
		{0.21, 0.11}, // rank 10.5: 0.5 of 20 in (0.1, 0.5]
	} {
		if got := Quantile(tc.q, h); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := Quantile(0.5, hist(0, 0.1, 0, 1, 0)); !math.IsNaN(got) {
		t.Errorf("empty histogram: %v, want NaN", got)
	}
	if got := Quantile(0.5, contract.Histogram{Count: 3}); !math.IsNaN(got) {
		t.Errorf("no buckets: %v, want NaN", got)
	}
	if Quantile(-1, h) != math.Inf(-1) || Quantile(2, h) != math.Inf(1) {
		t.Errorf("q out of range")
	}
	// A non-monotonic scrape is fixed up as Prometheus does.
	if got, want := Quantile(0.5, hist(4, 0.1, 1, 0.2, 0, 0.4, 4)), 0.2+0.2/3; math.Abs(got-want) > 1e-9 {
		t.Errorf("non-monotonic: %v, want %v", got, want)
	}
}

func TestDeltaMetrics(t *testing.T) {
	prev := contract.FleetMetrics{Requests: 100, Errors: 5, Latency: hist(100, 0.1, 60, 1, 90)}
	prev.Latency.Sum = 20
	cur := contract.FleetMetrics{Requests: 150, Errors: 25, Latency: hist(150, 0.1, 70, 1, 130)}
	cur.Latency.Sum = 32
	d, reset := DeltaMetrics(cur, prev)
	want := contract.FleetMetrics{Requests: 50, Errors: 20, Latency: hist(50, 0.1, 10, 1, 40)}
	want.Latency.Sum = 12
	if reset || !reflect.DeepEqual(d, want) {
		t.Fatalf("delta %+v (reset %v), want %+v", d, reset, want)
	}
	// p50 of the window: rank 25 is 15 of the 30 in (0.1, 1].
	if got := Quantile(0.5, d.Latency); math.Abs(got-0.55) > 1e-9 {
		t.Fatalf("p50 of the window %v, want 0.55", got)
	}
	// A router restart: counters went down, the window is what came since.
	restarted := contract.FleetMetrics{Requests: 10, Errors: 1, Latency: hist(10, 0.1, 10, 1, 10)}
	if d, reset := DeltaMetrics(restarted, cur); !reset || !reflect.DeepEqual(d, restarted) {
		t.Fatalf("after a restart: %+v %v", d, reset)
	}
	// A fleet first seen: everything is new.
	if d, reset := DeltaMetrics(cur, contract.FleetMetrics{}); reset || !reflect.DeepEqual(d, cur) {
		t.Fatalf("from zero: %+v %v", d, reset)
	}
}

func TestRouterMeasurer(t *testing.T) {
	var mu sync.Mutex
	var readings []map[string]contract.FleetMetrics
	var fail error
	src := func(ctx context.Context) (map[string]contract.FleetMetrics, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail != nil {
			return nil, fail
		}
		r := readings[0]
		if len(readings) > 1 {
			readings = readings[1:]
		}
		return r, nil
	}
	set := func(rs ...map[string]contract.FleetMetrics) { mu.Lock(); readings = rs; mu.Unlock() }
	fm := func(req, errs float64) contract.FleetMetrics {
		return contract.FleetMetrics{Requests: req, Errors: errs}
	}
	ctx := context.Background()

	m, err := NewRouterMeasurer(MetricErrorRate, "fl-1", 10, src)
	if err != nil {
		t.Fatal(err)
	}
	if m.String() != "errorRate of fleet fl-1" {
		t.Errorf("String %q", m.String())
	}
	set(map[string]contract.FleetMetrics{}, // the fleet got nothing yet
		map[string]contract.FleetMetrics{"fl-1": fm(100, 31), "fl-2": fm(5, 5)},
		map[string]contract.FleetMetrics{"fl-1": fm(105, 31)},
		map[string]contract.FleetMetrics{"fl-1": fm(20, 0)})
	if err := m.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := m.Measure(ctx)
	if err != nil || r.Value != 0.31 || !strings.HasPrefix(r.Detail, "31 of 100 requests answered 5xx in ") {
		t.Fatalf("window 1: %+v %v", r, err)
	}
	if _, err := m.Measure(ctx); !IsInconclusive(err) || !strings.Contains(err.Error(), "fleet fl-1 received 5 requests in") || !strings.Contains(err.Error(), "fewer than minRequests 10") {
		t.Fatalf("window 2: %v", err)
	}
	r, err = m.Measure(ctx)
	if err != nil || r.Value != 0 || !strings.Contains(r.Detail, "the router restarted in between") {
		t.Fatalf("window 3: %+v %v", r, err)
	}

	// Errors: a transient one is a measurement error, a refusal is permanent.
	mu.Lock()
	fail = errors.New("connection refused")
	mu.Unlock()
	if _, err := m.Measure(ctx); err == nil || IsPermanent(err) || IsInconclusive(err) {
		t.Fatalf("scrape failure: %v", err)
	}
	mu.Lock()
	fail = Permanent(errors.New("driver x exports no router metrics")) // as the activity's source marks a provider's refusal
	mu.Unlock()
	if err := m.Begin(ctx); !IsPermanent(err) {
		t.Fatalf("no metrics: %v", err)
	}

	// Latency.
	mu.Lock()
	fail = nil
	mu.Unlock()
	p99, err := NewRouterMeasurer(MetricP99, "fl-1", 1, src)
	if err != nil {
		t.Fatal(err)
	}
	set(map[string]contract.FleetMetrics{"fl-1": {Requests: 0, Latency: hist(0, 0.1, 0, 1, 0)}},
		map[string]contract.FleetMetrics{"fl-1": {Requests: 100, Latency: hist(100, 0.1, 50, 1, 100)}})
	p99.Begin(ctx)
	if r, err := p99.Measure(ctx); err != nil || math.Abs(r.Value-0.982) > 1e-9 {
		t.Fatalf("p99: %+v %v, want 0.982", r, err)
	}

	if _, err := NewRouterMeasurer("p42", "fl-1", 1, src); err == nil {
		t.Fatal("p42 accepted")
	}
	if _, err := NewRouterMeasurer(MetricP50, "", 1, src); err == nil {
		t.Fatal("no fleet accepted")
	}
}

// TestRouterAnalysisEndToEnd runs errorRate and latency analyses of two fleets
// behind a real router (in process), one of which answers 500 to 30% of
// requests, while the test drives traffic through the router.
func TestRouterAnalysisEndToEnd(t *testing.T) {
	var n atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 < 3 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "bad fleet, mostly fine")
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "good fleet")
	}))
	defer good.Close()
	url, admin := newRouter(t, map[string]*httptest.Server{"fl-bad": bad, "fl-good": good})

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				sent.Add(1)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()

	spec := func(metric string, max float64) contract.AnalysisSpec {
		return contract.AnalysisSpec{Provider: ProviderRouter, Metric: metric, Max: f64(max), Interval: 300 * time.Millisecond, Count: 3}
	}
	type run struct {
		fleet string
		spec  contract.AnalysisSpec
		res   Result
		err   error
	}
	runs := []*run{
		{fleet: "fl-bad", spec: spec(MetricErrorRate, 0.05)},
		{fleet: "fl-good", spec: spec(MetricErrorRate, 0.05)},
		{fleet: "fl-good", spec: spec(MetricP95, 2.5)},
	}
	start := time.Now()
	var rw sync.WaitGroup
	for _, r := range runs {
		rw.Add(1)
		go func() {
			defer rw.Done()
			m, err := NewMeasurer(r.spec, Env{Metrics: adminSource(admin), FleetID: r.fleet})
			if err != nil {
				r.err = err
				return
			}
			r.res, r.err = Run(context.Background(), r.spec, m, nil)
		}()
	}
	rw.Wait()
	t.Logf("3 analyses in %s over %d requests", time.Since(start).Round(time.Millisecond), sent.Load())

	for _, r := range runs {
		if r.err != nil {
			t.Fatalf("%s %s: %v", r.spec.Metric, r.fleet, r.err)
		}
		t.Logf("%s of %s: %s: %s", r.spec.Metric, r.fleet, r.res.Phase, r.res.Message)
		for _, m := range r.res.Measurements {
			t.Logf("  %s %s %s", m.Phase, FormatValue(m.Value), m.Message)
		}
	}
	badRes := runs[0].res
	if badRes.Phase != PhaseFailed || badRes.Reason != ReasonFailureLimit || len(badRes.Measurements) != 1 {
		t.Errorf("bad fleet: %s (%s) after %d measurements, want Failed at the first", badRes.Phase, badRes.Reason, len(badRes.Measurements))
	}
	if v := badRes.Measurements[0].Value; v == nil || *v < 0.2 || *v > 0.4 {
		t.Errorf("bad fleet error rate %v, want about 0.3", v)
	}
	if !strings.HasPrefix(badRes.Message, "errorRate of fleet fl-bad was 0.") || !strings.HasSuffix(badRes.Message, " > max 0.05 in 1 of 1 measurements") {
		t.Errorf("bad fleet message %q", badRes.Message)
	}
	for _, r := range runs[1:] {
		if r.res.Phase != PhaseSuccessful || len(r.res.Measurements) != 3 {
			t.Errorf("%s of good fleet: %s after %d measurements: %s", r.spec.Metric, r.res.Phase, len(r.res.Measurements), r.res.Message)
		}
	}
	if got := runs[1].res.Measurements[2].Value; got == nil || *got != 0 {
		t.Errorf("good fleet error rate %v", got)
	}
}
