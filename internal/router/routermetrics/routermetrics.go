// Package routermetrics names the metrics imago's service router exports and
// reads them back from the Prometheus text format. It is apart from the router
// so that what reads them (the local driver, the router analysis) does not
// import the router and its runtimevar watcher.
package routermetrics

import (
	"fmt"
	"io"
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/imago/imago/internal/contract"
)

// Names of the metrics the router exports on its admin listener's GET /metrics,
// all but the generation labelled by fleet.
const (
	GenerationMetric = "imago_router_generation"
	RequestsMetric   = "imago_router_requests_total"
	ErrorsMetric     = "imago_router_errors_total"
	LatencyMetric    = "imago_router_request_duration_seconds"
)

// ParseFleetMetrics reads the router's metrics in the Prometheus text format
// (expfmt) into the cumulative metrics of each fleet, by fleet ID. Other
// metrics are ignored.
func ParseFleetMetrics(r io.Reader) (map[string]contract.FleetMetrics, error) {
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := map[string]contract.FleetMetrics{}
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
func histogram(h *dto.Histogram) contract.Histogram {
	out := contract.Histogram{Count: float64(h.GetSampleCount()), Sum: h.GetSampleSum()}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			if h.SampleCount == nil {
				out.Count = float64(b.GetCumulativeCount())
			}
			continue
		}
		out.Buckets = append(out.Buckets, contract.HistogramBucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].UpperBound < out.Buckets[j].UpperBound })
	return out
}
