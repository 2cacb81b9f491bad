package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
)

func TestMain(m *testing.M) {
	// The local driver starts routers by re-executing this test binary.
	router.RunIfChild()
	os.Exit(m.Run())
}

func f64(v float64) *float64 { return &v }

func runAnalysis(t *testing.T, a *Activities, in contract.AnalysisInput, prev *AnalysisProgress) (contract.AnalysisResult, []AnalysisProgress, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if prev != nil {
		env.SetHeartbeatDetails(*prev)
	}
	hb := &heartbeatCounter{}
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{hb}})
	val, err := env.ExecuteActivity(a.RunAnalysis, in)
	var beats []AnalysisProgress
	for _, d := range hb.all() {
		beats = append(beats, d.(AnalysisProgress))
	}
	if err != nil {
		return contract.AnalysisResult{}, beats, err
	}
	var res contract.AnalysisResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, beats, nil
}

// TestRunAnalysisRouterLocalDriver runs errorRate analyses through the local
// driver's real router process (FleetMetrics scrapes its admin listener) in
// front of two fleets, one answering 500 to 30% of requests, while the test
// drives traffic through the router.
func TestRunAnalysisRouterLocalDriver(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	d, err := local.Open(local.Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	key := contract.RouteKey{Service: "web", Environment: "test"}
	t.Cleanup(func() {
		if err := d.StopRouter(context.Background(), key); err != nil {
			t.Errorf("stop router: %v", err)
		}
		if err := local.CleanupHome(home); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	var n atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 < 3 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "v2")
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "v1") }))
	defer good.Close()

	p := provider.New("local", d)
	a := &Activities{Provider: p}
	in := contract.AnalysisInput{
		Name: "errors", Key: key,
		Spec: contract.AnalysisSpec{Provider: analysis.ProviderRouter, Metric: analysis.MetricErrorRate, Max: f64(0.05), Interval: 300 * time.Millisecond, Count: 3},
	}

	// Before the router runs, nothing can be measured: "could not measure".
	noRouter := in
	noRouter.FleetID = "fl-good"
	noRouter.Spec.ConsecutiveErrorLimit = 1
	noRouter.Spec.Interval = 10 * time.Millisecond
	res, _, err := runAnalysis(t, a, noRouter, nil)
	if err != nil || res.Phase != AnalysisFailed || res.Reason != analysis.ReasonCouldNotMeasure ||
		!strings.Contains(res.Message, "no router of test/web is running") {
		t.Fatalf("without a router: %+v %v", res, err)
	}

	err = p.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{
		{FleetID: "fl-bad", Weight: 50, Targets: []string{bad.Listener.Addr().String()}},
		{FleetID: "fl-good", Weight: 50, Targets: []string{good.Listener.Addr().String()}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ri, err := d.RouterProcess(key)
	if err != nil {
		t.Fatal(err)
	}

	tctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for tctx.Err() == nil {
				req, _ := http.NewRequestWithContext(tctx, http.MethodGet, "http://"+ri.Listen+"/", nil)
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

	start := time.Now()
	type outcome struct {
		res   contract.AnalysisResult
		beats []AnalysisProgress
		err   error
	}
	outs := map[string]*outcome{"fl-bad": {}, "fl-good": {}}
	var rw sync.WaitGroup
	for fleet, o := range outs {
		rw.Add(1)
		go func() {
			defer rw.Done()
			in := in
			in.FleetID = fleet
			o.res, o.beats, o.err = runAnalysis(t, a, in, nil)
		}()
	}
	rw.Wait()
	t.Logf("both analyses in %s, %d requests through the router (pid %d)", time.Since(start).Round(time.Millisecond), sent.Load(), ri.PID)
	for fleet, o := range outs {
		if o.err != nil {
			t.Fatalf("%s: %v", fleet, o.err)
		}
		t.Logf("%s: %s: %s", fleet, o.res.Phase, o.res.Message)
		for _, m := range o.res.Measurements {
			t.Logf("  %s %s %s", m.Phase, analysis.FormatValue(m.Value), m.Message)
		}
		if len(o.beats) == 0 || len(o.beats[len(o.beats)-1].Measurements) == 0 {
			t.Errorf("%s: no heartbeat with measurements: %+v", fleet, o.beats)
		}
	}

	b := outs["fl-bad"].res
	if b.Phase != AnalysisFailed || b.Reason != analysis.ReasonFailureLimit || b.Name != "errors" || b.FleetID != "fl-bad" || len(b.Measurements) != 1 {
		t.Errorf("bad fleet: %+v, want Failed at the first measurement", b)
	}
	if !strings.HasPrefix(b.Message, "errorRate of fleet fl-bad was 0.") || !strings.HasSuffix(b.Message, "> max 0.05 in 1 of 1 measurements") {
		t.Errorf("bad fleet message %q", b.Message)
	}
	if v := b.Measurements[0].Value; v == nil || *v < 0.2 || *v > 0.4 {
		t.Errorf("bad fleet error rate %v, want about 0.3", v)
	}
	g := outs["fl-good"].res
	if g.Phase != AnalysisSuccessful || len(g.Measurements) != 3 || g.Message != "errorRate of fleet fl-good met max 0.05 in 3 of 3 measurements" {
		t.Errorf("good fleet: %+v", g)
	}
}

func TestRunAnalysisResumesFromHeartbeat(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/stats/fl-1" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"data":{"errorRate":0.01}}`)
	}))
	defer srv.Close()
	a := &Activities{Analysis: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)}
	in := contract.AnalysisInput{Name: "stats", FleetID: "fl-1", Spec: contract.AnalysisSpec{
		Provider: analysis.ProviderHTTP, URL: srv.URL + "/stats/{{fleet}}", Field: "data.errorRate",
		Max: f64(0.05), Interval: time.Hour, Count: 3, FailureLimit: 1,
	}}
	// An earlier attempt took two measurements, the last an hour ago: the third
	// is due now, and it is the last one.
	now := time.Now()
	prev := &AnalysisProgress{Measurements: []contract.Measurement{
		{Time: now.Add(-2 * time.Hour), Value: f64(0.02), Phase: analysis.PhaseSuccessful, Message: "0.02 <= max 0.05"},
		{Time: now.Add(-time.Hour - time.Second), Value: f64(0.2), Phase: analysis.PhaseFailed, Message: "0.2 > max 0.05"},
	}}
	res, _, err := runAnalysis(t, a, in, prev)
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 || len(res.Measurements) != 3 || res.Phase != AnalysisSuccessful {
		t.Fatalf("%d requests, result %+v", hits.Load(), res)
	}
	if want := "data.errorRate of GET " + srv.URL + "/stats/fl-1 met max 0.05 in 2 of 3 measurements (1 failed, tolerated by failureLimit 1: 0.2 > max 0.05)"; res.Message != want {
		t.Fatalf("message %q, want %q", res.Message, want)
	}

	// An attempt whose measurements already decided (it failed before it could
	// return) returns the outcome without measuring again.
	prev.Measurements[0].Phase, prev.Measurements[0].Value = analysis.PhaseFailed, f64(0.3)
	res, _, err = runAnalysis(t, a, in, prev)
	if err != nil || res.Phase != AnalysisFailed || hits.Load() != 1 ||
		!strings.HasSuffix(res.Message, "was 0.3 > max 0.05 in 2 of 2 measurements (failureLimit 1)") {
		t.Fatalf("%d requests, %+v %v", hits.Load(), res, err)
	}
}

func TestRunAnalysisRefusesBadSpecsWithoutRetry(t *testing.T) {
	nonRetryable := func(t *testing.T, err error, want ...string) {
		t.Helper()
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != contract.ErrAnalysisSpec {
			t.Fatalf("error %v, want a non-retryable %s", err, contract.ErrAnalysisSpec)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	}
	a := &Activities{Provider: provider.New("none", nil)}
	key := contract.RouteKey{Service: "web", Environment: "test"}

	_, _, err := runAnalysis(t, a, contract.AnalysisInput{Name: "errors", Key: key, FleetID: "fl-1", Spec: contract.AnalysisSpec{Provider: analysis.ProviderRouter, Metric: "p42"}}, nil)
	nonRetryable(t, err, "analysis errors: invalid analysis: ", `metric "p42" is not a router metric`, "interval is required", "a success condition is required")

	ok := contract.AnalysisSpec{Provider: analysis.ProviderRouter, Metric: analysis.MetricErrorRate, Max: f64(0.05), Interval: 10 * time.Millisecond}
	_, _, err = runAnalysis(t, a, contract.AnalysisInput{Name: "errors", Key: key, Spec: ok}, nil)
	nonRetryable(t, err, "no fleet to measure")

	// A provider whose driver has no router metrics cannot run router analyses.
	_, _, err = runAnalysis(t, a, contract.AnalysisInput{Name: "errors", Key: key, FleetID: "fl-1", Spec: ok}, nil)
	nonRetryable(t, err, "driver none exports no router metrics")
}

// fakePrometheus is a Prometheus-compatible HTTP endpoint on loopback: an
// instant query answers the vector of answer(query) (nil: an empty vector).
func fakePrometheus(t *testing.T, answer func(query string) *float64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		v := answer(r.URL.Query().Get("query"))
		if v == nil {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
			return
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"%g"]}]}}`, time.Now().Unix(), *v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A fleet without traffic yet: Prometheus answers an empty vector. What that
// counts as is onNoData's to say; by default it is inconclusive (a person
// decides), never a pass, and the message says there was no data and what to
// check, naming the analysis' fleet but not repeating the query.
func TestRunAnalysisNoDataFollowsOnNoData(t *testing.T) {
	var queries sync.Map
	prom := fakePrometheus(t, func(q string) *float64 { queries.Store(q, true); return nil })
	a := &Activities{Analysis: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)}
	query := `sum(rate(imago_router_errors_total{fleet="{{fleet}}"}[1m])) / sum(rate(imago_router_requests_total{fleet="{{fleet}}"}[1m]))`
	key := contract.RouteKey{Service: "web", Environment: "prod"}
	for _, tc := range []struct {
		onNoData, phase, reason, message string
	}{
		{"", AnalysisInconclusive, analysis.ReasonNoData,
			"the query's value of fleet fl-7 had no data in 1 of 1 measurements (inconclusiveLimit 0): no samples yet: the query returned an empty vector; is traffic reaching the fleet"},
		{analysis.NoDataInconclusive, AnalysisInconclusive, analysis.ReasonNoData, "had no data in 1 of 1 measurements (inconclusiveLimit 0)"},
		{analysis.NoDataFail, AnalysisFailed, analysis.ReasonNoData,
			"the query's value of fleet fl-7 had no data in 1 of 1 measurements, and onNoData is fail: no samples yet: the query returned an empty vector; is traffic reaching the fleet"},
		{analysis.NoDataPass, AnalysisSuccessful, "", "the query's value of fleet fl-7 met max 0.05 in 2 of 2 measurements (2 of them without data, passed by onNoData: pass)"},
	} {
		t.Run("onNoData="+tc.onNoData, func(t *testing.T) {
			in := contract.AnalysisInput{Name: "errors", Key: key, FleetID: "fl-7", Spec: contract.AnalysisSpec{
				Provider: analysis.ProviderPrometheus, Address: prom.URL, Query: query,
				Max: f64(0.05), Interval: 10 * time.Millisecond, Count: 2, OnNoData: tc.onNoData,
			}}
			res, _, err := runAnalysis(t, a, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Phase != tc.phase || res.Reason != tc.reason || !strings.Contains(res.Message, tc.message) {
				t.Fatalf("%s (%s): %q, want %s (%s) with %q", res.Phase, res.Reason, res.Message, tc.phase, tc.reason, tc.message)
			}
			if strings.Contains(res.Message, "imago_router_") {
				t.Errorf("the message repeats the query: %q", res.Message)
			}
			wantQuery := strings.ReplaceAll(query, "{{fleet}}", "fl-7")
			if _, ran := queries.Load(wantQuery); !ran || res.Query != wantQuery {
				t.Errorf("query shown %q, want the query as run %q", res.Query, wantQuery)
			}
			if res.Source != "prometheus "+prom.URL+" (instant query)" || res.Condition != "max 0.05" || res.OnNoData != cmp.Or(tc.onNoData, "inconclusive") {
				t.Errorf("source %+v", res.AnalysisSource)
			}
			for _, m := range res.Measurements {
				if !m.NoData || m.Value != nil || !strings.Contains(m.Message, "no data") {
					t.Errorf("measurement %+v, want one without data", m)
				}
			}
			if res.Counts.NoData != len(res.Measurements) || res.Counts.Total() != len(res.Measurements) {
				t.Errorf("counts %+v for %d measurements", res.Counts, len(res.Measurements))
			}
		})
	}
}

// A long analysis keeps its latest measurements in its result (the rollout's
// history), and counts them all.
func TestRunAnalysisKeepsTheLatestMeasurements(t *testing.T) {
	var n atomic.Int64
	prom := fakePrometheus(t, func(string) *float64 { v := float64(n.Add(1)) / 1000; return &v })
	a := &Activities{Analysis: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)}
	in := contract.AnalysisInput{Name: "errors", FleetID: "fl-1", Spec: contract.AnalysisSpec{
		Provider: analysis.ProviderPrometheus, Metric: "errorRate", Address: prom.URL, Query: "x",
		Max: f64(0.05), Interval: time.Millisecond, Count: 15,
	}}
	res, _, err := runAnalysis(t, a, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Phase != AnalysisSuccessful || res.Counts.Successful != 15 || len(res.Measurements) != analysis.KeptMeasurements {
		t.Fatalf("%s %+v with %d measurements, want 15 counted and %d kept", res.Phase, res.Counts, len(res.Measurements), analysis.KeptMeasurements)
	}
	if first := res.Measurements[0]; first.Value == nil || *first.Value != 0.006 || first.Message != "0.006 <= max 0.05" {
		t.Errorf("first kept measurement %+v, want the 6th (0.006)", first)
	}
	if res.Message != "errorRate of fleet fl-1 met max 0.05 in 15 of 15 measurements" {
		t.Errorf("message %q", res.Message)
	}
}
