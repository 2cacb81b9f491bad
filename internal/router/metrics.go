package router

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/imago/imago/internal/provider"
)

// Names of the metrics the router exports on its admin listener's GET /metrics,
// all but the generation labelled by fleet.
const (
	GenerationMetric = "imago_router_generation"
	RequestsMetric   = "imago_router_requests_total"
	ErrorsMetric     = "imago_router_errors_total"
	LatencyMetric    = "imago_router_request_duration_seconds"
)

// durationBuckets are the upper bounds (seconds) of the latency histogram.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// noFleet labels requests that found no backend to go to.
const noFleet = "none"

// metrics are the router's own Prometheus registry: its counters per fleet and
// the generation of the route it applies.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(generation func() int64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsMetric, Help: "Requests proxied, by fleet.",
		}, []string{"fleet"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ErrorsMetric, Help: "Requests answered with a 5xx status, by fleet.",
		}, []string{"fleet"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: LatencyMetric, Help: "Request latency through the router, by fleet.", Buckets: durationBuckets,
		}, []string{"fleet"}),
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: GenerationMetric, Help: "Generation of the route the router applies.",
		}, func() float64 { return float64(generation()) }),
		m.requests, m.errors, m.latency,
	)
	return m
}

func (m *metrics) observe(fleet string, status int, d time.Duration) {
	m.requests.WithLabelValues(fleet).Inc()
	errs := m.errors.WithLabelValues(fleet) // a fleet without errors shows 0
	if status >= 500 {
		errs.Inc()
	}
	m.latency.WithLabelValues(fleet).Observe(d.Seconds())
}

// handler serves the metrics in the Prometheus exposition formats.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ParseFleetMetrics reads the router's metrics in the Prometheus text format
// (expfmt) into the cumulative metrics of each fleet, by fleet ID. Other
// metrics are ignored.
func ParseFleetMetrics(r io.Reader) (map[string]provider.FleetMetrics, error) {
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := map[string]provider.FleetMetrics{}
	for _, name := range []string{RequestsMetric, ErrorsMetric, LatencyMetric} {
		for _, m := range fams[name].GetMetric() {
			fleet, ok := label(m, "fleet")
			if !ok {
				return nil, fmt.Errorf("router metric %s has no fleet label", name)
			}
			fm := out[fleet]
			switch name {
			case RequestsMetric:
				fm.Requests = counterValue(m)
			case ErrorsMetric:
				fm.Errors = counterValue(m)
			case LatencyMetric:
				fm.Latency = histogram(m.GetHistogram())
			}
			out[fleet] = fm
		}
	}
	return out, nil
}

func label(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

// counterValue is a counter's value, or an untyped sample's (text without # TYPE).
func counterValue(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// histogram converts a parsed histogram: its finite buckets in ascending order
// (the +Inf bucket is the count).
func histogram(h *dto.Histogram) provider.Histogram {
	out := provider.Histogram{Count: float64(h.GetSampleCount()), Sum: h.GetSampleSum()}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			if h.SampleCount == nil {
				out.Count = float64(b.GetCumulativeCount())
			}
			continue
		}
		out.Buckets = append(out.Buckets, provider.HistogramBucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].UpperBound < out.Buckets[j].UpperBound })
	return out
}
