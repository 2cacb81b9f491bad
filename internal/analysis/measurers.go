package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
)

// Env is what NewMeasurer needs besides the spec.
type Env struct {
	// HTTP queries Prometheus and http URLs, which a rollout spec chose: it must
	// be a netguard client (no redirects, inner addresses refused). nil uses one
	// that allows public addresses only.
	HTTP *http.Client
	// Metrics reads the router's per-fleet counters (provider router).
	Metrics MetricsSource
	// FleetID is the fleet under analysis (provider router).
	FleetID string
}

// NewMeasurer returns the Measurer of spec's provider. It returns a *SpecError
// when spec is invalid and an error when env lacks what the provider needs.
func NewMeasurer(spec contract.AnalysisSpec, env Env) (Measurer, error) {
	if err := Validate(spec); err != nil {
		return nil, err
	}
	client := env.HTTP
	if client == nil {
		client = netguard.New(netguard.Allow{}).Client(0)
	}
	switch spec.Provider {
	case ProviderRouter:
		if env.Metrics == nil {
			return nil, fmt.Errorf("provider router needs a source of router metrics")
		}
		return NewRouterMeasurer(spec.Metric, env.FleetID, int(minRequests(spec)), env.Metrics)
	case ProviderPrometheus:
		return &PrometheusMeasurer{Address: spec.Address, Query: spec.Query, HTTP: client, name: spec.Metric}, nil
	case ProviderHTTP:
		return &HTTPMeasurer{URL: spec.URL, Field: spec.Field, HTTP: client, name: spec.Metric}, nil
	}
	return nil, fmt.Errorf("unknown provider %q", spec.Provider)
}

// PrometheusMeasurer runs an instant query through Prometheus' HTTP API client
// (client_golang's api/prometheus/v1; GET {Address}/api/v1/query?query=...).
// The query must return a scalar or a vector of one series; an empty vector is
// inconclusive, more series an error.
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
	return "the query's value" // the query itself is long: status shows it once, apart
}

// Measure runs the query once. No byte of the answer but the value reaches an
// error: status, size, and Prometheus' errorType when it is one of its own.
func (m *PrometheusMeasurer) Measure(ctx context.Context) (Reading, error) {
	what := "prometheus " + redact(m.Address)
	base, err := api.NewClient(api.Config{Address: m.Address, Client: m.HTTP})
	if err != nil {
		return Reading{}, Permanent(fmt.Errorf("%s: %w", what, err))
	}
	c := &promClient{Client: base, http: m.HTTP, what: what}
	val, _, err := promv1.NewAPI(c).Query(ctx, m.Query, time.Time{})
	if err != nil {
		return Reading{}, c.explain(err)
	}
	switch v := val.(type) {
	case *model.Scalar:
		return Reading{Value: float64(v.Value)}, nil
	case model.Vector:
		switch len(v) {
		case 0:
			return Reading{}, emptyVector()
		case 1:
			return Reading{Value: float64(v[0].Value)}, nil // its labels are the answer's text: not copied
		}
		return Reading{}, fmt.Errorf("the query returned %d series; it must return one: aggregate it (sum, avg, max by nothing)", len(v))
	case model.Matrix, *model.String:
		return Reading{}, fmt.Errorf("the query returned a %s; it must return a scalar or an instant vector of one series", val.Type())
	}
	return Reading{}, fmt.Errorf("%s: the answer has no scalar or vector result", what)
}

// promClient is the api.Client of one query: it sends through the measurer's
// (SSRF-guarded) client with get's limits and keeps the last answer, so that
// errors can say its status and size instead of its text.
type promClient struct {
	api.Client
	http  *http.Client
	what  string
	resp  *http.Response
	body  []byte
	doErr error
}

// Do sends req. The API client POSTs a query as a form; it goes as the GET
// with the same parameters that imago always sent (a proxy or fake in front of
// Prometheus may take GET only).
func (c *promClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	if req.Method == http.MethodPost && req.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
		if err := req.ParseForm(); err != nil {
			return nil, nil, Permanent(fmt.Errorf("%s: %w", c.what, err))
		}
		u := *req.URL
		u.RawQuery = req.PostForm.Encode()
		get, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, Permanent(fmt.Errorf("%s: %w", c.what, err))
		}
		req = get
	}
	c.body, c.resp, c.doErr = do(c.http, req.WithContext(ctx), c.what)
	return c.resp, c.body, c.doErr
}

// explain turns the API client's error into one that repeats no byte of the
// answer but its status, size and (one of Prometheus' own) errorType.
func (c *promClient) explain(err error) error {
	if c.doErr != nil || c.resp == nil {
		return err // the request failed before an answer: do's error
	}
	var env struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal(c.body, &env) != nil {
		return fmt.Errorf("%s: the answer (%s) is not a Prometheus API answer", c.what, answered(c.resp, c.body))
	}
	if env.Status != "success" {
		kind := "no errorType"
		if promErrorTypes[env.ErrorType] {
			kind = "errorType " + env.ErrorType
		}
		return fmt.Errorf("%s refused the query: %s, %s (its message is not copied here: run the query in Prometheus to read it)", c.what, answered(c.resp, c.body), kind)
	}
	if c.resp.StatusCode < 200 || c.resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", c.what, answered(c.resp, c.body))
	}
	if env.Data.ResultType == model.ValVector.String() && string(env.Data.Result) == "null" {
		return emptyVector() // the API client takes null for no vector
	}
	return fmt.Errorf("%s: the result in the answer (%s) is malformed", c.what, answered(c.resp, c.body))
}

func emptyVector() error { return NoData("no samples yet: the query returned an empty vector") }

// promErrorTypes are the errorType values of Prometheus' HTTP API: a fixed
// vocabulary, safe to repeat (unlike its free-text message).
var promErrorTypes = map[string]bool{
	"timeout": true, "canceled": true, "execution": true, "bad_data": true,
	"internal": true, "unavailable": true, "not_found": true, "not_acceptable": true,
}

// maxAnswer bounds the answer read from an analysis URL.
const maxAnswer = 8 << 20

// get GETs u with a client that follows no redirect and returns the answer's
// body (at most maxAnswer bytes). Errors name what was asked and say the status
// and size of an answer, never its content: a URL in a spec could reach
// something whose answer must not end up in a rollout's messages. A dial the
// guard refused is Permanent.
func get(ctx context.Context, c *http.Client, u, what string) ([]byte, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return do(c, req, what)
}

// do sends req (see get).
func do(c *http.Client, req *http.Request, what string) ([]byte, *http.Response, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrRefused) {
			return nil, nil, Permanent(fmt.Errorf("%s: %w", what, err))
		}
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: reading the answer (%s): %w", what, resp.Status, err)
	}
	if len(body) > maxAnswer {
		return nil, nil, fmt.Errorf("%s answered %s with more than %d bytes", what, resp.Status, maxAnswer)
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return nil, nil, fmt.Errorf("%s answered %s (redirects are not followed: give the final URL)", what, answered(resp, body))
	}
	return body, resp, nil
}

// answered says the status and size of an answer.
func answered(resp *http.Response, body []byte) string {
	return fmt.Sprintf("%s, %d bytes", resp.Status, len(body))
}

// redact hides a password in a URL.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
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
		return "GET " + redact(m.URL)
	}
	return m.Field + " of GET " + redact(m.URL)
}

// Measure fetches URL once. No byte of the answer but the number at Field
// reaches an error (see get).
func (m *HTTPMeasurer) Measure(ctx context.Context) (Reading, error) {
	what := "GET " + redact(m.URL)
	body, resp, err := get(ctx, m.HTTP, m.URL, what)
	if err != nil {
		return Reading{}, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Reading{}, fmt.Errorf("%s answered %s", what, answered(resp, body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Reading{}, fmt.Errorf("%s: the answer (%s) is not JSON", what, answered(resp, body))
	}
	v, err := Lookup(doc, m.Field)
	if err != nil {
		return Reading{}, fmt.Errorf("%s: %w", what, err)
	}
	switch v := v.(type) {
	case nil:
		return Reading{}, NoData("%s: %s is null", what, fieldName(m.Field))
	case json.Number:
		f, err := parseValue(v.String())
		if err != nil {
			return Reading{}, fmt.Errorf("%s: %s is not a number", what, fieldName(m.Field))
		}
		return Reading{Value: f}, nil
	case float64:
		return Reading{Value: v}, nil
	case string:
		f, err := parseValue(strings.TrimSpace(v))
		if err != nil {
			return Reading{}, fmt.Errorf("%s: %s is a string of %d bytes, not a number", what, fieldName(m.Field), len(v))
		}
		return Reading{Value: f}, nil
	}
	return Reading{}, fmt.Errorf("%s: %s is %s, not a number", what, fieldName(m.Field), jsonKind(v))
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
