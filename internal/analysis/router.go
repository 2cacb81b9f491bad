package analysis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/imago/imago/internal/contract"
)

// MetricsSource reads the cumulative per-fleet metrics of a service's router
// (provider.Provider.FleetMetrics bound to a route key). It marks an error
// that retrying cannot fix (a driver without router metrics) Permanent: the
// source knows its provider's errors, this package does not import providers.
type MetricsSource func(ctx context.Context) (map[string]contract.FleetMetrics, error)

// RouterMeasurer measures one fleet's traffic through the service router over
// windows: each measurement is the difference between the router's cumulative
// counters now and at the previous scrape. It is Windowed.
type RouterMeasurer struct {
	metric      string
	fleetID     string
	minRequests float64
	source      MetricsSource
	now         func() time.Time

	have     bool
	prev     contract.FleetMetrics
	prevTime time.Time
}

var _ Windowed = (*RouterMeasurer)(nil)

// NewRouterMeasurer measures metric (errorRate, p50, p90, p95, p99) of fleetID;
// windows with fewer than minRequests requests are inconclusive.
func NewRouterMeasurer(metric, fleetID string, minRequests int, source MetricsSource) (*RouterMeasurer, error) {
	if _, ok := routerQuantiles[metric]; !ok && metric != MetricErrorRate {
		return nil, fmt.Errorf("metric %q is not a router metric", metric)
	}
	if fleetID == "" {
		return nil, fmt.Errorf("router metric %s needs the fleet to measure", metric)
	}
	return &RouterMeasurer{metric: metric, fleetID: fleetID, minRequests: float64(max(minRequests, 1)), source: source, now: time.Now}, nil
}

// String names what is measured: "errorRate of fleet fl-1".
func (m *RouterMeasurer) String() string { return m.metric + " of fleet " + m.fleetID }

func (m *RouterMeasurer) scrape(ctx context.Context) (contract.FleetMetrics, error) {
	all, err := m.source(ctx)
	if err != nil {
		if IsPermanent(err) {
			return contract.FleetMetrics{}, err
		}
		return contract.FleetMetrics{}, fmt.Errorf("read router metrics: %w", err)
	}
	return all[m.fleetID], nil // a fleet that got no request yet may be absent: zero
}

// Begin takes the starting point of the first window.
func (m *RouterMeasurer) Begin(ctx context.Context) error {
	cur, err := m.scrape(ctx)
	if err != nil {
		return err
	}
	m.have, m.prev, m.prevTime = true, cur, m.now()
	return nil
}

// Measure measures the window since Begin or the previous successful Measure.
func (m *RouterMeasurer) Measure(ctx context.Context) (Reading, error) {
	cur, err := m.scrape(ctx)
	if err != nil {
		return Reading{}, err
	}
	at := m.now()
	if !m.have {
		m.have, m.prev, m.prevTime = true, cur, at
		return Reading{}, fmt.Errorf("no earlier reading of the router's counters to compare with; the window starts now")
	}
	d, reset := DeltaMetrics(cur, m.prev)
	window := at.Sub(m.prevTime).Round(time.Millisecond)
	m.prev, m.prevTime = cur, at
	note := ""
	if reset {
		note = ", the router restarted in between"
	}
	if d.Requests < m.minRequests {
		return Reading{}, NoData("no samples yet: fleet %s received %s requests in %s%s, fewer than minRequests %s",
			m.fleetID, fmtValue(d.Requests), window, note, fmtValue(m.minRequests))
	}
	if m.metric == MetricErrorRate {
		return Reading{
			Value:  d.Errors / d.Requests,
			Detail: fmt.Sprintf("%s of %s requests answered 5xx in %s%s", fmtValue(d.Errors), fmtValue(d.Requests), window, note),
		}, nil
	}
	v := Quantile(routerQuantiles[m.metric], d.Latency)
	if math.IsNaN(v) {
		return Reading{}, NoData("no samples yet: no latency observations of fleet %s in %s%s", m.fleetID, window, note)
	}
	return Reading{
		Value:  v,
		Detail: fmt.Sprintf("latency in seconds over %s requests in %s%s", fmtValue(d.Latency.Count), window, note),
	}, nil
}

// DeltaMetrics returns cur - prev, the traffic between two readings of cumulative
// metrics. When a counter went down the router restarted in between: the delta
// is then cur (what was counted since the restart, as Prometheus' rate assumes)
// and reset is true.
func DeltaMetrics(cur, prev contract.FleetMetrics) (d contract.FleetMetrics, reset bool) {
	if cur.Requests < prev.Requests || cur.Errors < prev.Errors || cur.Latency.Count < prev.Latency.Count ||
		!sameBounds(cur.Latency, prev.Latency) && len(prev.Latency.Buckets) > 0 {
		return cur, true
	}
	d.Requests = cur.Requests - prev.Requests
	d.Errors = cur.Errors - prev.Errors
	d.Latency.Count = cur.Latency.Count - prev.Latency.Count
	d.Latency.Sum = cur.Latency.Sum - prev.Latency.Sum
	d.Latency.Buckets = make([]contract.HistogramBucket, len(cur.Latency.Buckets))
	for i, b := range cur.Latency.Buckets {
		d.Latency.Buckets[i] = b
		if len(prev.Latency.Buckets) > 0 {
			d.Latency.Buckets[i].Count -= prev.Latency.Buckets[i].Count
		}
	}
	return d, false
}

func sameBounds(a, b contract.Histogram) bool {
	if len(a.Buckets) != len(b.Buckets) {
		return false
	}
	for i := range a.Buckets {
		if a.Buckets[i].UpperBound != b.Buckets[i].UpperBound {
			return false
		}
	}
	return true
}

// Quantile estimates the q-quantile (0 <= q <= 1) of the observations in h as
// Prometheus' histogram_quantile does: it finds the bucket holding the
// observation of rank q*Count and interpolates linearly within it, assuming the
// lowest bucket starts at 0 and returning the highest finite upper bound when
// the rank falls in the +Inf bucket. It returns NaN when h has no observation or
// no finite bucket.
func Quantile(q float64, h contract.Histogram) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	n := len(h.Buckets)
	if n == 0 || h.Count <= 0 {
		return math.NaN()
	}
	// Counts must not decrease (scrapes are not atomic); fix up as Prometheus does.
	counts := make([]float64, n+1)
	for i, b := range h.Buckets {
		counts[i] = b.Count
		if i > 0 && counts[i] < counts[i-1] {
			counts[i] = counts[i-1]
		}
	}
	counts[n] = math.Max(h.Count, counts[n-1])
	observations := counts[n]
	rank := q * observations
	b := 0
	for b < n && counts[b] < rank {
		b++
	}
	if b == n {
		return h.Buckets[n-1].UpperBound // in the +Inf bucket
	}
	if b == 0 && h.Buckets[0].UpperBound <= 0 {
		return h.Buckets[0].UpperBound
	}
	start, end, count := 0.0, h.Buckets[b].UpperBound, counts[b]
	if b > 0 {
		start = h.Buckets[b-1].UpperBound
		count -= counts[b-1]
		rank -= counts[b-1]
	}
	if count == 0 {
		return start // q == 0 and empty buckets below: the lowest possible value
	}
	return start + (end-start)*(rank/count)
}
