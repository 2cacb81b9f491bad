package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

func f64(v float64) *float64 { return &v }

// fakeClock moves only when Run sleeps.
type fakeClock struct {
	now   time.Time
	slept []time.Duration
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) runner() Runner { return Runner{Now: c.Now, Sleep: c.Sleep} }

// step is one scripted measurement: a value, or an error.
type step struct {
	v   float64
	err error
}

func val(v float64) step { return step{v: v} }

var (
	errDown = errors.New("connection refused")
	noData  = step{err: Inconclusive("no data")}
	noSamp  = step{err: NoData("no samples yet: the query returned an empty vector")}
	down    = step{err: errDown}
)

// script measures the steps in order and fails the test if Run asks for more.
type script struct {
	t     *testing.T
	steps []step
	calls int
}

func (s *script) Measure(ctx context.Context) (Reading, error) {
	if s.calls >= len(s.steps) {
		s.t.Fatalf("measurement %d requested, the script has %d", s.calls+1, len(s.steps))
	}
	st := s.steps[s.calls]
	s.calls++
	return Reading{Value: st.v, Detail: "scripted"}, st.err
}

func phases(ms []contract.Measurement) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Phase)
	}
	return out
}

func TestOutcomeRules(t *testing.T) {
	base := contract.AnalysisSpec{Provider: ProviderHTTP, URL: "http://127.0.0.1:1/x", Metric: "errorRate", Max: f64(0.05), Interval: 10 * time.Second}
	with := func(f func(*contract.AnalysisSpec)) contract.AnalysisSpec { s := base; f(&s); return s }
	S, F, I, E := PhaseSuccessful, PhaseFailed, PhaseInconclusive, PhaseError
	tests := []struct {
		name         string
		spec         contract.AnalysisSpec
		steps        []step
		phase        string
		reason       string
		measurements []string
		message      string
	}{
		{
			name: "all good", spec: with(func(s *contract.AnalysisSpec) { s.Count = 3 }),
			steps: []step{val(0.01), val(0.02), val(0)}, phase: S,
			measurements: []string{S, S, S}, message: "errorRate met max 0.05 in 3 of 3 measurements",
		},
		{
			name: "count defaults to 1", spec: base,
			steps: []step{val(0.01)}, phase: S, measurements: []string{S},
		},
		{
			name: "first failure stops at once with failureLimit 0", spec: with(func(s *contract.AnalysisSpec) { s.Count = 5 }),
			steps: []step{val(0.31)}, phase: F, reason: ReasonFailureLimit,
			measurements: []string{F}, message: "errorRate was 0.31 > max 0.05 in 1 of 1 measurements",
		},
		{
			name: "failures within failureLimit pass", spec: with(func(s *contract.AnalysisSpec) { s.Count = 3; s.FailureLimit = 1 }),
			steps: []step{val(0.2), val(0.01), val(0.01)}, phase: S, measurements: []string{F, S, S},
			message: "errorRate met max 0.05 in 2 of 3 measurements (1 failed, tolerated by failureLimit 1: 0.2 > max 0.05)",
		},
		{
			name: "one failure more than failureLimit fails, naming the worst", spec: with(func(s *contract.AnalysisSpec) { s.Count = 4; s.FailureLimit = 1 }),
			steps: []step{val(0.2), val(0.01), val(0.4)}, phase: F, reason: ReasonFailureLimit, measurements: []string{F, S, F},
			message: "errorRate was 0.4 > max 0.05 in 2 of 3 measurements (failureLimit 1)",
		},
		{
			name: "min condition", spec: with(func(s *contract.AnalysisSpec) { s.Max = nil; s.Min = f64(0.99); s.Metric = "successRate" }),
			steps: []step{val(0.9)}, phase: F, reason: ReasonFailureLimit, measurements: []string{F},
			message: "successRate was 0.9 < min 0.99 in 1 of 1 measurements",
		},
		{
			name:  "errors do not count toward count, and reset when a value comes",
			spec:  with(func(s *contract.AnalysisSpec) { s.Count = 2; s.ConsecutiveErrorLimit = 2 }),
			steps: []step{down, down, val(0.01), down, down, val(0.01)}, phase: S,
			measurements: []string{E, E, S, E, E, S},
			message:      "errorRate met max 0.05 in 2 of 2 measurements (4 could not be taken)",
		},
		{
			name: "too many errors in a row: could not measure", spec: with(func(s *contract.AnalysisSpec) { s.Count = 3; s.ConsecutiveErrorLimit = 2 }),
			steps: []step{val(0.01), down, down, down}, phase: F, reason: ReasonCouldNotMeasure,
			measurements: []string{S, E, E, E},
			message:      "could not measure errorRate: 3 errors in a row (consecutiveErrorLimit 2); last: connection refused",
		},
		{
			name: "consecutiveErrorLimit defaults to 4", spec: base,
			steps: []step{down, down, down, down, down}, phase: F, reason: ReasonCouldNotMeasure,
			measurements: []string{E, E, E, E, E},
		},
		{
			name: "negative consecutiveErrorLimit tolerates no error", spec: with(func(s *contract.AnalysisSpec) { s.ConsecutiveErrorLimit = -1 }),
			steps: []step{down}, phase: F, reason: ReasonCouldNotMeasure, measurements: []string{E},
		},
		{
			name: "inconclusive beyond inconclusiveLimit", spec: with(func(s *contract.AnalysisSpec) { s.Count = 5; s.InconclusiveLimit = 1 }),
			steps: []step{noData, val(0.01), noData}, phase: I, reason: ReasonInconclusiveLimit,
			measurements: []string{I, S, I}, message: "errorRate was inconclusive in 2 of 3 measurements (inconclusiveLimit 1): no data",
		},
		{
			name: "inconclusive within the limit counts toward count", spec: with(func(s *contract.AnalysisSpec) { s.Count = 2; s.InconclusiveLimit = 1 }),
			steps: []step{noData, val(0.01)}, phase: S, measurements: []string{I, S},
		},
		{
			name: "no value at all is inconclusive", spec: with(func(s *contract.AnalysisSpec) { s.Count = 2; s.InconclusiveLimit = 2 }),
			steps: []step{noData, noData}, phase: I, reason: ReasonNoData, measurements: []string{I, I},
		},
		{
			name: "NaN is no data", spec: base,
			steps: []step{val(math.NaN())}, phase: I, reason: ReasonNoData, measurements: []string{I},
			message: "errorRate had no data in 1 of 1 measurements (inconclusiveLimit 0): the value is NaN, as 0/0 is when nothing was counted (scripted); " +
				"does the URL answer a number yet? imago rollout status shows the URL; onNoData says what no data counts as",
		},
		{
			name: "no data is inconclusive by default, with advice", spec: with(func(s *contract.AnalysisSpec) {
				s.Provider, s.Address, s.Query, s.URL = ProviderPrometheus, "http://127.0.0.1:1", "up", ""
				s.Count = 3
			}),
			steps: []step{noSamp}, phase: I, reason: ReasonNoData, measurements: []string{I},
			message: "errorRate had no data in 1 of 1 measurements (inconclusiveLimit 0): no samples yet: the query returned an empty vector; " +
				"is traffic reaching the fleet, and does the query select its series (metric names and labels as the README's Analysis section shows)? " +
				"imago rollout status shows the query as run; onNoData says what no data counts as",
		},
		{
			name: "onNoData inconclusive is the default", spec: with(func(s *contract.AnalysisSpec) { s.OnNoData = NoDataInconclusive; s.Count = 2; s.InconclusiveLimit = 1 }),
			steps: []step{noSamp, val(0.01)}, phase: S, measurements: []string{I, S},
			message: "errorRate met max 0.05 in 1 of 2 measurements (1 inconclusive)",
		},
		{
			name: "onNoData fail fails, saying there was no data", spec: with(func(s *contract.AnalysisSpec) { s.OnNoData = NoDataFail; s.Count = 3 }),
			steps: []step{val(0.01), noSamp}, phase: F, reason: ReasonNoData, measurements: []string{S, F},
			message: "errorRate had no data in 1 of 2 measurements, and onNoData is fail: no samples yet: the query returned an empty vector; " +
				"does the URL answer a number yet? imago rollout status shows the URL; onNoData says what no data counts as",
		},
		{
			name: "onNoData fail with a real failure names the value", spec: with(func(s *contract.AnalysisSpec) { s.OnNoData = NoDataFail; s.Count = 3; s.FailureLimit = 1 }),
			steps: []step{noSamp, val(0.3)}, phase: F, reason: ReasonFailureLimit, measurements: []string{F, F},
			message: "errorRate was 0.3 > max 0.05 in 2 of 2 measurements (failureLimit 1)",
		},
		{
			name: "onNoData pass passes, saying how many had no data", spec: with(func(s *contract.AnalysisSpec) { s.OnNoData = NoDataPass; s.Count = 3 }),
			steps: []step{noSamp, val(0.01), noSamp}, phase: S, measurements: []string{S, S, S},
			message: "errorRate met max 0.05 in 3 of 3 measurements (2 of them without data, passed by onNoData: pass)",
		},
		{
			name: "+Inf fails", spec: base,
			steps: []step{val(math.Inf(1))}, phase: F, reason: ReasonFailureLimit, measurements: []string{F},
			message: "errorRate was +Inf > max 0.05 in 1 of 1 measurements",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			m := &script{t: t, steps: tc.steps}
			var seen []contract.Measurement
			res, err := c.runner().Run(context.Background(), tc.spec, m, func(meas contract.Measurement) { seen = append(seen, meas) })
			if err != nil {
				t.Fatal(err)
			}
			if res.Phase != tc.phase || res.Reason != tc.reason {
				t.Errorf("phase %s (%s), want %s (%s); message %q", res.Phase, res.Reason, tc.phase, tc.reason, res.Message)
			}
			if got := phases(res.Measurements); !reflect.DeepEqual(got, tc.measurements) {
				t.Errorf("measurements %v, want %v", got, tc.measurements)
			}
			if m.calls != len(tc.steps) {
				t.Errorf("%d measurements taken, want %d (early stop)", m.calls, len(tc.steps))
			}
			if !reflect.DeepEqual(seen, res.Measurements) {
				t.Errorf("onMeasurement saw %v, result has %v", seen, res.Measurements)
			}
			if tc.message != "" && res.Message != tc.message {
				t.Errorf("message\n %q, want\n %q", res.Message, tc.message)
			}
			// Measurements are one interval apart (ErrorRetryInterval would be
			// used without one); the clock never sleeps after the decision.
			if len(c.slept) != len(tc.steps)-1 {
				t.Errorf("slept %v, want %d intervals", c.slept, len(tc.steps)-1)
			}
			for i, meas := range res.Measurements {
				if want := newClock().now.Add(time.Duration(i) * tc.spec.Interval); !meas.Time.Equal(want) {
					t.Errorf("measurement %d at %s, want %s", i, meas.Time, want)
				}
			}
			// Results cross Temporal as JSON: they must always encode.
			data, err := json.Marshal(res)
			if err != nil {
				t.Fatalf("encode result: %v", err)
			}
			var back Result
			if err := json.Unmarshal(data, &back); err != nil || back.Phase != res.Phase || len(back.Measurements) != len(res.Measurements) {
				t.Fatalf("decode result: %+v, %v", back, err)
			}
		})
	}
}

func TestErrorsWithoutIntervalWaitBeforeRetrying(t *testing.T) {
	c := newClock()
	spec := contract.AnalysisSpec{Provider: ProviderHTTP, URL: "http://127.0.0.1:1/", Max: f64(1)}
	res, err := c.runner().Run(context.Background(), spec, &script{t: t, steps: []step{down, down, val(0.5)}}, nil)
	if err != nil || res.Phase != PhaseSuccessful {
		t.Fatalf("%+v %v", res, err)
	}
	if want := []time.Duration{ErrorRetryInterval, ErrorRetryInterval}; !reflect.DeepEqual(c.slept, want) {
		t.Fatalf("slept %v, want %v", c.slept, want)
	}
}

// windowed records the order of Begin and Measure calls against the clock.
type windowed struct {
	c        *fakeClock
	calls    []string
	beginErr []error
	value    float64
}

func (w *windowed) Begin(ctx context.Context) error {
	w.calls = append(w.calls, "begin@"+w.c.now.Format("15:04:05"))
	if len(w.beginErr) > 0 {
		err := w.beginErr[0]
		w.beginErr = w.beginErr[1:]
		return err
	}
	return nil
}

func (w *windowed) Measure(ctx context.Context) (Reading, error) {
	w.calls = append(w.calls, "measure@"+w.c.now.Format("15:04:05"))
	return Reading{Value: w.value}, nil
}

func (w *windowed) String() string { return "errorRate of fleet fl-1" }

func TestWindowedMeasurerBeginsOneIntervalBeforeMeasuring(t *testing.T) {
	c := newClock()
	w := &windowed{c: c, beginErr: []error{errDown}, value: 0.5}
	spec := contract.AnalysisSpec{Provider: ProviderRouter, Metric: MetricErrorRate, Max: f64(0.05), Interval: 30 * time.Second, Count: 3, FailureLimit: 1}
	res, err := c.runner().Run(context.Background(), spec, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"begin@03:04:05", "begin@03:04:35", "measure@03:05:05", "measure@03:05:35"}
	if !reflect.DeepEqual(w.calls, want) {
		t.Errorf("calls %v, want %v", w.calls, want)
	}
	if got := phases(res.Measurements); !reflect.DeepEqual(got, []string{PhaseError, PhaseFailed, PhaseFailed}) {
		t.Errorf("measurements %v", got)
	}
	if !strings.HasPrefix(res.Measurements[0].Message, "could not start the measurement window: connection refused") {
		t.Errorf("begin error message %q", res.Measurements[0].Message)
	}
	if want := "errorRate of fleet fl-1 was 0.5 > max 0.05 in 2 of 2 measurements (failureLimit 1)"; res.Phase != PhaseFailed || res.Message != want {
		t.Errorf("%s %q, want Failed %q", res.Phase, res.Message, want)
	}
}

func TestResumeFromPreviousMeasurements(t *testing.T) {
	spec := contract.AnalysisSpec{Provider: ProviderHTTP, URL: "http://127.0.0.1:1/", Metric: "errorRate", Max: f64(0.05), Interval: time.Minute, Count: 3, FailureLimit: 1}
	c := newClock()
	prev := []contract.Measurement{
		{Time: c.now.Add(-90 * time.Second), Value: f64(0.01), Phase: PhaseSuccessful},
		{Time: c.now.Add(-30 * time.Second), Value: f64(0.5), Phase: PhaseFailed, Message: "0.5 > max 0.05"},
	}
	r := c.runner()
	r.Previous = prev
	m := &script{t: t, steps: []step{val(0.02)}}
	res, err := r.Run(context.Background(), spec, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The next measurement keeps the pace: one interval after the last one.
	if !reflect.DeepEqual(c.slept, []time.Duration{30 * time.Second}) {
		t.Errorf("slept %v, want [30s]", c.slept)
	}
	if got := phases(res.Measurements); res.Phase != PhaseSuccessful || !reflect.DeepEqual(got, []string{PhaseSuccessful, PhaseFailed, PhaseSuccessful}) {
		t.Errorf("%s %v", res.Phase, got)
	}

	// Previous measurements count toward the limits too.
	r = newClock().runner()
	r.Previous = prev
	res, err = r.Run(context.Background(), spec, &script{t: t, steps: []step{val(0.9)}}, nil)
	if err != nil || res.Phase != PhaseFailed || len(res.Measurements) != 3 {
		t.Fatalf("%+v %v", res, err)
	}

	// An attempt that decided but did not return: no new measurement.
	r = newClock().runner()
	r.Previous = append(prev, contract.Measurement{Time: c.now, Value: f64(0.7), Phase: PhaseFailed})
	res, err = r.Run(context.Background(), spec, &script{t: t}, nil)
	if err != nil || res.Phase != PhaseFailed || len(res.Measurements) != 3 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestRunStopsOnPermanentErrorsAndCancel(t *testing.T) {
	spec := contract.AnalysisSpec{Provider: ProviderHTTP, URL: "http://127.0.0.1:1/", Max: f64(1), Interval: time.Second, Count: 3}
	perm := Permanent(errors.New("driver exports no metrics"))
	res, err := newClock().runner().Run(context.Background(), spec, &script{t: t, steps: []step{val(0.5), {err: perm}}}, nil)
	if !IsPermanent(err) || len(res.Measurements) != 1 {
		t.Fatalf("permanent: %+v %v", res, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	m := MeasureFunc(func(context.Context) (Reading, error) { cancel(); return Reading{Value: 0.5}, nil })
	if _, err := newClock().runner().Run(ctx, spec, m, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}

	// The real sleep honours ctx too.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Run(ctx, contract.AnalysisSpec{Provider: ProviderHTTP, URL: "http://127.0.0.1:1/", Max: f64(1), Interval: time.Hour, Count: 2},
		MeasureFunc(func(context.Context) (Reading, error) { return Reading{Value: 0.5}, nil }), nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("real sleep: %v after %s", err, time.Since(start))
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	if err := Validate(contract.AnalysisSpec{Provider: ProviderRouter, Metric: MetricP99, Max: f64(0.5), Interval: time.Second}); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	tests := []struct {
		spec contract.AnalysisSpec
		want []string
	}{
		{contract.AnalysisSpec{}, []string{"provider is required", "a success condition is required"}},
		{contract.AnalysisSpec{Provider: "datadog", Max: f64(1)}, []string{`unknown provider "datadog"`}},
		{
			contract.AnalysisSpec{Provider: ProviderRouter, Metric: "p42", Min: f64(2), Max: f64(1), Query: "up", Count: -1, FailureLimit: -1, MinRequests: 5},
			[]string{`metric "p42" is not a router metric`, "interval is required with provider router", "query is not used by provider router",
				"min 2 is greater than max 1", "count must not be negative", "failureLimit must not be negative"},
		},
		{
			contract.AnalysisSpec{Provider: ProviderPrometheus, Address: "prometheus:9090", Max: f64(math.NaN()), Count: 3, MinRequests: 5, InconclusiveLimit: -2, OnNoData: "skip"},
			[]string{`address "prometheus:9090" has no scheme; write http://prometheus:9090`, "query is required", "max must be a finite number",
				"interval is required when count is above 1", "minRequests is only used by provider router", "inconclusiveLimit must not be negative",
				`onNoData "skip": want inconclusive (the default: wait for a person), fail or pass`},
		},
		{
			contract.AnalysisSpec{Provider: ProviderHTTP, URL: "http://x/", Field: "data..rate", Max: f64(1), Count: 2, Interval: time.Second, FailureLimit: 2},
			[]string{`field "data..rate" has an empty path element`, "failureLimit 2 tolerates all 2 measurements"},
		},
	}
	for _, tc := range tests {
		err := Validate(tc.spec)
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("%+v: %v, want a *SpecError", tc.spec, err)
			continue
		}
		if len(se.Problems) != len(tc.want) {
			t.Errorf("%+v: problems %q, want %d", tc.spec, se.Problems, len(tc.want))
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q lacks %q", tc.spec, err, w)
			}
		}
	}
}

func TestExpand(t *testing.T) {
	s := contract.AnalysisSpec{Provider: ProviderPrometheus, Address: "http://127.0.0.1:9090", Query: `sum(rate(errors{fleet="{{fleet}}",env="{{environment}}"}[1m])) {{other}}`, Max: f64(1)}
	got := Expand(s, map[string]string{"fleet": "fl-1", "environment": "prod"})
	if want := `sum(rate(errors{fleet="fl-1",env="prod"}[1m])) {{other}}`; got.Query != want {
		t.Fatalf("query %q, want %q", got.Query, want)
	}
}

// Latest keeps the last n measurements, and drops the value 0 that an
// inconclusive or error measurement recorded before values were optional carries.
func TestLatestKeepsTheLastAndNoValueWithoutOne(t *testing.T) {
	zero := 0.0
	var ms []contract.Measurement
	for i := range 12 {
		ms = append(ms, contract.Measurement{Value: f64(float64(i)), Phase: PhaseSuccessful})
	}
	ms = append(ms, contract.Measurement{Value: &zero, Phase: PhaseInconclusive}, contract.Measurement{Value: &zero, Phase: PhaseError})
	got := Latest(ms, KeptMeasurements)
	if len(got) != KeptMeasurements || *got[0].Value != 4 || got[8].Value != nil || got[9].Value != nil {
		t.Fatalf("latest %+v", got)
	}
	if ms[12].Value == nil {
		t.Fatal("Latest changed its input")
	}
	if c := CountOf(ms); c != (contract.AnalysisCounts{Successful: 12, Inconclusive: 1, Errors: 1}) || c.Total() != 14 {
		t.Fatalf("counts %+v", c)
	}
}
