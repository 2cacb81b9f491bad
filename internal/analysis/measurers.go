package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Env is what NewMeasurer needs besides the spec.
type Env struct {
	// HTTP queries Prometheus and http URLs; nil uses a client with a 10s timeout.
	HTTP *http.Client
	// Metrics reads the router's per-fleet counters (provider router).
	Metrics MetricsSource
	// FleetID is the fleet under analysis (provider router).
	FleetID string
}

// NewMeasurer returns the Measurer of spec's provider. It returns a *SpecError
// when spec is invalid and an error when env lacks what the provider needs.
func NewMeasurer(spec Spec, env Env) (Measurer, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	client := env.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	switch spec.Provider {
	case ProviderRouter:
		if env.Metrics == nil {
			return nil, fmt.Errorf("provider router needs a source of router metrics")
		}
		return NewRouterMeasurer(spec.Metric, env.FleetID, int(spec.minRequests()), env.Metrics)
	case ProviderPrometheus:
		return &PrometheusMeasurer{Address: spec.Address, Query: spec.Query, HTTP: client, name: spec.Metric}, nil
	case ProviderHTTP:
		return &HTTPMeasurer{URL: spec.URL, Field: spec.Field, HTTP: client, name: spec.Metric}, nil
	}
	return nil, fmt.Errorf("unknown provider %q", spec.Provider)
}

// PrometheusMeasurer runs an instant query against Prometheus' HTTP API
// (GET {Address}/api/v1/query?query=...). The query must return a scalar or a
// vector of one series; an empty vector is inconclusive, more series an error.
type PrometheusMeasurer struct {
	Address string
	Query   string
	HTTP    *http.Client
	name    string
}

// String names what is measured in messages.
func (m *PrometheusMeasurer) String() string {
	if m.name != "" {
		return m.name
	}
	return "prometheus query " + strconv.Quote(abbreviate(strings.Join(strings.Fields(m.Query), " "), 80))
}

// promResponse is the envelope of Prometheus' HTTP API.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// Measure runs the query once.
func (m *PrometheusMeasurer) Measure(ctx context.Context) (Reading, error) {
	u := strings.TrimRight(m.Address, "/") + "/api/v1/query?" + url.Values{"query": {m.Query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Reading{}, Permanent(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.HTTP.Do(req)
	if err != nil {
		return Reading{}, fmt.Errorf("query prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return Reading{}, fmt.Errorf("query prometheus %s: %w", m.Address, err)
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return Reading{}, fmt.Errorf("query prometheus %s: %s, not a Prometheus API answer: %q", m.Address, resp.Status, abbreviate(string(body), 200))
	}
	if pr.Status != "success" {
		return Reading{}, fmt.Errorf("prometheus %s refused the query (%s): %s: %s", m.Address, resp.Status, pr.ErrorType, pr.Error)
	}
	switch pr.Data.ResultType {
	case "scalar":
		v, err := promValue(pr.Data.Result)
		if err != nil {
			return Reading{}, err
		}
		return Reading{Value: v}, nil
	case "vector":
		var series []struct {
			Metric map[string]string `json:"metric"`
			Value  json.RawMessage   `json:"value"`
		}
		if err := json.Unmarshal(pr.Data.Result, &series); err != nil {
			return Reading{}, fmt.Errorf("prometheus %s: bad vector: %w", m.Address, err)
		}
		switch len(series) {
		case 0:
			return Reading{}, Inconclusive("the query returned no data (an empty vector)")
		case 1:
			v, err := promValue(series[0].Value)
			if err != nil {
				return Reading{}, err
			}
			return Reading{Value: v, Detail: labelsString(series[0].Metric)}, nil
		}
		var names []string
		for i, s := range series {
			if i == 3 {
				names = append(names, "…")
				break
			}
			names = append(names, labelsString(s.Metric))
		}
		return Reading{}, fmt.Errorf("the query returned %d series (%s); it must return one: aggregate it (sum, avg, max by nothing)",
			len(series), strings.Join(names, ", "))
	}
	return Reading{}, fmt.Errorf("the query returned a %s; it must return a scalar or an instant vector of one series", pr.Data.ResultType)
}

// promValue decodes a sample value [<unix time>, "<number>"].
func promValue(raw json.RawMessage) (float64, error) {
	var pair []any
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return 0, fmt.Errorf("prometheus: bad sample value %s", abbreviate(string(raw), 100))
	}
	s, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("prometheus: bad sample value %s", abbreviate(string(raw), 100))
	}
	v, err := parseValue(s)
	if err != nil {
		return 0, fmt.Errorf("prometheus: %w", err)
	}
	return v, nil
}

func labelsString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Quote(labels[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// HTTPMeasurer GETs URL and reads the number at Field (a dotted path; array
// elements by index) of the JSON answer. A number or a string holding one is
// accepted; null is inconclusive.
type HTTPMeasurer struct {
	URL   string
	Field string
	HTTP  *http.Client
	name  string
}

// String names what is measured in messages.
func (m *HTTPMeasurer) String() string {
	if m.name != "" {
		return m.name
	}
	if m.Field == "" {
		return "GET " + m.URL
	}
	return m.Field + " of GET " + m.URL
}

// Measure fetches URL once.
func (m *HTTPMeasurer) Measure(ctx context.Context) (Reading, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return Reading{}, Permanent(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.HTTP.Do(req)
	if err != nil {
		return Reading{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return Reading{}, fmt.Errorf("GET %s: %w", m.URL, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Reading{}, fmt.Errorf("GET %s: %s: %q", m.URL, resp.Status, abbreviate(strings.TrimSpace(string(body)), 200))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Reading{}, fmt.Errorf("GET %s: the answer is not JSON: %v", m.URL, err)
	}
	v, err := Lookup(doc, m.Field)
	if err != nil {
		return Reading{}, fmt.Errorf("GET %s: %w", m.URL, err)
	}
	switch v := v.(type) {
	case nil:
		return Reading{}, Inconclusive("GET %s: %s is null", m.URL, fieldName(m.Field))
	case json.Number:
		f, err := parseValue(v.String())
		if err != nil {
			return Reading{}, fmt.Errorf("GET %s: %s: %w", m.URL, fieldName(m.Field), err)
		}
		return Reading{Value: f}, nil
	case float64:
		return Reading{Value: v}, nil
	case string:
		f, err := parseValue(strings.TrimSpace(v))
		if err != nil {
			return Reading{}, fmt.Errorf("GET %s: %s is the string %q, not a number", m.URL, fieldName(m.Field), abbreviate(v, 40))
		}
		return Reading{Value: f}, nil
	}
	return Reading{}, fmt.Errorf("GET %s: %s is %s, not a number", m.URL, fieldName(m.Field), jsonKind(v))
}

func fieldName(path string) string {
	if path == "" {
		return "the answer"
	}
	return "field " + path
}

// Lookup returns the element of a decoded JSON document at a dotted path:
// object members by name, array elements by index ("items.0.value"). The empty
// path is the whole document.
func Lookup(doc any, path string) (any, error) {
	if path == "" {
		return doc, nil
	}
	cur := doc
	parts := strings.Split(path, ".")
	for i, p := range parts {
		at := strings.Join(parts[:i], ".")
		if at == "" {
			at = "the answer"
		}
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[p]
			if !ok {
				return nil, fmt.Errorf("field %s: %s has no member %q", path, at, p)
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, fmt.Errorf("field %s: %s is an array, and %q is not an index", path, at, p)
			}
			if n < 0 || n >= len(c) {
				return nil, fmt.Errorf("field %s: %s has %d elements, no index %d", path, at, len(c), n)
			}
			cur = c[n]
		default:
			return nil, fmt.Errorf("field %s: %s is %s, not an object or array", path, at, jsonKind(cur))
		}
	}
	return cur, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
