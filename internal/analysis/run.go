package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
)

// Phases of a measurement and of an analysis.
const (
	PhaseSuccessful   = "Successful"
	PhaseFailed       = "Failed"
	PhaseInconclusive = "Inconclusive"
	// PhaseError marks a measurement that could not be taken. An analysis never
	// ends in it: too many errors in a row fail it with ReasonCouldNotMeasure.
	PhaseError = "Error"
)

// Reasons of a Result that is not Successful.
const (
	ReasonFailureLimit      = "FailureLimit"      // more failed measurements than FailureLimit
	ReasonInconclusiveLimit = "InconclusiveLimit" // more inconclusive measurements than InconclusiveLimit
	ReasonNoData            = "NoData"            // the measurements that decided had no data (or all were inconclusive)
	ReasonCouldNotMeasure   = "CouldNotMeasure"   // more errors in a row than ConsecutiveErrorLimit; the message starts "could not measure"
)

// CountOf counts ms by phase.
func CountOf(ms []contract.Measurement) contract.AnalysisCounts {
	var t tally
	for _, m := range ms {
		t.add(m)
	}
	return t.AnalysisCounts
}

// KeptMeasurements is how many measurements of an analysis a rollout keeps to
// show (the latest, as Argo Rollouts' measurementRetention keeps 10): a long
// analysis does not grow the rollout's history or status without bound. Counts
// count them all.
const KeptMeasurements = 10

// Latest returns a copy of the last n of ms. Inconclusive and Error
// measurements lose the value 0 that those recorded before values were optional
// carry: they never have one.
func Latest(ms []contract.Measurement, n int) []contract.Measurement {
	if len(ms) > n {
		ms = ms[len(ms)-n:]
	}
	out := append([]contract.Measurement(nil), ms...)
	for i, m := range out {
		if m.Phase == PhaseInconclusive || m.Phase == PhaseError {
			out[i].Value = nil
		}
	}
	return out
}

// Result is the outcome of an analysis.
type Result struct {
	// Phase is Successful, Failed or Inconclusive.
	Phase string `json:"phase"`
	// Reason is empty for Successful, else one of the Reason constants;
	// ReasonCouldNotMeasure comes with Phase Failed, ReasonNoData with
	// Inconclusive or (onNoData: fail) Failed.
	Reason string `json:"reason,omitempty"`
	// Message tells a person what happened, e.g. "errorRate of fleet fl-1 was
	// 0.31 > max 0.05 in 3 of 3 measurements".
	Message      string                 `json:"message"`
	Measurements []contract.Measurement `json:"measurements"`
	// Counts count Measurements by phase.
	Counts contract.AnalysisCounts `json:"counts"`
}

// Reading is what a Measurer measured: a value and, for messages, how it came
// about (e.g. "93 of 300 requests answered 5xx in 30s").
type Reading struct {
	Value  float64
	Detail string
}

// Measurer takes measurements. Measure returns an error made by Inconclusive
// when there is nothing to judge (no traffic, no data), an error made by
// Permanent when measuring can never work (Run then stops with it), and any
// other error when the measurement could not be taken this time.
type Measurer interface {
	Measure(ctx context.Context) (Reading, error)
}

// Windowed is a Measurer that measures what happened since the previous
// measurement (a difference of cumulative counters). Run calls Begin to take the
// starting point, waits one interval, and measures; a failed Begin counts as an
// error measurement and is retried after an interval.
type Windowed interface {
	Measurer
	Begin(ctx context.Context) error
}

// MeasureFunc adapts a function to Measurer.
type MeasureFunc func(ctx context.Context) (Reading, error)

// Measure calls f.
func (f MeasureFunc) Measure(ctx context.Context) (Reading, error) { return f(ctx) }

type inconclusiveError struct {
	msg    string
	noData bool
}

func (e *inconclusiveError) Error() string { return e.msg }

// Inconclusive returns the error a Measurer returns when there is nothing to judge.
func Inconclusive(format string, args ...any) error {
	return &inconclusiveError{msg: fmt.Sprintf(format, args...)}
}

// NoData returns the error a Measurer returns when there are no samples to
// judge (an empty answer, no traffic in the window). It is inconclusive, and
// what it counts as is the spec's OnNoData.
func NoData(format string, args ...any) error {
	return &inconclusiveError{msg: fmt.Sprintf(format, args...), noData: true}
}

// IsNoData reports whether err was made by NoData.
func IsNoData(err error) bool {
	var e *inconclusiveError
	return errors.As(err, &e) && e.noData
}

// IsInconclusive reports whether err was made by Inconclusive or NoData.
func IsInconclusive(err error) bool {
	var e *inconclusiveError
	return errors.As(err, &e)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix; Run stops with it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var e *permanentError
	return errors.As(err, &e)
}

// Runner runs analyses. The zero value uses the real clock.
type Runner struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx is done (returning ctx.Err()); nil sleeps
	// on a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Previous are measurements an earlier attempt took (read back from a
	// heartbeat); they count, and the analysis goes on from them.
	Previous []contract.Measurement
	// Subject names what is measured in messages (e.g. "errorRate of fleet
	// fl-1"); empty uses the Measurer's String method if it has one, else the
	// spec's metric.
	Subject string
}

// Run runs an analysis with the real clock; see Runner.Run.
func Run(ctx context.Context, spec contract.AnalysisSpec, m Measurer, onMeasurement func(contract.Measurement)) (Result, error) {
	return Runner{}.Run(ctx, spec, m, onMeasurement)
}

// Run measures with m until the outcome is decided and returns it. It calls
// onMeasurement (if not nil) after each measurement. A Failed or Inconclusive
// outcome is a Result, not an error; errors are an invalid spec (*SpecError),
// ctx ending, or a Permanent error of m. The Result returned with an error holds
// the measurements taken so far.
//
// Rules (as in Argo Rollouts): each measurement is Successful or Failed by the
// spec's condition, Inconclusive when m says so, or Error when it could not be
// taken. The analysis fails as soon as more than FailureLimit measurements
// failed, ends Inconclusive as soon as more than InconclusiveLimit were
// inconclusive, and fails with ReasonCouldNotMeasure as soon as more than
// ConsecutiveErrorLimit errors came in a row. Errors do not count toward Count;
// once Count measurements were taken without crossing a limit it is Successful
// (Inconclusive with ReasonNoData if none of them produced a value).
func (r Runner) Run(ctx context.Context, spec contract.AnalysisSpec, m Measurer, onMeasurement func(contract.Measurement)) (Result, error) {
	res := Result{Measurements: append([]contract.Measurement{}, r.Previous...)}
	if err := Validate(spec); err != nil {
		return res, err
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	sleep := r.Sleep
	if sleep == nil {
		sleep = sleepTimer
	}
	subject := r.Subject
	if s, ok := m.(fmt.Stringer); ok && subject == "" {
		subject = s.String()
	}
	if subject == "" {
		subject = metricName(spec)
	}
	var t tally
	for _, pm := range res.Measurements {
		t.add(pm)
	}
	if done := decide(spec, subject, &t, &res); done {
		return res, nil // an earlier attempt decided, but did not get to return
	}

	w, windowed := m.(Windowed)
	begun := !windowed
	if n := len(res.Measurements); n > 0 && begun {
		// Go on at the pace of the earlier attempt.
		next := res.Measurements[n-1].Time.Add(wait(spec, res.Measurements[n-1].Phase))
		if d := next.Sub(now()); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return res, err
			}
		}
	}
	record := func(meas contract.Measurement) bool {
		res.Measurements = append(res.Measurements, meas)
		t.add(meas)
		if onMeasurement != nil {
			onMeasurement(meas)
		}
		return decide(spec, subject, &t, &res)
	}
	for {
		if !begun {
			if err := w.Begin(ctx); err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if IsPermanent(err) {
					return res, err
				}
				if record(contract.Measurement{Time: now(), Phase: PhaseError, Message: "could not start the measurement window: " + err.Error()}) {
					return res, nil
				}
				if err := sleep(ctx, wait(spec, PhaseError)); err != nil {
					return res, err
				}
				continue
			}
			begun = true
			if err := sleep(ctx, spec.Interval); err != nil {
				return res, err
			}
		}
		reading, err := m.Measure(ctx)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if IsPermanent(err) {
			return res, err
		}
		meas := judge(spec, now(), reading, err)
		if record(meas) {
			return res, nil
		}
		if err := sleep(ctx, wait(spec, meas.Phase)); err != nil {
			return res, err
		}
	}
}

// wait is the pause after a measurement of phase.
func wait(spec contract.AnalysisSpec, phase string) time.Duration {
	if spec.Interval == 0 && phase == PhaseError {
		return ErrorRetryInterval
	}
	return spec.Interval
}

func sleepTimer(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// judge turns what a Measurer returned into a Measurement.
func judge(spec contract.AnalysisSpec, at time.Time, r Reading, err error) contract.Measurement {
	meas := contract.Measurement{Time: at}
	switch {
	case IsNoData(err):
		return judgeNoData(spec, meas, err.Error())
	case IsInconclusive(err):
		meas.Phase, meas.Message = PhaseInconclusive, err.Error()
		return meas
	case err != nil:
		meas.Phase, meas.Message = PhaseError, err.Error()
		return meas
	case math.IsNaN(r.Value):
		return judgeNoData(spec, meas, withDetail("the value is NaN, as 0/0 is when nothing was counted", r.Detail))
	}
	ok, text := check(spec, r.Value)
	meas.Phase = PhaseSuccessful
	if !ok {
		meas.Phase = PhaseFailed
	}
	meas.Message = withDetail(text, r.Detail)
	v := r.Value
	if math.IsInf(v, 0) {
		v = math.Copysign(math.MaxFloat64, v)
	}
	meas.Value = &v
	return meas
}

// judgeNoData is a measurement without data, counted as the spec's OnNoData says.
func judgeNoData(spec contract.AnalysisSpec, meas contract.Measurement, why string) contract.Measurement {
	meas.NoData = true
	switch onNoData(spec) {
	case NoDataPass:
		meas.Phase, meas.Message = PhaseSuccessful, "no data, passed by onNoData: pass: "+why
	case NoDataFail:
		meas.Phase, meas.Message = PhaseFailed, "no data, failed by onNoData: fail: "+why
	default:
		meas.Phase, meas.Message = PhaseInconclusive, "no data: "+why
	}
	return meas
}

func withDetail(s, detail string) string {
	if detail == "" {
		return s
	}
	return s + " (" + detail + ")"
}

type tally struct {
	contract.AnalysisCounts
	consecutiveErrors int
	// *WithData are true once a measurement of the phase had data.
	failedWithData, inconclusiveWithData bool
}

func (t *tally) add(m contract.Measurement) {
	if m.NoData {
		t.NoData++
	}
	switch m.Phase {
	case PhaseSuccessful:
		t.Successful++
	case PhaseFailed:
		t.Failed++
		t.failedWithData = t.failedWithData || !m.NoData
	case PhaseInconclusive:
		t.Inconclusive++
		t.inconclusiveWithData = t.inconclusiveWithData || !m.NoData
	case PhaseError:
		t.Errors++
		t.consecutiveErrors++
		return
	}
	t.consecutiveErrors = 0
}

// counted is the number of measurements that count toward Count.
func (t *tally) counted() int { return t.Successful + t.Failed + t.Inconclusive }

// decide sets res.Phase, Reason, Message and Counts and returns true once the
// outcome is decided.
func decide(spec contract.AnalysisSpec, subject string, t *tally, res *Result) bool {
	res.Counts = t.AnalysisCounts
	counted := t.counted()
	switch {
	case t.Failed > spec.FailureLimit && !t.failedWithData:
		res.Phase, res.Reason = PhaseFailed, ReasonNoData
		res.Message = fmt.Sprintf("%s had no data in %d of %d measurements, and onNoData is fail: %s; %s",
			subject, t.Failed, counted, lastNoData(res.Measurements), noDataAdvice(spec))
	case t.Failed > spec.FailureLimit:
		worst := worstFailed(spec, res.Measurements)
		res.Phase, res.Reason = PhaseFailed, ReasonFailureLimit
		res.Message = fmt.Sprintf("%s was %s in %d of %d measurements", subject, worst, t.Failed, counted)
		if spec.FailureLimit > 0 {
			res.Message += fmt.Sprintf(" (failureLimit %d)", spec.FailureLimit)
		}
	case t.Inconclusive > spec.InconclusiveLimit && !t.inconclusiveWithData:
		res.Phase, res.Reason = PhaseInconclusive, ReasonNoData
		res.Message = fmt.Sprintf("%s had no data in %d of %d measurements (inconclusiveLimit %d): %s; %s",
			subject, t.Inconclusive, counted, spec.InconclusiveLimit, lastNoData(res.Measurements), noDataAdvice(spec))
	case t.Inconclusive > spec.InconclusiveLimit:
		res.Phase, res.Reason = PhaseInconclusive, ReasonInconclusiveLimit
		res.Message = fmt.Sprintf("%s was inconclusive in %d of %d measurements (inconclusiveLimit %d): %s",
			subject, t.Inconclusive, counted, spec.InconclusiveLimit, last(res.Measurements, PhaseInconclusive))
	case t.consecutiveErrors > consecutiveErrorLimit(spec):
		res.Phase, res.Reason = PhaseFailed, ReasonCouldNotMeasure
		res.Message = fmt.Sprintf("could not measure %s: %d errors in a row (consecutiveErrorLimit %d); last: %s",
			subject, t.consecutiveErrors, consecutiveErrorLimit(spec), last(res.Measurements, PhaseError))
	case counted >= count(spec) && t.Successful+t.Failed == 0:
		res.Phase, res.Reason = PhaseInconclusive, ReasonNoData
		res.Message = fmt.Sprintf("%s was inconclusive in all %d measurements: %s",
			subject, counted, last(res.Measurements, PhaseInconclusive))
		if !t.inconclusiveWithData {
			res.Message += "; " + noDataAdvice(spec)
		}
	case counted >= count(spec):
		res.Phase, res.Reason = PhaseSuccessful, ""
		res.Message = fmt.Sprintf("%s met %s in %d of %d measurements", subject, Condition(spec), t.Successful, counted)
		var extra []string
		if passed := t.Successful - withValue(res.Measurements, PhaseSuccessful); passed > 0 {
			extra = append(extra, fmt.Sprintf("%d of them without data, passed by onNoData: pass", passed))
		}
		if t.Failed > 0 {
			extra = append(extra, fmt.Sprintf("%d failed, tolerated by failureLimit %d: %s", t.Failed, spec.FailureLimit, worstFailed(spec, res.Measurements)))
		}
		if t.Inconclusive > 0 {
			extra = append(extra, fmt.Sprintf("%d inconclusive", t.Inconclusive))
		}
		if t.Errors > 0 {
			extra = append(extra, fmt.Sprintf("%d could not be taken", t.Errors))
		}
		if len(extra) > 0 {
			res.Message += " (" + strings.Join(extra, "; ") + ")"
		}
	default:
		return false
	}
	return true
}

// noDataAdvice says what to look at when an analysis has no data.
func noDataAdvice(spec contract.AnalysisSpec) string {
	switch spec.Provider {
	case ProviderRouter:
		return "is traffic reaching the fleet through the router? A quiet service needs a longer interval or a lower minRequests; onNoData says what no data counts as"
	case ProviderPrometheus:
		return "is traffic reaching the fleet, and does the query select its series (metric names and labels as the README's Analysis section shows)? " +
			"imago rollout status shows the query as run; onNoData says what no data counts as"
	}
	return "does the URL answer a number yet? imago rollout status shows the URL; onNoData says what no data counts as"
}

// withValue counts the measurements of phase that have a value.
func withValue(ms []contract.Measurement, phase string) int {
	n := 0
	for _, m := range ms {
		if m.Phase == phase && m.Value != nil {
			n++
		}
	}
	return n
}

// worstFailed describes the failed measurement furthest outside the condition
// ("without data" when no failed one has a value).
func worstFailed(spec contract.AnalysisSpec, ms []contract.Measurement) string {
	best, bestD := "without data", -1.0
	for _, m := range ms {
		if m.Phase != PhaseFailed || m.Value == nil {
			continue
		}
		v := *m.Value
		if math.Abs(v) == math.MaxFloat64 {
			v = math.Copysign(math.Inf(1), v) // stored clamped, see judge
		}
		if d := distance(spec, v); d > bestD {
			_, best = check(spec, v)
			bestD = d
		}
	}
	return best
}

// lastNoData returns why the last measurement without data had none.
func lastNoData(ms []contract.Measurement) string {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].NoData {
			_, why, _ := strings.Cut(ms[i].Message, ": ")
			if ms[i].Phase != PhaseInconclusive {
				_, why, _ = strings.Cut(why, ": ")
			}
			return why
		}
	}
	return ""
}

// last returns the message of the last measurement of phase.
func last(ms []contract.Measurement, phase string) string {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Phase == phase {
			return ms[i].Message
		}
	}
	return ""
}
