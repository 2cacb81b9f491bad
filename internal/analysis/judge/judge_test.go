package judge

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aclements/go-moremath/stats"

	"github.com/imago/imago/internal/contract"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The U statistic and two-sided p-value of one metric against published values.
func TestMannWhitneyAgainstPublishedValues(t *testing.T) {
	for _, tc := range []struct {
		name             string
		canary, baseline []float64
		u, p, pTol       float64
	}{
		// R, ?wilcox.test (Hollander & Wolfe 1973, p. 69): W = 35,
		// one-sided p-value 0.1272, so two-sided 0.2544 (exact, no ties).
		{"R wilcox.test, exact", []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46},
			[]float64{1.15, 0.88, 0.90, 0.74, 1.21}, 35, 0.2544, 0.0001},
		// SciPy's mannwhitneyu example (Shier 2004): males against females,
		// U = 17, two-sided exact p = 0.1111.
		{"SciPy mannwhitneyu, exact", []float64{19, 22, 16, 29, 24}, []float64{20, 11, 17, 12}, 17, 0.1111, 0.0001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Confidence 0.75 lets the small samples be tested at all.
			j, err := Judge([]Metric{{Name: "m", Direction: Either, Canary: tc.canary, Baseline: tc.baseline}}, Config{Confidence: 0.75})
			if err != nil {
				t.Fatal(err)
			}
			m := j.Metrics[0]
			if m.U != tc.u || !near(m.P, tc.p, tc.pTol) {
				t.Fatalf("U = %v, p = %v; published U = %v, p = %v", m.U, m.P, tc.u, tc.p)
			}
		})
	}
}

// Large samples take the normal approximation with tie and continuity
// correction: against DolphinDB's published mannWhitneyUTest value (ties, two
// samples of 5 and 6 forced onto the approximation) and against the formula
// worked by hand for two samples of 60.
func TestMannWhitneyNormalApproximation(t *testing.T) {
	defer func(l int) { stats.MannWhitneyTiesExactLimit = l }(stats.MannWhitneyTiesExactLimit)
	stats.MannWhitneyTiesExactLimit = 0
	r, err := stats.MannWhitneyUTest([]float64{5, 1, 4, 3, 5}, []float64{2, 4, 7, -1, 0, 4}, stats.LocationDiffers)
	if err != nil || !near(r.P, 0.518023, 0.000001) {
		t.Fatalf("DolphinDB's example: p = %v (%v), published 0.518023", r, err)
	}
	stats.MannWhitneyTiesExactLimit = 25

	// canary 31..90 against baseline 1..60: U counts the pairs where the
	// canary's value is larger, ties (31..60 on both sides) as ½; σ has the tie
	// correction Σ(t³−t) over the 30 tied pairs, and the continuity correction
	// moves U half a step towards the mean.
	var canary, baseline []float64
	for i := 1; i <= 60; i++ {
		baseline = append(baseline, float64(i))
		canary = append(canary, float64(i+30))
	}
	u := 0.0
	for _, c := range canary {
		for _, b := range baseline {
			switch {
			case c > b:
				u++
			case c == b:
				u += 0.5
			}
		}
	}
	const n, ties = 120.0, 30 * (2*2*2 - 2)
	mu, sigma := 60.0*60/2, math.Sqrt(60*60/12.0*((n+1)-ties/(n*(n-1))))
	z := (u - mu - 0.5) / sigma
	want := math.Erfc(z / math.Sqrt2) // two-sided: 2·(1 − Φ(z)) = erfc(z/√2)
	j, err := Judge([]Metric{{Name: "latency", Direction: Increase, Tolerance: 0.1, Canary: canary, Baseline: baseline}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	// The library takes 1 − Φ(z), which at p ≈ 1e-12 keeps ~4 digits.
	if m := j.Metrics[0]; m.U != u || !near(m.P, want, want*1e-3) {
		t.Fatalf("U = %v, p = %v; by hand U = %v, p = %v", m.U, m.P, u, want)
	}
}

// latencies is a deterministic sample of n request latencies around ms.
func latencies(seed uint64, n int, ms float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = ms * (0.8 + 0.4*r.Float64())
	}
	return out
}

func TestVerdicts(t *testing.T) {
	base := latencies(1, 200, 100)
	for _, tc := range []struct {
		name     string
		m        Metric
		want     contract.MetricVerdict
		decision contract.JudgmentDecision
		reason   string
	}{
		{"20% slower canary is High", Metric{Name: "latency", Direction: Increase, Tolerance: 0.1, Canary: latencies(2, 200, 120), Baseline: base},
			contract.MetricHigh, contract.JudgmentFail, "higher than the baseline"},
		{"canary within noise passes", Metric{Name: "latency", Direction: Increase, Tolerance: 0.1, Canary: latencies(3, 200, 100), Baseline: base},
			contract.MetricPass, contract.JudgmentPass, "not significant"},
		{"significant but within tolerance", Metric{Name: "latency", Direction: Increase, Tolerance: 0.1, Canary: latencies(4, 200, 105), Baseline: base},
			contract.MetricPass, contract.JudgmentPass, "within the 10% tolerated"},
		{"faster canary, only increases hurt", Metric{Name: "latency", Direction: Increase, Tolerance: 0.1, Canary: latencies(5, 200, 70), Baseline: base},
			contract.MetricPass, contract.JudgmentPass, "does not hurt"},
		{"lower throughput is Low", Metric{Name: "rps", Direction: Decrease, Tolerance: 0.1, Canary: latencies(6, 200, 70), Baseline: base},
			contract.MetricLow, contract.JudgmentFail, "lower than the baseline"},
		{"either direction", Metric{Name: "size", Direction: Either, Tolerance: 0.1, Canary: latencies(7, 200, 130), Baseline: base},
			contract.MetricHigh, contract.JudgmentFail, "higher"},
		{"errors from a zero baseline", Metric{Name: "errors", Direction: Increase, Tolerance: 0.1,
			Canary: append(make([]float64, 150), ones(50)...), Baseline: make([]float64, 200)},
			contract.MetricHigh, contract.JudgmentFail, "higher than a baseline of zero"},
		{"same values everywhere", Metric{Name: "errors", Direction: Increase, Canary: make([]float64, 50), Baseline: make([]float64, 50)},
			contract.MetricPass, contract.JudgmentPass, "every value is the same"},
		{"too few values is no data", Metric{Name: "latency", Direction: Increase, Canary: []float64{1, 2, 3}, Baseline: []float64{4, 5, 6}},
			contract.MetricNoData, contract.JudgmentNoData, "too few values"},
		{"no canary values", Metric{Name: "latency", Direction: Increase, Canary: []float64{math.NaN()}, Baseline: base},
			contract.MetricNoData, contract.JudgmentNoData, "no data: 0 canary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Judge([]Metric{tc.m}, Config{})
			if err != nil {
				t.Fatal(err)
			}
			m := j.Metrics[0]
			if m.Verdict != tc.want || j.Decision != tc.decision || !strings.Contains(m.Reason, tc.reason) {
				t.Fatalf("verdict %s (%s), decision %s (%s); want %s mentioning %q, decision %s",
					m.Verdict, m.Reason, j.Decision, j.Reason, tc.want, tc.reason, tc.decision)
			}
		})
	}
}

func ones(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// Groups weigh their share of passing metrics; critical metrics overrule.
func TestScore(t *testing.T) {
	base := latencies(1, 200, 100)
	good, slow := latencies(3, 200, 100), latencies(2, 200, 120)
	metrics := func(p99 []float64, critical bool) []Metric {
		return []Metric{
			{Name: "p50", Group: "latency", Direction: Increase, Tolerance: 0.1, Canary: good, Baseline: base},
			{Name: "p99", Group: "latency", Direction: Increase, Tolerance: 0.1, Canary: p99, Baseline: base, Critical: critical},
			{Name: "errors", Direction: Increase, Canary: make([]float64, 100), Baseline: make([]float64, 100)},
		}
	}
	weights := map[string]float64{"latency": 60, "errors": 40}
	for _, tc := range []struct {
		name     string
		ms       []Metric
		c        Config
		score    float64
		decision contract.JudgmentDecision
	}{
		{"all pass", metrics(good, false), Config{Weights: weights}, 100, contract.JudgmentPass},
		// latency 50 × 60 + errors 100 × 40 = 70: marginal at 75/50.
		{"one latency metric High", metrics(slow, false), Config{Weights: weights}, 70, contract.JudgmentMarginal},
		{"stricter marginal", metrics(slow, false), Config{Weights: weights, Thresholds: Thresholds{Pass: 90, Marginal: 80}}, 70, contract.JudgmentFail},
		// Equal weights: (50 + 100) / 2.
		{"equal weights", metrics(slow, false), Config{}, 75, contract.JudgmentPass},
		{"critical metric fails the judgment", metrics(slow, true), Config{}, 75, contract.JudgmentFail},
		{"critical metric without data", metrics(nil, true), Config{}, 75, contract.JudgmentMarginal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Judge(tc.ms, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if !near(j.Score, tc.score, 1e-9) || j.Decision != tc.decision {
				t.Fatalf("score %v, decision %s (%s); want %v, %s", j.Score, j.Decision, j.Reason, tc.score, tc.decision)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Metric{Name: "latency", Direction: Increase, Canary: []float64{1}, Baseline: []float64{1}}
	for _, tc := range []struct {
		ms   []Metric
		c    Config
		want string
	}{
		{nil, Config{}, "no metrics"},
		{[]Metric{{Name: "latency", Direction: "up"}}, Config{}, `direction "up"`},
		{[]Metric{{Name: "latency", Direction: Increase, Tolerance: -0.1}}, Config{}, "tolerance -0.1"},
		{[]Metric{ok}, Config{Weights: map[string]float64{"errors": 1}}, `group "latency" has no positive weight`},
		{[]Metric{ok}, Config{Thresholds: Thresholds{Pass: 50, Marginal: 75}}, "marginal ≤ pass"},
		{[]Metric{ok}, Config{Confidence: 95}, "confidence 95"},
	} {
		if _, err := Judge(tc.ms, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Judge(%v, %+v) = %v, want an error mentioning %q", tc.ms, tc.c, err, tc.want)
		}
	}
}
