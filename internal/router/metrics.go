package router

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imago/imago/internal/router/routermetrics"
)

// Names of the metrics the router exports (routermetrics holds them, beside
// the parser of what the router serves, for packages that must not import the
// router itself).
const (
	GenerationMetric = routermetrics.GenerationMetric
	RequestsMetric   = routermetrics.RequestsMetric
	ErrorsMetric     = routermetrics.ErrorsMetric
	LatencyMetric    = routermetrics.LatencyMetric
	// MirrorDroppedMetric counts requests that were to be mirrored and were
	// not: too large a body, or every mirror slot busy.
	MirrorDroppedMetric = "imago_router_mirror_dropped_total"
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
	// mirrorDropped counts copies not sent (rules.go).
	mirrorDropped prometheus.Counter
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
		mirrorDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MirrorDroppedMetric, Help: "Requests to be mirrored that were not: too large a body, or every mirror slot busy.",
		}),
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: GenerationMetric, Help: "Generation of the route the router applies.",
		}, func() float64 { return float64(generation()) }),
		m.requests, m.errors, m.latency, m.mirrorDropped,
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
