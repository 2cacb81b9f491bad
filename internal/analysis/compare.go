package analysis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	kayenta "github.com/imago/imago/internal/analysis/judge"
	"github.com/imago/imago/internal/contract"
)

// An analysis of kind compare judges the canary against the baseline fleet
// (strategy.baseline), as Kayenta does: every interval, for count intervals,
// each metric's value over the interval is read from the router's counters of
// both fleets (one sample per fleet per interval), and then package judge
// tests each metric's two samples (Mann-Whitney U) and scores them.

// ReasonJudgment is the Reason of a compare that failed or was marginal by
// its judgment (contract.Judgment says why).
const ReasonJudgment = "Judgment"

// MinCompareCount is the fewest intervals a compare takes: with 3 samples a
// side the smallest two-sided p-value the exact test can give is 0.1, so no
// difference could ever be significant at 95%.
const MinCompareCount = 4

// DefaultTolerance is a compare metric's tolerance when the spec gives none:
// a significant change up to 10% worse passes.
const DefaultTolerance = contract.DefaultTolerance

// CompareSamples are a compare's values so far: per metric, one value per
// interval that had data, of each fleet. They are the heartbeat's, so a
// retried attempt goes on from them.
type CompareSamples struct {
	Canary   map[string][]float64 `json:"canary"`
	Baseline map[string][]float64 `json:"baseline"`
}

func (s CompareSamples) clone() CompareSamples {
	c := CompareSamples{Canary: map[string][]float64{}, Baseline: map[string][]float64{}}
	for k, v := range s.Canary {
		c.Canary[k] = slices.Clone(v)
	}
	for k, v := range s.Baseline {
		c.Baseline[k] = slices.Clone(v)
	}
	return c
}

// validateCompare checks a spec of kind compare.
func validateCompare(s contract.AnalysisSpec, add func(format string, args ...any)) {
	if s.Provider != ProviderRouter {
		add("kind compare reads the router's per-fleet counters of the canary and the baseline: use provider router, not %q", s.Provider)
	}
	if s.Interval <= 0 {
		add("interval is required with kind compare: it is the window of each sample")
	}
	for _, f := range []struct {
		field string
		set   bool
	}{{"metric", s.Metric != ""}, {"max", s.Max != nil}, {"min", s.Min != nil}, {"address", s.Address != ""}, {"query", s.Query != ""},
		{"url", s.URL != ""}, {"field", s.Field != ""}, {"failureLimit", s.FailureLimit != 0}, {"inconclusiveLimit", s.InconclusiveLimit != 0}} {
		if f.set {
			add("%s is not used by kind compare: each of metrics is judged against the baseline", f.field)
		}
	}
	if s.OnNoData != "" && s.OnNoData != NoDataInconclusive {
		add("onNoData %q is not used by kind compare: missing data is never a pass, and waits for a person", s.OnNoData)
	}
	if s.Count < MinCompareCount {
		add("count %d is too few: kind compare needs at least %d intervals; with fewer no difference could be significant", s.Count, MinCompareCount)
	}
	if len(s.Metrics) == 0 {
		add("metrics is required with kind compare, e.g. [{metric: p99, direction: increase, tolerance: 10%%}]")
	}
	seen := map[string]bool{}
	weights := map[string]float64{}
	for i, m := range s.Metrics {
		field := fmt.Sprintf("metrics[%d]", i)
		if _, ok := routerQuantiles[m.Metric]; !ok && m.Metric != MetricErrorRate {
			add("%s.metric %q is not a router metric: want errorRate, p50, p90, p95 or p99", field, m.Metric)
		} else if seen[m.Metric] {
			add("%s.metric %s is compared twice", field, m.Metric)
		}
		seen[m.Metric] = true
		switch kayenta.Direction(m.Direction) {
		case kayenta.Increase, kayenta.Decrease, kayenta.Either:
		default:
			add("%s.direction %q: want increase, decrease or either", field, m.Direction)
		}
		if m.Tolerance < 0 || math.IsNaN(m.Tolerance) || math.IsInf(m.Tolerance, 0) {
			add("%s.tolerance must be a percent of at least 0%%, such as 10%%", field)
		}
		if !(m.Weight > 0) || math.IsInf(m.Weight, 0) {
			add("%s.weight %v must be a positive number", field, m.Weight)
			continue
		}
		g := groupOf(m)
		if w, ok := weights[g]; ok && w != m.Weight {
			add("%s.weight %v: group %s has weight %v already; give every metric of a group the same weight", field, m.Weight, g, w)
		}
		weights[g] = m.Weight
	}
	th := thresholds(s)
	for _, v := range []struct {
		name string
		v    float64
	}{{"pass", th.Pass}, {"marginal", th.Marginal}} {
		if !(v.v >= 0 && v.v <= 100) {
			add("%s %v must be a score from 0 to 100", v.name, v.v)
		}
	}
	if th.Marginal > th.Pass {
		add("marginal %v is above pass %v: want marginal ≤ pass", th.Marginal, th.Pass)
	}
}

func groupOf(m contract.CompareMetricSpec) string {
	if m.Group != "" {
		return m.Group
	}
	return m.Metric
}

// thresholds are the spec's pass and marginal scores, with their defaults.
func thresholds(s contract.AnalysisSpec) kayenta.Thresholds {
	th := kayenta.DefaultThresholds
	if s.Pass != nil {
		th.Pass = *s.Pass
	}
	if s.Marginal != nil {
		th.Marginal = *s.Marginal
	}
	return th
}

// compareCondition describes a compare: "p99 vs baseline (increase, 10%), …; pass 75, marginal 50".
func compareCondition(s contract.AnalysisSpec) string {
	parts := make([]string, 0, len(s.Metrics))
	for _, m := range s.Metrics {
		p := fmt.Sprintf("%s (%s, %s)", m.Metric, m.Direction, percent(m.Tolerance))
		if m.Critical {
			p += " critical"
		}
		parts = append(parts, p)
	}
	th := thresholds(s)
	return fmt.Sprintf("canary vs baseline: %s; pass %v, marginal %v", strings.Join(parts, ", "), th.Pass, th.Marginal)
}

func percent(f float64) string { return fmt.Sprintf("%.4g%%", f*100) }

// Compare samples the canary and the baseline every interval, count times,
// through source (the router's cumulative per-fleet metrics), then judges
// them. prev are the samples of an earlier attempt (r.Previous its
// measurements); onMeasurement, if not nil, is called after each interval with
// the samples so far. Pass is Successful; marginal Inconclusive (ReasonJudgment),
// no data Inconclusive (ReasonNoData), fail Failed (ReasonJudgment); the
// judgment is returned with them. Too many errors in a row fail it with
// ReasonCouldNotMeasure and no judgment.
func (r Runner) Compare(ctx context.Context, spec contract.AnalysisSpec, canary, baseline string, source MetricsSource, prev *CompareSamples,
	onMeasurement func(contract.Measurement, CompareSamples)) (Result, *contract.Judgment, error) {
	res := Result{Measurements: append([]contract.Measurement{}, r.Previous...)}
	if err := Validate(spec); err != nil {
		return res, nil, err
	}
	if canary == "" || baseline == "" {
		return res, nil, Permanent(fmt.Errorf("kind compare needs the canary and a baseline fleet (strategy.baseline: true); got canary %q, baseline %q", canary, baseline))
	}
	r = r.withDefaults()
	samples := CompareSamples{}.clone()
	if prev != nil {
		samples = prev.clone()
	}
	var t tally
	for _, m := range res.Measurements {
		t.add(m)
	}
	record := func(m contract.Measurement) {
		res.Measurements = append(res.Measurements, m)
		t.add(m)
		res.Counts = t.AnalysisCounts
		if onMeasurement != nil {
			onMeasurement(m, samples.clone()) // a heartbeat encodes it while the next interval appends
		}
	}
	scrape := func() (map[string]contract.FleetMetrics, error) {
		all, err := source(ctx) // a source marks what retrying cannot fix as Permanent
		if err != nil {
			return nil, fmt.Errorf("read router metrics: %w", err)
		}
		return all, nil
	}
	var before map[string]contract.FleetMetrics // the start of the window
	beforeAt := r.Now()
	for t.counted() < count(spec) {
		if t.consecutiveErrors > consecutiveErrorLimit(spec) {
			res.Phase, res.Reason = PhaseFailed, ReasonCouldNotMeasure
			res.Message = fmt.Sprintf("could not measure fleets %s and %s: %d errors in a row (consecutiveErrorLimit %d); last: %s",
				canary, baseline, t.consecutiveErrors, consecutiveErrorLimit(spec), last(res.Measurements, PhaseError))
			res.Counts = t.AnalysisCounts
			return res, nil, nil
		}
		if before != nil || t.consecutiveErrors > 0 {
			if err := r.Sleep(ctx, spec.Interval); err != nil {
				return res, nil, err
			}
		}
		cur, err := scrape()
		if ctx.Err() != nil {
			return res, nil, ctx.Err()
		}
		if IsPermanent(err) {
			return res, nil, err
		}
		at := r.Now()
		if err != nil {
			record(contract.Measurement{Time: at, Phase: PhaseError, Message: err.Error()})
			continue
		}
		if before == nil { // the first window starts now
			before, beforeAt = cur, at
			continue
		}
		window := at.Sub(beforeAt).Round(time.Millisecond)
		dc, _ := DeltaMetrics(cur[canary], before[canary])
		db, _ := DeltaMetrics(cur[baseline], before[baseline])
		before, beforeAt = cur, at
		record(r.sample(spec, &samples, dc, db, canary, baseline, window.String(), at))
	}
	return r.decideCompare(spec, samples, res, canary, baseline)
}

// withDefaults fills in the real clock.
func (r Runner) withDefaults() Runner {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Sleep == nil {
		r.Sleep = sleepTimer
	}
	return r
}

// sample adds one interval's values of every metric to samples and returns
// its measurement: Successful when some metric had data on both sides,
// Inconclusive without data otherwise.
func (r Runner) sample(spec contract.AnalysisSpec, samples *CompareSamples, dc, db contract.FleetMetrics, canary, baseline, window string, at time.Time) contract.Measurement {
	min := minRequests(spec)
	var parts []string
	both := false
	for _, m := range spec.Metrics {
		vc, vb := routerValue(m.Metric, dc, min), routerValue(m.Metric, db, min)
		if !math.IsNaN(vc) {
			samples.Canary[m.Metric] = append(samples.Canary[m.Metric], vc)
		}
		if !math.IsNaN(vb) {
			samples.Baseline[m.Metric] = append(samples.Baseline[m.Metric], vb)
		}
		both = both || !math.IsNaN(vc) && !math.IsNaN(vb)
		parts = append(parts, fmt.Sprintf("%s %s vs %s", m.Metric, nanDash(vc), nanDash(vb)))
	}
	msg := fmt.Sprintf("canary %s: %s requests, baseline %s: %s requests in %s; %s",
		canary, fmtValue(dc.Requests), baseline, fmtValue(db.Requests), window, strings.Join(parts, ", "))
	if !both {
		return contract.Measurement{Time: at, Phase: PhaseInconclusive, NoData: true,
			Message: fmt.Sprintf("no data: fewer than minRequests %s requests on a fleet: %s", fmtValue(min), msg)}
	}
	return contract.Measurement{Time: at, Phase: PhaseSuccessful, Message: msg}
}

func nanDash(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmtValue(v)
}

// routerValue is metric over the window d: NaN when the fleet got fewer than
// minReq requests or (latency) has no observation.
func routerValue(metric string, d contract.FleetMetrics, minReq float64) float64 {
	if d.Requests < minReq || d.Requests == 0 {
		return math.NaN()
	}
	if metric == MetricErrorRate {
		return d.Errors / d.Requests
	}
	return Quantile(routerQuantiles[metric], d.Latency)
}

// decideCompare judges the samples and turns the judgment into the result.
func (r Runner) decideCompare(spec contract.AnalysisSpec, samples CompareSamples, res Result, canary, baseline string) (Result, *contract.Judgment, error) {
	metrics := make([]kayenta.Metric, 0, len(spec.Metrics))
	weights := map[string]float64{}
	for _, m := range spec.Metrics {
		metrics = append(metrics, kayenta.Metric{Name: m.Metric, Group: groupOf(m), Direction: kayenta.Direction(m.Direction),
			Tolerance: m.Tolerance, Critical: m.Critical, Canary: samples.Canary[m.Metric], Baseline: samples.Baseline[m.Metric]})
		weights[groupOf(m)] = m.Weight
	}
	j, err := kayenta.Judge(metrics, kayenta.Config{Weights: weights, Thresholds: thresholds(spec)})
	if err != nil {
		return res, nil, Permanent(err)
	}
	res.Message = JudgmentLine(j) + fmt.Sprintf(" (canary %s vs baseline %s, %d intervals)", canary, baseline, len(res.Measurements))
	switch j.Decision {
	case contract.JudgmentPass:
		res.Phase, res.Reason = PhaseSuccessful, ""
	case contract.JudgmentMarginal:
		res.Phase, res.Reason = PhaseInconclusive, ReasonJudgment
	case contract.JudgmentNoData:
		res.Phase, res.Reason = PhaseInconclusive, ReasonNoData
		res.Message += "; " + noDataAdvice(spec)
	default:
		res.Phase, res.Reason = PhaseFailed, ReasonJudgment
	}
	return res, &j, nil
}

// JudgmentLine says a judgment in one line: "judgment: score 50 (fail):
// p99 23.5% higher than the baseline (p=0.001), …", naming the metrics that
// did not pass, or its reason when all did.
func JudgmentLine(j contract.Judgment) string {
	var bad []string
	for _, m := range j.Metrics {
		if m.Verdict != contract.MetricPass {
			bad = append(bad, m.Name+" "+m.Reason)
		}
	}
	why := j.Reason
	if len(bad) > 0 {
		why = strings.Join(bad, "; ")
	}
	return fmt.Sprintf("judgment: score %.0f (%s): %s", j.Score, j.Decision, why)
}

// FormatChange writes a judgment's change of the medians' means as a
// percent ("+23.5%"), or "from 0" for a change from a zero baseline.
func FormatChange(c float64) string {
	if math.Abs(c) >= 1e9 {
		return "from 0"
	}
	if math.Abs(c) >= 10 {
		return fmt.Sprintf("%+.0f%%", c*100)
	}
	return fmt.Sprintf("%+.3g%%", c*100)
}
