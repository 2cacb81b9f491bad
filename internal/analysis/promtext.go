package analysis

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/imago/imago/internal/provider"
)

// Names of the metrics the service router (internal/router) exports on its
// admin listener's GET /metrics, all labelled by fleet.
const (
	RouterRequestsMetric = "imago_router_requests_total"
	RouterErrorsMetric   = "imago_router_errors_total"
	RouterLatencyMetric  = "imago_router_request_duration_seconds"
)

// Sample is one line of the Prometheus text exposition format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseText parses the Prometheus text exposition format (version 0.0.4):
// comments and blank lines are skipped, every other line is
// `name{label="value",...} value [timestamp]`. Values may be NaN, +Inf, -Inf.
func ParseText(text string) ([]Sample, error) {
	var out []Sample
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", n+1, abbreviate(line, 80), err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (Sample, error) {
	i := 0
	for i < len(line) && isNameChar(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return Sample{}, fmt.Errorf("no metric name")
	}
	s := Sample{Name: line[:i], Labels: map[string]string{}}
	rest := line[i:]
	if strings.HasPrefix(rest, "{") {
		var err error
		if rest, err = parseLabels(rest[1:], s.Labels); err != nil {
			return Sample{}, err
		}
	}
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return Sample{}, fmt.Errorf("want a space and a value after the metric name and labels")
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return Sample{}, fmt.Errorf("want a value and an optional timestamp, got %d fields", len(fields))
	}
	v, err := parseValue(fields[0])
	if err != nil {
		return Sample{}, err
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return Sample{}, fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	s.Value = v
	return s, nil
}

// parseLabels parses `name="value",...}` into labels and returns what follows.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		i := 0
		for i < len(s) && isLabelChar(s[i], i == 0) {
			i++
		}
		if i == 0 {
			return "", fmt.Errorf("bad label name at %q", abbreviate(s, 20))
		}
		name := s[:i]
		s = strings.TrimLeft(s[i:], " \t")
		if !strings.HasPrefix(s, "=") {
			return "", fmt.Errorf("want = after label %s", name)
		}
		s = strings.TrimLeft(s[1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return "", fmt.Errorf("want a quoted value for label %s", name)
		}
		var b strings.Builder
		j := 1
		for ; j < len(s) && s[j] != '"'; j++ {
			c := s[j]
			if c == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					c = '\n'
				case '\\', '"':
					c = s[j]
				default:
					return "", fmt.Errorf("bad escape \\%c in label %s", s[j], name)
				}
			}
			b.WriteByte(c)
		}
		if j >= len(s) {
			return "", fmt.Errorf("unterminated value of label %s", name)
		}
		if _, dup := labels[name]; dup {
			return "", fmt.Errorf("label %s twice", name)
		}
		labels[name] = b.String()
		s = strings.TrimLeft(s[j+1:], " \t")
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, "}"):
		default:
			return "", fmt.Errorf("want , or } after label %s", name)
		}
	}
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

func isNameChar(c byte, first bool) bool {
	return c == ':' || isLabelChar(c, first)
}

func isLabelChar(c byte, first bool) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || !first && '0' <= c && c <= '9'
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RouterFleetMetrics parses the service router's GET /metrics answer into the
// cumulative metrics of each fleet, by fleet ID (the router counts requests
// that found no fleet under "none"). Other metrics are ignored.
func RouterFleetMetrics(text string) (map[string]provider.FleetMetrics, error) {
	samples, err := ParseText(text)
	if err != nil {
		return nil, err
	}
	out := map[string]provider.FleetMetrics{}
	inf := map[string]float64{}
	hasCount := map[string]bool{}
	for _, s := range samples {
		switch s.Name {
		case RouterRequestsMetric, RouterErrorsMetric, RouterLatencyMetric + "_bucket", RouterLatencyMetric + "_sum", RouterLatencyMetric + "_count":
		default:
			continue
		}
		fleet, ok := s.Labels["fleet"]
		if !ok {
			return nil, fmt.Errorf("router metric %s has no fleet label", s.Name)
		}
		fm := out[fleet]
		switch s.Name {
		case RouterRequestsMetric:
			fm.Requests = s.Value
		case RouterErrorsMetric:
			fm.Errors = s.Value
		case RouterLatencyMetric + "_bucket":
			le, ok := s.Labels["le"]
			if !ok {
				return nil, fmt.Errorf("router metric %s of fleet %s has no le label", s.Name, fleet)
			}
			bound, err := parseValue(le)
			if err != nil {
				return nil, fmt.Errorf("router metric %s of fleet %s: le: %w", s.Name, fleet, err)
			}
			if math.IsInf(bound, 1) {
				inf[fleet] = s.Value
			} else {
				fm.Latency.Buckets = append(fm.Latency.Buckets, provider.HistogramBucket{UpperBound: bound, Count: s.Value})
			}
		case RouterLatencyMetric + "_sum":
			fm.Latency.Sum = s.Value
		case RouterLatencyMetric + "_count":
			fm.Latency.Count = s.Value
			hasCount[fleet] = true
		}
		out[fleet] = fm
	}
	for fleet, fm := range out {
		sort.Slice(fm.Latency.Buckets, func(i, j int) bool { return fm.Latency.Buckets[i].UpperBound < fm.Latency.Buckets[j].UpperBound })
		if c, ok := inf[fleet]; ok && !hasCount[fleet] {
			fm.Latency.Count = c
		}
		out[fleet] = fm
	}
	return out, nil
}
