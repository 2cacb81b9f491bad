// Package analysis measures a fleet during a rollout and decides whether it is
// good enough to go on, as Argo Rollouts' analysis does: a metric is measured
// Count times, once per Interval, each measurement is checked against a success
// condition (Max and/or Min), and limits on failed, inconclusive and erroneous
// measurements decide the outcome, as soon as it is decided.
//
// Metrics come from a provider: "router" (the fleet's share of the service
// router's own counters, measured as the difference of two scrapes one interval
// apart), "prometheus" (an instant query) or "http" (a number in a JSON answer).
//
// The decision logic (Run) is independent of where measurements come from and of
// the clock, so it is tested with a fake clock; a Temporal activity wraps it.
package analysis

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/router/routermetrics"
)

// Providers of measurements.
const (
	ProviderRouter     = "router"
	ProviderPrometheus = "prometheus"
	ProviderHTTP       = "http"
)

// Metrics of provider router.
const (
	MetricErrorRate = "errorRate" // 5xx answers / requests, 0..1
	MetricP50       = "p50"       // latency percentiles, seconds
	MetricP90       = "p90"
	MetricP95       = "p95"
	MetricP99       = "p99"
)

// routerQuantiles maps the latency metrics to their quantile.
var routerQuantiles = map[string]float64{MetricP50: 0.5, MetricP90: 0.9, MetricP95: 0.95, MetricP99: 0.99}

// Defaults.
const (
	DefaultCount                 = 1
	DefaultConsecutiveErrorLimit = 4
	DefaultMinRequests           = 10
	// ErrorRetryInterval is the wait after a measurement error when the spec has
	// no interval (a single measurement), so errors are not retried in a tight loop.
	ErrorRetryInterval = time.Second
)

// What a measurement without data counts as (contract.AnalysisSpec.OnNoData).
const (
	NoDataInconclusive = "inconclusive"
	NoDataFail         = "fail"
	NoDataPass         = "pass"
)

// SpecError lists every problem of a Spec.
type SpecError struct {
	Problems []string
}

func (e *SpecError) Error() string {
	return "invalid analysis: " + strings.Join(e.Problems, "; ")
}

// Validate checks the spec and returns a *SpecError naming every problem, or nil.
func Validate(s contract.AnalysisSpec) error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	switch s.Kind {
	case contract.AnalysisCompare:
		validateCompare(s, add)
		if len(p) == 0 {
			return nil
		}
		return &SpecError{Problems: p}
	case "":
	default:
		add("kind %q: want compare, or leave it out to measure the new fleet against max/min", s.Kind)
	}
	notFor := func(field, value, provider string) {
		if value != "" {
			add("%s is not used by provider %s (it is for %s)", field, s.Provider, provider)
		}
	}
	switch s.Provider {
	case ProviderRouter:
		if _, ok := routerQuantiles[s.Metric]; !ok && s.Metric != MetricErrorRate {
			if s.Metric == "" {
				add("metric is required with provider router: errorRate, p50, p90, p95 or p99")
			} else {
				add("metric %q is not a router metric: want errorRate, p50, p90, p95 or p99", s.Metric)
			}
		}
		if s.Interval <= 0 {
			add("interval is required with provider router: it is the window each measurement covers")
		}
		notFor("address", s.Address, ProviderPrometheus)
		notFor("query", s.Query, ProviderPrometheus)
		notFor("url", s.URL, ProviderHTTP)
		notFor("field", s.Field, ProviderHTTP)
	case ProviderPrometheus:
		if s.Address == "" {
			add("address (the Prometheus base URL) is required with provider prometheus")
		} else if err := checkHTTPURL(s.Address); err != nil {
			add("address %q %v", s.Address, err)
		}
		if strings.TrimSpace(s.Query) == "" {
			add("query is required with provider prometheus")
		}
		notFor("url", s.URL, ProviderHTTP)
		notFor("field", s.Field, ProviderHTTP)
	case ProviderHTTP:
		if s.URL == "" {
			add("url is required with provider http")
		} else if err := checkHTTPURL(s.URL); err != nil {
			add("url %q %v", s.URL, err)
		}
		if s.Field != "" {
			for _, part := range strings.Split(s.Field, ".") {
				if part == "" {
					add("field %q has an empty path element (want a dotted path like data.errorRate or items.0.value)", s.Field)
					break
				}
			}
		}
		notFor("address", s.Address, ProviderPrometheus)
		notFor("query", s.Query, ProviderPrometheus)
	case "":
		add("provider is required: router, prometheus or http")
	default:
		add("unknown provider %q: want router, prometheus or http", s.Provider)
	}
	if s.Provider != ProviderRouter && s.MinRequests != 0 {
		add("minRequests is only used by provider router")
	}

	if s.Max == nil && s.Min == nil {
		add("a success condition is required: set max and/or min")
	}
	if s.Max != nil && (math.IsNaN(*s.Max) || math.IsInf(*s.Max, 0)) {
		add("max must be a finite number, got %v", *s.Max)
	}
	if s.Min != nil && (math.IsNaN(*s.Min) || math.IsInf(*s.Min, 0)) {
		add("min must be a finite number, got %v", *s.Min)
	}
	if s.Max != nil && s.Min != nil && *s.Min > *s.Max {
		add("min %s is greater than max %s: no value could pass", fmtValue(*s.Min), fmtValue(*s.Max))
	}

	if s.Interval < 0 {
		add("interval must not be negative, got %s", s.Interval)
	}
	if s.Count < 0 {
		add("count must not be negative, got %d", s.Count)
	}
	if s.Count > 1 && s.Interval == 0 && s.Provider != ProviderRouter {
		add("interval is required when count is above 1")
	}
	if s.FailureLimit < 0 {
		add("failureLimit must not be negative, got %d", s.FailureLimit)
	} else if count := count(s); s.Count >= 0 && s.FailureLimit >= count {
		add("failureLimit %d tolerates all %d measurements: the analysis could never fail", s.FailureLimit, count)
	}
	if s.InconclusiveLimit < 0 {
		add("inconclusiveLimit must not be negative, got %d", s.InconclusiveLimit)
	}
	switch s.OnNoData {
	case "", NoDataInconclusive, NoDataFail, NoDataPass:
	default:
		add("onNoData %q: want inconclusive (the default: wait for a person), fail or pass", s.OnNoData)
	}
	if len(p) == 0 {
		return nil
	}
	return &SpecError{Problems: p}
}

// checkHTTPURL says what is wrong with raw as an http(s) URL, in words that
// follow the URL ("127.0.0.1:9090" has no scheme; …), never url.Parse's own.
func checkHTTPURL(raw string) error {
	if !strings.Contains(raw, "://") {
		return fmt.Errorf("has no scheme; write http://%s", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("is not a URL (%v); write it as http://host:port/path", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("is not an http:// or https:// URL")
	}
	if u.Host == "" {
		return fmt.Errorf("has no host; write it as http://host:port/path")
	}
	return nil
}

// Expand returns s with {{name}} in Address, Query and URL replaced by
// vars[name], so one spec can name the fleet under analysis ({{fleet}}),
// the service and the environment. Unknown names stay as they are.
func Expand(s contract.AnalysisSpec, vars map[string]string) contract.AnalysisSpec {
	if len(vars) == 0 {
		return s
	}
	pairs := make([]string, 0, 2*len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) { // workflows call it too: no map order
		pairs = append(pairs, "{{"+k+"}}", vars[k])
	}
	r := strings.NewReplacer(pairs...)
	s.Address = r.Replace(s.Address)
	s.Query = r.Replace(s.Query)
	s.URL = r.Replace(s.URL)
	return s
}

func count(s contract.AnalysisSpec) int {
	if s.Count <= 0 {
		return DefaultCount
	}
	return s.Count
}

func consecutiveErrorLimit(s contract.AnalysisSpec) int {
	switch {
	case s.ConsecutiveErrorLimit == 0:
		return DefaultConsecutiveErrorLimit
	case s.ConsecutiveErrorLimit < 0:
		return 0
	}
	return s.ConsecutiveErrorLimit
}

func minRequests(s contract.AnalysisSpec) float64 {
	switch {
	case s.MinRequests == 0:
		return DefaultMinRequests
	case s.MinRequests < 0:
		return 1
	}
	return float64(s.MinRequests)
}

// metricName names the measured value in messages.
func metricName(s contract.AnalysisSpec) string {
	switch {
	case s.Metric != "":
		return s.Metric
	case s.Provider == ProviderHTTP && s.Field != "":
		return s.Field
	}
	return "value"
}

// check reports whether v passes the success condition and describes the comparison.
func check(s contract.AnalysisSpec, v float64) (ok bool, text string) {
	f := fmtValue(v)
	if s.Max != nil && v > *s.Max {
		return false, fmt.Sprintf("%s > max %s", f, fmtValue(*s.Max))
	}
	if s.Min != nil && v < *s.Min {
		return false, fmt.Sprintf("%s < min %s", f, fmtValue(*s.Min))
	}
	switch {
	case s.Max != nil && s.Min != nil:
		return true, fmt.Sprintf("%s within [min %s, max %s]", f, fmtValue(*s.Min), fmtValue(*s.Max))
	case s.Max != nil:
		return true, fmt.Sprintf("%s <= max %s", f, fmtValue(*s.Max))
	}
	return true, fmt.Sprintf("%s >= min %s", f, fmtValue(*s.Min))
}

// distance is how far v is outside the success condition (0 inside).
func distance(s contract.AnalysisSpec, v float64) float64 {
	d := 0.0
	if s.Max != nil && v > *s.Max {
		d = v - *s.Max
	}
	if s.Min != nil && v < *s.Min {
		d = math.Max(d, *s.Min-v)
	}
	return d
}

// onNoData is OnNoData with its default.
func onNoData(s contract.AnalysisSpec) string {
	if s.OnNoData == "" {
		return NoDataInconclusive
	}
	return s.OnNoData
}

// Source says where measurements come from, for a person reading a status:
// "router web/prod: fleet fl-1's share of imago_router_requests_total and
// imago_router_errors_total", "prometheus http://prom:9090", "GET https://…
// (field data.errorRate)". Passwords in URLs are hidden. A Prometheus query is
// not in it: it is long, and shown once, apart (see Query).
func Source(s contract.AnalysisSpec) string {
	switch s.Provider {
	case ProviderRouter:
		if s.Kind == contract.AnalysisCompare {
			return "router: the canary's and the baseline's shares of " + routermetrics.RequestsMetric + ", " + routermetrics.ErrorsMetric +
				" and " + routermetrics.LatencyMetric + ", each interval"
		}
		if _, ok := routerQuantiles[s.Metric]; ok {
			return "router: the fleet's share of " + routermetrics.LatencyMetric + ", each interval"
		}
		return "router: the fleet's share of " + routermetrics.RequestsMetric + " and " + routermetrics.ErrorsMetric + ", each interval"
	case ProviderPrometheus:
		return "prometheus " + redact(s.Address) + " (instant query)"
	case ProviderHTTP:
		if s.Field == "" {
			return "GET " + redact(s.URL)
		}
		return "GET " + redact(s.URL) + " (field " + s.Field + ")"
	}
	return s.Provider
}

// Condition describes the success condition: "max 0.05", "min 1 and max 2",
// or a compare's metrics and thresholds.
func Condition(s contract.AnalysisSpec) string {
	switch {
	case s.Kind == contract.AnalysisCompare:
		return compareCondition(s)
	case s.Max != nil && s.Min != nil:
		return fmt.Sprintf("min %s and max %s", fmtValue(*s.Min), fmtValue(*s.Max))
	case s.Max != nil:
		return "max " + fmtValue(*s.Max)
	case s.Min != nil:
		return "min " + fmtValue(*s.Min)
	}
	return "no condition"
}

func fmtValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return fmt.Sprintf("%.4g", v)
}

// FormatValue writes a measurement's value as messages do ("0.0123"), "-"
// when it has none.
func FormatValue(v *float64) string {
	if v == nil {
		return "-"
	}
	if math.Abs(*v) == math.MaxFloat64 {
		return fmtValue(math.Copysign(math.Inf(1), *v)) // stored clamped, see judge
	}
	return fmtValue(*v)
}
