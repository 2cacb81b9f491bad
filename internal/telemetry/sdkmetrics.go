package telemetry

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// sdkMetrics turns the Temporal SDK's metrics (client.MetricsHandler: counters,
// gauges, timers with tags) into Prometheus metrics: counters, gauges, and
// histograms in seconds. The SDK picks names and tags at run time, so this is an
// unchecked Prometheus collector that reports whatever series exist. Names follow
// the SDK's own Prometheus naming (promName): temporal_request becomes
// temporal_request_total, temporal_request_latency becomes
// temporal_request_latency_seconds.
type sdkMetrics struct {
	mu     sync.Mutex
	series map[string]*series // by name and sorted tags
}

type kind int

const (
	counterKind kind = iota
	gaugeKind
	timerKind
)

type series struct {
	name   string
	kind   kind
	labels []string // names, sorted
	values []string

	mu      sync.Mutex
	value   float64  // counter or gauge
	buckets []uint64 // timer: per bucket, not cumulative; the last is +Inf
	sum     float64
	count   uint64
	bounds  []float64
}

func newSDKMetrics() *sdkMetrics { return &sdkMetrics{series: map[string]*series{}} }

// handler is a client.MetricsHandler with a set of tags.
type handler struct {
	m    *sdkMetrics
	tags map[string]string
}

var _ client.MetricsHandler = handler{}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return handler{m: h.m, tags: merged}
}

func (h handler) Counter(name string) client.MetricsCounter {
	s := h.m.get(name, counterKind, h.tags)
	return counterFunc(func(d int64) {
		s.mu.Lock()
		s.value += float64(d)
		s.mu.Unlock()
	})
}

func (h handler) Gauge(name string) client.MetricsGauge {
	s := h.m.get(name, gaugeKind, h.tags)
	return gaugeFunc(func(v float64) {
		s.mu.Lock()
		s.value = v
		s.mu.Unlock()
	})
}

func (h handler) Timer(name string) client.MetricsTimer {
	s := h.m.get(name, timerKind, h.tags)
	return timerFunc(func(d time.Duration) {
		secs := d.Seconds()
		s.mu.Lock()
		s.buckets[sort.SearchFloat64s(s.bounds, secs)]++ // first bound >= secs
		s.sum += secs
		s.count++
		s.mu.Unlock()
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// Histogram bounds (seconds): the SDK's timers are request and task latencies;
// imago's phases last from seconds to hours.
var (
	latencyBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	phaseBounds   = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400}
)

// sdkOnlyTags are tags the SDK puts on every metric of a workflow ("none" there)
// that say nothing about imago's own metrics.
var sdkOnlyTags = map[string]bool{"activity_type": true, "worker_type": true, "client_name": true}

func bounds(name string) []float64 {
	if strings.HasPrefix(name, "imago_") {
		return phaseBounds
	}
	return latencyBounds
}

// promName is the Prometheus name of an SDK metric of kind k: the rule of the
// SDK's own Prometheus naming (go.temporal.io/sdk/contrib/tally's
// NewPrometheusNamingScope, which this bridge stands in for): counters end in
// _total, timers in _seconds. promtool check metrics wants the first.
func promName(name string, k kind) string {
	name = sanitize(name)
	switch {
	case k == counterKind && !strings.HasSuffix(name, "_total"):
		return name + "_total"
	case k == timerKind && !strings.HasSuffix(name, "_seconds"):
		return name + "_seconds"
	}
	return name
}

func (m *sdkMetrics) get(name string, k kind, tags map[string]string) *series {
	name = promName(name, k)
	own := strings.HasPrefix(name, "imago_")
	labels := make([]string, 0, len(tags))
	for l := range tags {
		if !own || !sdkOnlyTags[l] {
			labels = append(labels, l)
		}
	}
	sort.Strings(labels)
	values := make([]string, len(labels))
	var key strings.Builder
	key.WriteString(name)
	for i, l := range labels {
		values[i] = tags[l]
		key.WriteString("\xff" + l + "\xfe" + values[i])
	}
	for i, l := range labels {
		labels[i] = sanitize(l)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.series[key.String()]; s != nil {
		return s
	}
	s := &series{name: name, kind: k, labels: labels, values: values}
	if k == timerKind {
		s.bounds = bounds(name)
		s.buckets = make([]uint64, len(s.bounds)+1)
	}
	m.series[key.String()] = s
	return s
}

// sanitize makes a metric or label name valid in Prometheus ([a-zA-Z_][a-zA-Z0-9_]*).
func sanitize(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r >= '0' && r <= '9' && i > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Describe sends nothing: the SDK's series are known only as it makes them.
func (m *sdkMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect reports every series.
func (m *sdkMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	all := make([]*series, 0, len(m.series))
	for _, s := range m.series {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		desc := prometheus.NewDesc(s.name, help(s.name), s.labels, nil)
		s.mu.Lock()
		var metric prometheus.Metric
		var err error
		switch s.kind {
		case counterKind:
			metric, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.value, s.values...)
		case gaugeKind:
			metric, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.value, s.values...)
		case timerKind:
			cum := make(map[float64]uint64, len(s.bounds))
			var n uint64
			for i, b := range s.bounds {
				n += s.buckets[i]
				cum[b] = n
			}
			metric, err = prometheus.NewConstHistogram(desc, s.count, s.sum, cum, s.values...)
		}
		s.mu.Unlock()
		if err != nil {
			metric = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- metric
	}
}

// help is a metric's help text: Prometheus wants one per name.
func help(name string) string {
	if h, ok := helps[name]; ok {
		return h
	}
	return "Temporal SDK metric " + name + " (see https://docs.temporal.io/references/sdk-metrics)."
}

var helps = map[string]string{
	metricRollouts:     "Rollouts that ended, by service, environment and outcome (succeeded, failed, rolled_back, aborted, canceled).",
	metricBakes:        "Bakes that ended, by service and outcome (succeeded, cached, failed, canceled).",
	metricPhaseSeconds: "How long workflows stayed in each phase (ImagoPhase), by workflow type and phase, in seconds of workflow time.",
}
