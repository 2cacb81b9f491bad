package activities

import (
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

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/analysis"
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

func runAnalysis(t *testing.T, a *Activities, in AnalysisInput, prev *AnalysisProgress) (AnalysisResult, []AnalysisProgress, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if prev != nil {
		env.SetHeartbeatDetails(*prev)
	}
	var mu sync.Mutex
	var beats []AnalysisProgress
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var p AnalysisProgress
		if err := details.Get(&p); err != nil {
			t.Errorf("heartbeat details: %v", err)
		}
		mu.Lock()
		beats = append(beats, p)
		mu.Unlock()
	})
	val, err := env.ExecuteActivity(a.RunAnalysis, in)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		return AnalysisResult{}, beats, err
	}
	var res AnalysisResult
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
	key := provider.RouteKey{Service: "web", Environment: "test"}
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
	in := AnalysisInput{
		Name: "errors", Key: key,
		Spec: analysis.Spec{Provider: analysis.ProviderRouter, Metric: analysis.MetricErrorRate, Max: f64(0.05), Interval: 300 * time.Millisecond, Count: 3},
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

	err = p.SetRoute(ctx, key, provider.Route{Backends: []provider.Backend{
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
		res   AnalysisResult
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
			t.Logf("  %s %v %s", m.Phase, m.Value, m.Message)
		}
		if len(o.beats) == 0 || len(o.beats[0].Measurements) == 0 {
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
	if v := b.Measurements[0].Value; v < 0.2 || v > 0.4 {
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
	in := AnalysisInput{Name: "stats", FleetID: "fl-1", Spec: analysis.Spec{
		Provider: analysis.ProviderHTTP, URL: srv.URL + "/stats/{{fleet}}", Field: "data.errorRate",
		Max: f64(0.05), Interval: time.Hour, Count: 3, FailureLimit: 1,
	}}
	// An earlier attempt took two measurements, the last an hour ago: the third
	// is due now, and it is the last one.
	now := time.Now()
	prev := &AnalysisProgress{Measurements: []analysis.Measurement{
		{Time: now.Add(-2 * time.Hour), Value: 0.02, Phase: analysis.PhaseSuccessful, Message: "0.02 <= max 0.05"},
		{Time: now.Add(-time.Hour - time.Second), Value: 0.2, Phase: analysis.PhaseFailed, Message: "0.2 > max 0.05"},
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
	prev.Measurements[0].Phase, prev.Measurements[0].Value = analysis.PhaseFailed, 0.3
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
		if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrAnalysisSpec {
			t.Fatalf("error %v, want a non-retryable %s", err, ErrAnalysisSpec)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	}
	a := &Activities{Provider: provider.New("none", nil)}
	key := provider.RouteKey{Service: "web", Environment: "test"}

	_, _, err := runAnalysis(t, a, AnalysisInput{Name: "errors", Key: key, FleetID: "fl-1", Spec: analysis.Spec{Provider: analysis.ProviderRouter, Metric: "p42"}}, nil)
	nonRetryable(t, err, "analysis errors: invalid analysis: ", `metric "p42" is not a router metric`, "interval is required", "a success condition is required")

	ok := analysis.Spec{Provider: analysis.ProviderRouter, Metric: analysis.MetricErrorRate, Max: f64(0.05), Interval: 10 * time.Millisecond}
	_, _, err = runAnalysis(t, a, AnalysisInput{Name: "errors", Key: key, Spec: ok}, nil)
	nonRetryable(t, err, "no fleet to measure")

	// A provider whose driver has no router metrics cannot run router analyses.
	_, _, err = runAnalysis(t, a, AnalysisInput{Name: "errors", Key: key, FleetID: "fl-1", Spec: ok}, nil)
	nonRetryable(t, err, "driver none exports no router metrics")
}

func TestSleepHeartbeating(t *testing.T) {
	var beats atomic.Int64
	start := time.Now()
	if err := sleepHeartbeating(context.Background(), 250*time.Millisecond, 40*time.Millisecond, func() { beats.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("returned after %s", took)
	}
	if n := beats.Load(); n < 4 {
		t.Fatalf("%d heartbeats in 250ms at most 40ms apart", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := sleepHeartbeating(ctx, time.Hour, time.Second, func() {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("canceled sleep: %v", err)
	}
}
