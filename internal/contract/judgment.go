package contract

// A Judgment compares a canary fleet with a baseline fleet started at the same
// time from the live image, metric by metric, as Kayenta's judge does: each
// metric's two samples go through a Mann-Whitney U test, a metric whose
// difference is significant and larger than its tolerance in a harmful
// direction fails, and the share of passing metrics per group, weighted, is the
// score (0–100). It is an analysis activity's result, so it is in the rollout's
// history, `status -o json`, the API and the UI details.
type Judgment struct {
	Metrics []MetricJudgment `json:"metrics"`
	// Groups are the score of each metric group, in the order first named.
	Groups []GroupScore `json:"groups,omitempty"`
	// Score is the weighted mean of the groups' scores, 0–100; 0 when no metric
	// had data.
	Score float64 `json:"score"`
	// Decision is JudgmentPass (score ≥ pass threshold), JudgmentMarginal
	// (≥ marginal: a person decides, as an inconclusive analysis), JudgmentFail,
	// or JudgmentNoData when no metric had enough samples on both sides.
	Decision JudgmentDecision `json:"decision"`
	// Reason says in one sentence why: the score against the thresholds, or the
	// critical metric that failed.
	Reason string `json:"reason"`
}

// JudgmentDecision is what a judgment decides.
type JudgmentDecision string

// The decisions of a judgment.
const (
	JudgmentPass     JudgmentDecision = "pass"
	JudgmentMarginal JudgmentDecision = "marginal"
	JudgmentFail     JudgmentDecision = "fail"
	JudgmentNoData   JudgmentDecision = "nodata"
)

// MetricVerdict classifies one metric of a judgment.
type MetricVerdict string

// The verdicts of a metric: Kayenta's Pass, High, Low and NoData.
const (
	// MetricPass: no significant difference, or one within the tolerance, or
	// one in the direction that does not hurt.
	MetricPass MetricVerdict = "Pass"
	// MetricHigh: the canary is significantly higher than the baseline by more
	// than the tolerance, and higher hurts (direction increase or either).
	MetricHigh MetricVerdict = "High"
	// MetricLow: significantly lower by more than the tolerance, and lower
	// hurts (direction decrease or either).
	MetricLow MetricVerdict = "Low"
	// MetricNoData: too few samples on one side to test; never a pass.
	MetricNoData MetricVerdict = "NoData"
)

// MetricJudgment is one metric's comparison.
type MetricJudgment struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	// CanarySamples and BaselineSamples are how many values each side had.
	CanarySamples   int `json:"canarySamples"`
	BaselineSamples int `json:"baselineSamples"`
	// CanaryMedian and BaselineMedian are each side's median.
	CanaryMedian   float64 `json:"canaryMedian"`
	BaselineMedian float64 `json:"baselineMedian"`
	// Change is canary ÷ baseline − 1 of the medians (0.2 = 20 % higher);
	// ±1e9 stands for a change from a zero baseline median.
	Change float64 `json:"change"`
	// U is the Mann-Whitney U statistic of the canary's sample (ties count ½),
	// P the two-sided p-value (exact for small samples, the normal
	// approximation with tie and continuity correction for large ones).
	U        float64       `json:"u"`
	P        float64       `json:"p"`
	Verdict  MetricVerdict `json:"verdict"`
	Critical bool          `json:"critical,omitempty"`
	// Reason says why, in words: "23.5% higher than the baseline (p=0.0012)".
	Reason string `json:"reason"`
}

// GroupScore is one metric group's share of passing metrics, 0–100, and its
// weight in the judgment's score.
type GroupScore struct {
	Name   string  `json:"name"`
	Score  float64 `json:"score"`
	Weight float64 `json:"weight"`
}
