// Package judge compares a canary with its baseline the way Spinnaker's Kayenta
// (NetflixACAJudge) does: for each metric a two-sided Mann-Whitney U test of the
// canary's sample against the baseline's, an effect size (the ratio of their
// means) against a tolerance in the direction that hurts, a verdict per metric
// (Pass, High, Low, NoData), and a score: the share of passing metrics in each
// group, weighted across groups, 0–100, decided against pass and marginal
// thresholds.
//
// The test itself is github.com/aclements/go-moremath/stats (the statistics
// behind golang.org/x/perf's benchstat): exact U distribution for small samples
// (with ties up to 25 values a side, without up to 50), the normal approximation
// with tie and continuity correction beyond.
//
// Judge is pure (no I/O, no clock), so it is deterministic and table-tested;
// collecting the samples is the analysis activity's job.
package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/aclements/go-moremath/stats"

	"github.com/imago/imago/internal/contract"
)

// Direction says which change of a metric hurts.
type Direction string

// The directions: latency and errors hurt when they increase, throughput or
// cache hits when they decrease.
const (
	Increase Direction = "increase"
	Decrease Direction = "decrease"
	Either   Direction = "either"
)

// Metric is one metric's samples from both fleets and how to judge them.
type Metric struct {
	Name string
	// Group is the metric's group for the score (default: its name).
	Group     string
	Direction Direction
	// Tolerance is how large a significant change may be before it fails, as
	// a fraction: 0.1 lets the canary's mean be up to 10 % worse.
	Tolerance float64
	// Critical fails the whole judgment when this metric fails, whatever the
	// score.
	Critical bool
	// Canary and Baseline are the samples (per request or per interval);
	// NaN and infinite values are left out.
	Canary, Baseline []float64
}

// Thresholds decide a score: at least Pass passes, at least Marginal asks a
// person, less fails.
type Thresholds struct {
	Pass     float64
	Marginal float64
}

// DefaultThresholds are Kayenta's usual ones.
var DefaultThresholds = Thresholds{Pass: 75, Marginal: 50}

// Config is how a judgment weighs and decides.
type Config struct {
	// Weights weigh the groups' scores. Empty: every group weighs the same.
	// Otherwise every group a metric names must have a positive weight.
	Weights    map[string]float64
	Thresholds Thresholds // zero: DefaultThresholds
	// Confidence is the level at which a difference counts as significant
	// (default 0.95: p < 0.05).
	Confidence float64
}

// Judge judges metrics. It fails only on a configuration that cannot be
// judged (no metric, a bad direction, tolerance, weight or threshold), naming
// what is wrong.
func Judge(metrics []Metric, c Config) (contract.Judgment, error) {
	if err := c.check(metrics); err != nil {
		return contract.Judgment{}, err
	}
	th := c.Thresholds
	if th == (Thresholds{}) {
		th = DefaultThresholds
	}
	alpha := 1 - c.Confidence
	if c.Confidence == 0 {
		alpha = 0.05
	}
	var j contract.Judgment
	for _, m := range metrics {
		j.Metrics = append(j.Metrics, judgeMetric(m, alpha))
	}
	j.Groups = groupScores(j.Metrics, c.Weights)
	j.Score = weighted(j.Groups)
	j.Decision, j.Reason = decide(j, th)
	return j, nil
}

func (c Config) check(metrics []Metric) error {
	if len(metrics) == 0 {
		return errors.New("judge: no metrics to compare")
	}
	if c.Confidence != 0 && (c.Confidence <= 0.5 || c.Confidence >= 1) {
		return fmt.Errorf("judge: confidence %v: want a level between 0.5 and 1, such as 0.95", c.Confidence)
	}
	if th := c.Thresholds; th != (Thresholds{}) && (th.Marginal < 0 || th.Pass > 100 || th.Marginal > th.Pass) {
		return fmt.Errorf("judge: thresholds pass %v, marginal %v: want 0 ≤ marginal ≤ pass ≤ 100", th.Pass, th.Marginal)
	}
	for _, m := range metrics {
		switch m.Direction {
		case Increase, Decrease, Either:
		default:
			return fmt.Errorf("judge: metric %s: direction %q: want increase, decrease or either", m.Name, m.Direction)
		}
		if m.Tolerance < 0 || math.IsNaN(m.Tolerance) || math.IsInf(m.Tolerance, 0) {
			return fmt.Errorf("judge: metric %s: tolerance %v: want a fraction ≥ 0, such as 0.1 for 10%%", m.Name, m.Tolerance)
		}
		if len(c.Weights) > 0 {
			if w, ok := c.Weights[groupOf(m)]; !ok || !(w > 0) || math.IsInf(w, 0) {
				return fmt.Errorf("judge: metric %s: group %q has no positive weight", m.Name, groupOf(m))
			}
		}
	}
	return nil
}

func groupOf(m Metric) string {
	if m.Group != "" {
		return m.Group
	}
	return m.Name
}

// judgeMetric tests one metric.
func judgeMetric(m Metric, alpha float64) contract.MetricJudgment {
	canary, baseline := finite(m.Canary), finite(m.Baseline)
	r := contract.MetricJudgment{
		Name: m.Name, Group: groupOf(m), Critical: m.Critical,
		CanarySamples: len(canary), BaselineSamples: len(baseline),
	}
	if len(canary) == 0 || len(baseline) == 0 {
		r.Verdict, r.Reason = contract.MetricNoData, fmt.Sprintf("no data: %d canary and %d baseline values", len(canary), len(baseline))
		return r
	}
	r.CanaryMedian, r.BaselineMedian = median(canary), median(baseline)
	r.Change = change(stats.Mean(canary), stats.Mean(baseline))
	// The smallest two-sided p-value the exact test can give is
	// 2 / C(n1+n2, n1): with fewer values no difference can be significant,
	// which is missing data, not a pass.
	if minP := 2 / binomial(len(canary)+len(baseline), len(canary)); minP >= alpha {
		r.Verdict = contract.MetricNoData
		r.Reason = fmt.Sprintf("too few values to tell a difference (%d canary, %d baseline; the smallest p-value possible is %.3g)",
			len(canary), len(baseline), minP)
		return r
	}
	res, err := stats.MannWhitneyUTest(canary, baseline, stats.LocationDiffers)
	if errors.Is(err, stats.ErrSamplesEqual) {
		// Every value on both sides is the same: no difference at all.
		r.U, r.P = float64(len(canary)*len(baseline))/2, 1
		r.Verdict, r.Reason = contract.MetricPass, "no difference: every value is the same on both sides"
		return r
	}
	if err != nil {
		r.Verdict, r.Reason = contract.MetricNoData, err.Error()
		return r
	}
	r.U, r.P = res.U, res.P
	r.Verdict, r.Reason = classify(m, r.Change, r.P, alpha)
	return r
}

// classify turns a change and its p-value into a verdict.
func classify(m Metric, change, p, alpha float64) (contract.MetricVerdict, string) {
	how := describe(change)
	if p >= alpha {
		return contract.MetricPass, fmt.Sprintf("%s, not significant (p=%.3g)", how, p)
	}
	switch {
	case change > m.Tolerance && m.Direction != Decrease:
		return contract.MetricHigh, fmt.Sprintf("%s (p=%.3g), more than the %s tolerated", how, p, percent(m.Tolerance))
	case change < -m.Tolerance && m.Direction != Increase:
		return contract.MetricLow, fmt.Sprintf("%s (p=%.3g), more than the %s tolerated", how, p, percent(m.Tolerance))
	case math.Abs(change) > m.Tolerance:
		return contract.MetricPass, fmt.Sprintf("%s (p=%.3g), in the direction that does not hurt", how, p)
	}
	return contract.MetricPass, fmt.Sprintf("%s (p=%.3g), within the %s tolerated", how, p, percent(m.Tolerance))
}

// fromZero stands for a change from a zero baseline mean (JSON has no ±Inf).
const fromZero = 1e9

func change(canary, baseline float64) float64 {
	switch {
	case baseline != 0:
		return canary/math.Abs(baseline) - math.Copysign(1, baseline)
	case canary > 0:
		return fromZero
	case canary < 0:
		return -fromZero
	}
	return 0
}

func describe(change float64) string {
	switch {
	case change >= fromZero:
		return "higher than a baseline of zero"
	case change <= -fromZero:
		return "lower than a baseline of zero"
	case change > 0:
		return fmt.Sprintf("%s higher than the baseline", percent(change))
	case change < 0:
		return fmt.Sprintf("%s lower than the baseline", percent(-change))
	}
	return "the same as the baseline"
}

func percent(f float64) string {
	if p := f * 100; math.Abs(p) >= 1000 {
		return fmt.Sprintf("%.0f%%", p) // 6820%, not 6.82e+03%
	}
	return fmt.Sprintf("%.3g%%", f*100)
}

// groupScores is each group's share of passing metrics, 0–100, in the order
// the groups are first named. NoData counts as not passing.
func groupScores(ms []contract.MetricJudgment, weights map[string]float64) []contract.GroupScore {
	var order []string
	pass, total := map[string]int{}, map[string]int{}
	for _, m := range ms {
		if total[m.Group] == 0 {
			order = append(order, m.Group)
		}
		total[m.Group]++
		if m.Verdict == contract.MetricPass {
			pass[m.Group]++
		}
	}
	out := make([]contract.GroupScore, 0, len(order))
	for _, g := range order {
		w := 1.0
		if len(weights) > 0 {
			w = weights[g]
		}
		out = append(out, contract.GroupScore{Name: g, Score: 100 * float64(pass[g]) / float64(total[g]), Weight: w})
	}
	return out
}

func weighted(gs []contract.GroupScore) float64 {
	var sum, weights float64
	for _, g := range gs {
		sum += g.Score * g.Weight
		weights += g.Weight
	}
	return sum / weights
}

// decide turns a scored judgment into its decision and reason.
func decide(j contract.Judgment, th Thresholds) (contract.JudgmentDecision, string) {
	var noData, criticalNoData []string
	for _, m := range j.Metrics {
		if m.Verdict == contract.MetricNoData {
			noData = append(noData, m.Name)
			if m.Critical {
				criticalNoData = append(criticalNoData, m.Name)
			}
		}
		if m.Critical && (m.Verdict == contract.MetricHigh || m.Verdict == contract.MetricLow) {
			return contract.JudgmentFail, fmt.Sprintf("critical metric %s failed: %s", m.Name, m.Reason)
		}
	}
	if len(noData) == len(j.Metrics) {
		return contract.JudgmentNoData, "no metric had enough data on both fleets: " + noData[0] + ": " + j.Metrics[0].Reason
	}
	score := fmt.Sprintf("score %.0f", j.Score)
	switch {
	case j.Score >= th.Pass && len(criticalNoData) > 0:
		return contract.JudgmentMarginal, fmt.Sprintf("%s ≥ %v, but critical metric %s has no data", score, th.Pass, criticalNoData[0])
	case j.Score >= th.Pass:
		return contract.JudgmentPass, fmt.Sprintf("%s ≥ pass %v", score, th.Pass)
	case j.Score >= th.Marginal:
		return contract.JudgmentMarginal, fmt.Sprintf("%s: below pass %v, at least marginal %v", score, th.Pass, th.Marginal)
	}
	return contract.JudgmentFail, fmt.Sprintf("%s < marginal %v", score, th.Marginal)
}

func finite(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// binomial is C(n, k) as a float (it only needs to be compared with 2/alpha).
func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}
