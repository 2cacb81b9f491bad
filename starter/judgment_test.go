package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// A compare analysis shows, under its outcome, the judgment's line and a
// row per metric: both medians with their sample counts, the change, U, p and
// the verdict.
func TestRolloutStatusShowsACompareJudgment(t *testing.T) {
	j := &contract.Judgment{Score: 33.3, Decision: contract.JudgmentFail, Reason: "score 33 < marginal 50", Metrics: []contract.MetricJudgment{
		{Name: "p50", CanarySamples: 6, BaselineSamples: 6, CanaryMedian: 0.0375, BaselineMedian: 0.0005, Change: 68.2, U: 36, P: 0.00216,
			Verdict: contract.MetricHigh, Reason: "6820% higher than the baseline (p=0.00216), more than the 100% tolerated"},
		{Name: "errorRate", CanarySamples: 6, BaselineSamples: 6, U: 18, P: 1, Verdict: contract.MetricPass, Reason: "no difference: every value is the same on both sides"},
	}}
	var b strings.Builder
	require.NoError(t, printAnalyses(&b, []contract.AnalysisRun{{Name: "judge", FleetID: "fl-canary", BaselineFleetID: "fl-base", Phase: "Failed",
		Message: "judgment: score 33 (fail): p50 6820% higher than the baseline (p=0.00216), more than the 100% tolerated", Judgment: j}}))
	out := b.String()
	assert.Contains(t, out, "  judge of fl-canary against baseline fl-base: Failed — judgment: score 33 (fail): p50 6820% higher")
	assert.Contains(t, out, "\n    judgment: score 33 (fail): p50 6820% higher than the baseline (p=0.00216), more than the 100% tolerated\n")
	assert.Regexp(t, `\n    METRIC\s+CANARY\s+BASELINE\s+CHANGE\s+U\s+P\s+VERDICT\n`, out)
	assert.Regexp(t, `\n    p50\s+0\.0375 \(6\)\s+0\.0005 \(6\)\s+\+6820%\s+36\s+0\.00216\s+High\n`, out)
	assert.Regexp(t, `\n    errorRate\s+0 \(6\)\s+0 \(6\)\s+\+0%\s+18\s+1\s+Pass\n`, out)
}
