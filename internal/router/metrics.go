package router

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// durationBuckets are the upper bounds (seconds) of the latency histogram.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// noFleet labels requests that found no backend to go to.
const noFleet = "none"

type fleetMetrics struct {
	requests atomic.Uint64
	errors   atomic.Uint64
	buckets  []atomic.Uint64 // per bucket, not cumulative; last one is +Inf
	sumNanos atomic.Int64
}

type metrics struct {
	mu     sync.RWMutex
	fleets map[string]*fleetMetrics
}

func newMetrics() *metrics { return &metrics{fleets: map[string]*fleetMetrics{}} }

func (m *metrics) fleet(id string) *fleetMetrics {
	m.mu.RLock()
	fm := m.fleets[id]
	m.mu.RUnlock()
	if fm != nil {
		return fm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if fm = m.fleets[id]; fm == nil {
		fm = &fleetMetrics{buckets: make([]atomic.Uint64, len(durationBuckets)+1)}
		m.fleets[id] = fm
	}
	return fm
}

func (m *metrics) observe(fleet string, status int, d time.Duration) {
	fm := m.fleet(fleet)
	fm.requests.Add(1)
	if status >= 500 {
		fm.errors.Add(1)
	}
	secs := d.Seconds()
	i := sort.SearchFloat64s(durationBuckets, secs) // first bound >= secs
	fm.buckets[i].Add(1)
	fm.sumNanos.Add(int64(d))
}

// write renders the metrics in the Prometheus text exposition format.
func (m *metrics) write(w io.Writer, generation int64) {
	m.mu.RLock()
	ids := make([]string, 0, len(m.fleets))
	for id := range m.fleets {
		ids = append(ids, id)
	}
	fleets := make(map[string]*fleetMetrics, len(m.fleets))
	for id, fm := range m.fleets {
		fleets[id] = fm
	}
	m.mu.RUnlock()
	sort.Strings(ids)

	var b strings.Builder
	b.WriteString("# HELP imago_router_generation Generation of the route the router applies.\n")
	b.WriteString("# TYPE imago_router_generation gauge\n")
	fmt.Fprintf(&b, "imago_router_generation %d\n", generation)

	b.WriteString("# HELP imago_router_requests_total Requests proxied, by fleet.\n")
	b.WriteString("# TYPE imago_router_requests_total counter\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "imago_router_requests_total{fleet=%q} %d\n", id, fleets[id].requests.Load())
	}
	b.WriteString("# HELP imago_router_errors_total Requests answered with a 5xx status, by fleet.\n")
	b.WriteString("# TYPE imago_router_errors_total counter\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "imago_router_errors_total{fleet=%q} %d\n", id, fleets[id].errors.Load())
	}
	b.WriteString("# HELP imago_router_request_duration_seconds Request latency through the router, by fleet.\n")
	b.WriteString("# TYPE imago_router_request_duration_seconds histogram\n")
	for _, id := range ids {
		fm := fleets[id]
		var cum uint64
		for i, le := range durationBuckets {
			cum += fm.buckets[i].Load()
			fmt.Fprintf(&b, "imago_router_request_duration_seconds_bucket{fleet=%q,le=%q} %d\n", id, strconv.FormatFloat(le, 'g', -1, 64), cum)
		}
		cum += fm.buckets[len(durationBuckets)].Load()
		fmt.Fprintf(&b, "imago_router_request_duration_seconds_bucket{fleet=%q,le=\"+Inf\"} %d\n", id, cum)
		fmt.Fprintf(&b, "imago_router_request_duration_seconds_sum{fleet=%q} %s\n", id, strconv.FormatFloat(time.Duration(fm.sumNanos.Load()).Seconds(), 'g', -1, 64))
		fmt.Fprintf(&b, "imago_router_request_duration_seconds_count{fleet=%q} %d\n", id, cum)
	}
	io.WriteString(w, b.String())
}
