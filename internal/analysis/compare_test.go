package analysis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

func compareSpec(count int, metrics ...contract.CompareMetricSpec) contract.AnalysisSpec {
	return contract.AnalysisSpec{Kind: contract.AnalysisCompare, Provider: ProviderRouter, Interval: 200 * time.Millisecond,
		Count: count, MinRequests: 3, Metrics: metrics}
}

// A canary that answers 20 ms later than its baseline, behind a real router
// under load, is judged High on p50, a critical metric, and fails whatever
// the score; the judgment says so.
func TestCompareJudgesASlowerCanaryHighThroughARealRouter(t *testing.T) {
	handler := func(delay time.Duration) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			fmt.Fprintln(w, "ok")
		}))
		t.Cleanup(s.Close)
		return s
	}
	url, admin := newRouter(t, map[string]*httptest.Server{"fl-canary": handler(20 * time.Millisecond), "fl-base": handler(0)})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				if resp, err := c.Get(url); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	spec := compareSpec(5,
		contract.CompareMetricSpec{Metric: MetricP50, Direction: "increase", Tolerance: 0.5, Weight: 1, Critical: true},
		contract.CompareMetricSpec{Metric: MetricErrorRate, Direction: "increase", Tolerance: 0.1, Weight: 1})
	var seen int
	res, j, err := Runner{}.Compare(ctx, spec, "fl-canary", "fl-base", adminSource(admin), nil, func(m contract.Measurement, s CompareSamples) {
		seen++
		assert.Len(t, s.Canary[MetricP50], seen, "one p50 sample of the canary per interval: %s", m.Message)
	})
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, PhaseFailed, res.Phase, res.Message)
	assert.Equal(t, ReasonJudgment, res.Reason)
	assert.Equal(t, contract.JudgmentFail, j.Decision)
	p50 := j.Metrics[0]
	assert.Equal(t, contract.MetricHigh, p50.Verdict, "%+v", p50)
	assert.Equal(t, 5, p50.CanarySamples)
	assert.Equal(t, 5, p50.BaselineSamples)
	assert.Greater(t, p50.CanaryMedian, 0.01, "in the router's (0.01, 0.025] bucket at least")
	assert.Less(t, p50.P, 0.05)
	assert.Equal(t, contract.MetricPass, j.Metrics[1].Verdict, "no errors on either side")
	assert.Regexp(t, `^judgment: score 50 \(fail\): p50 \d+% higher than the baseline \(p=0\.\d+\), more than the 50% tolerated \(canary fl-canary vs baseline fl-base, 5 intervals\)$`, res.Message)
	assert.Equal(t, 5, res.Counts.Successful)
}

// cumulative is a scripted router: each read adds one interval's traffic to
// each fleet (requests, errors, and all latencies in one bucket), or fails.
type cumulative struct {
	now    map[string]contract.FleetMetrics
	per    map[string]contract.FleetMetrics // added by each read
	reads  int
	failAt func(read int) error
}

func (c *cumulative) read(ctx context.Context) (map[string]contract.FleetMetrics, error) {
	c.reads++
	if c.failAt != nil {
		if err := c.failAt(c.reads); err != nil {
			return nil, err
		}
	}
	out := map[string]contract.FleetMetrics{}
	for id, d := range c.per {
		m := c.now[id]
		m.Requests += d.Requests
		m.Errors += d.Errors
		m.Latency = hist(m.Latency.Count+d.Requests, 0.01, 0, 0.1, m.Latency.Count+d.Requests)
		c.now[id] = m
		out[id] = m
	}
	return out, nil
}

func traffic(perFleet map[string]float64) *cumulative {
	c := &cumulative{now: map[string]contract.FleetMetrics{}, per: map[string]contract.FleetMetrics{}}
	for id, n := range perFleet {
		c.per[id] = contract.FleetMetrics{Requests: n}
	}
	return c
}

// A baseline that gets no traffic is missing data: Inconclusive (a person
// decides), never a pass, with the judgment saying why and advice.
func TestCompareWithoutBaselineTrafficIsNoData(t *testing.T) {
	c := newClock()
	src := traffic(map[string]float64{"fl-canary": 50})
	res, j, err := c.runner().Compare(context.Background(), compareSpec(4, contract.CompareMetricSpec{Metric: MetricErrorRate, Direction: "increase", Weight: 1}),
		"fl-canary", "fl-base", src.read, nil, nil)
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, contract.JudgmentNoData, j.Decision)
	assert.Equal(t, PhaseInconclusive, res.Phase)
	assert.Equal(t, ReasonNoData, res.Reason)
	assert.Contains(t, res.Message, "judgment: score 0 (nodata): errorRate no data: 4 canary and 0 baseline values")
	assert.Contains(t, res.Message, "is traffic reaching the fleet through the router?")
	assert.Equal(t, contract.AnalysisCounts{Inconclusive: 4, NoData: 4}, res.Counts)
	assert.Equal(t, []time.Duration{200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}, c.slept,
		"one read starts the window, then one read an interval")
}

// Equal fleets pass; a retried attempt goes on from the samples its
// heartbeat kept, taking only the intervals still missing.
func TestCompareOfEqualFleetsPassesAndResumesFromItsSamples(t *testing.T) {
	c := newClock()
	spec := compareSpec(5, contract.CompareMetricSpec{Metric: MetricP50, Direction: "either", Tolerance: 0.1, Weight: 1})
	src := traffic(map[string]float64{"fl-canary": 40, "fl-base": 40})
	prev := []contract.Measurement{}
	for range 4 {
		prev = append(prev, contract.Measurement{Time: c.now, Phase: PhaseSuccessful, Message: "earlier"})
	}
	samples := &CompareSamples{Canary: map[string][]float64{MetricP50: {0.055, 0.055, 0.055, 0.055}}, Baseline: map[string][]float64{MetricP50: {0.055, 0.055, 0.055, 0.055}}}
	r := c.runner()
	r.Previous = prev
	res, j, err := r.Compare(context.Background(), spec, "fl-canary", "fl-base", src.read, samples, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, src.reads, "one read starts the window, one ends the fifth interval")
	assert.Equal(t, PhaseSuccessful, res.Phase, res.Message)
	assert.Len(t, res.Measurements, 5)
	assert.Equal(t, contract.JudgmentPass, j.Decision)
	assert.Equal(t, 5, j.Metrics[0].CanarySamples)
	assert.Equal(t, contract.MetricPass, j.Metrics[0].Verdict)
}

// Reads that keep failing fail the compare as "could not measure", without
// a judgment; a provider that cannot serve router metrics stops it at once.
func TestCompareThatCannotReadTheRouterFails(t *testing.T) {
	c := newClock()
	src := traffic(nil)
	src.failAt = func(int) error { return errors.New("connection refused") }
	spec := compareSpec(4, contract.CompareMetricSpec{Metric: MetricP99, Direction: "increase", Weight: 1})
	spec.ConsecutiveErrorLimit = 2
	res, j, err := c.runner().Compare(context.Background(), spec, "fl-canary", "fl-base", src.read, nil, nil)
	require.NoError(t, err)
	assert.Nil(t, j)
	assert.Equal(t, PhaseFailed, res.Phase)
	assert.Equal(t, ReasonCouldNotMeasure, res.Reason)
	assert.Equal(t, "could not measure fleets fl-canary and fl-base: 3 errors in a row (consecutiveErrorLimit 2); last: read router metrics: connection refused", res.Message)

	// the activity's source marks a driver's refusal (no router metrics here) as permanent
	src.failAt = func(int) error { return Permanent(errors.New("no router metrics here")) }
	_, _, err = c.runner().Compare(context.Background(), spec, "fl-canary", "fl-base", src.read, nil, nil)
	assert.True(t, IsPermanent(err), "%v", err)

	_, _, err = c.runner().Compare(context.Background(), spec, "fl-canary", "", src.read, nil, nil)
	assert.ErrorContains(t, err, "kind compare needs the canary and a baseline fleet (strategy.baseline: true)")
}
