package spec

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// A canary with a baseline and a compare analysis, as the README writes it,
// reads into what the analysis package runs: tolerances as fractions, the
// defaults filled in.
func TestACompareAnalysisReadsAsTheREADMEWritesIt(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
strategy:
  type: canary
  baseline: true
  steps: [{setWeight: 10}, {analysis: judge}]
analyses:
  judge:
    kind: compare
    provider: router
    interval: 30s
    metrics:
      - {metric: p99, direction: increase, tolerance: 10%}
      - {metric: errorRate, tolerance: 2.5%, group: errors, weight: 2, critical: true}
    pass: 80
    marginal: 60
`))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.True(t, r.Strategy.Baseline)
	s := r.Analyses["judge"].Spec()
	assert.Equal(t, contract.AnalysisCompare, s.Kind)
	assert.Equal(t, DefaultCompareCount, s.Count, "count defaults to 10 intervals")
	assert.Empty(t, s.Metric, "no top-level metric is filled in")
	assert.Equal(t, []contract.CompareMetricSpec{
		{Metric: "p99", Direction: "increase", Tolerance: 0.1, Weight: 1},
		{Metric: "errorRate", Direction: "increase", Tolerance: 0.025, Group: "errors", Weight: 2, Critical: true},
	}, s.Metrics)
	assert.Equal(t, 80.0, *s.Pass)
	assert.Equal(t, 60.0, *s.Marginal)
}

// Every problem of a baseline or a compare is named by field path and line.
func TestBaselineAndCompareProblemsNameTheFieldAndLine(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
strategy:
  type: canary
  steps: [{setWeight: 10}, {analysis: judge}]
analyses:
  judge:
    kind: compare
    provider: router
    interval: 5s
    count: 3
    max: 0.05
    metrics:
      - {metric: p99, tolerance: ten}
      - {metric: latency, direction: up}
      - {metric: errorRate, weight: 2, group: p99}
    pass: 40
    marginal: 60
  prom: {kind: compare, provider: prometheus, address: "http://prom:9090", query: up, metrics: [{metric: p50}]}
  other: {kind: diff, provider: router, max: 0.1}
verify: {analysis: judge}
`))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`strategy.steps[1].analysis: line 7: analysis judge is kind compare, which judges the canary against a baseline fleet: set strategy.baseline: true`,
		`analyses.judge.count: line 13: 3 is too few: kind compare needs at least 4 intervals`,
		`analyses.judge.max: line 14: is not used by kind compare`,
		`analyses.judge.metrics[0].tolerance: line 16: "ten" is not a percent; write it as 10%`,
		`analyses.judge.metrics[1].metric: line 17: "latency" is not a router metric`,
		`analyses.judge.metrics[1].direction: line 17: "up": want increase, decrease or either`,
		`analyses.judge.metrics[2].weight: line 18: 2: group p99 has weight 1 already`,
		`analyses.judge.marginal: line 20: 60 is above pass 40`,
		`analyses.prom.kind: line 21: compare reads the router's per-fleet counters of the canary and the baseline: use provider router, not "prometheus"`,
		`analyses.other.kind: line 22: "diff": want compare`,
		`verify.analysis: line 23: analysis judge is kind compare: its baseline fleet is gone after cutover`,
	} {
		assert.Contains(t, msg, want)
	}
}

// A baseline is a canary's; on another strategy it is refused.
func TestABaselineIsForTheCanaryStrategy(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
strategy: {type: rolling, baseline: true}
`))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	require.Len(t, es, 1, "%v", err)
	assert.Equal(t, "strategy.baseline", es[0].Field)
	assert.Equal(t, 5, es[0].Line)
	assert.Contains(t, err.Error(), "a baseline fleet is for the canary strategy, not rolling")
}

func TestToleranceIsAPercent(t *testing.T) {
	for in, want := range map[string]float64{"": 0.1, "10%": 0.1, "0%": 0, "2.5%": 0.025, " 150 %": 1.5} {
		got, err := contract.ParseTolerance(in)
		require.NoError(t, err, in)
		assert.InDelta(t, want, got, 1e-12, in)
	}
	for _, in := range []string{"10", "-5%", "x%", "NaN%"} {
		_, err := contract.ParseTolerance(in)
		assert.Error(t, err, in)
	}
}

// The README's baseline example is a valid spec.
func TestREADMEBaselineExampleIsValid(t *testing.T) {
	src, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(src), "\n### Canary with a baseline: statistical judgment\n")
	require.True(t, ok, "the README has the section")
	_, block, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok)
	block, _, _ = strings.Cut(block, "```")
	r, err := ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\n" + block))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.True(t, r.Strategy.Baseline)
	assert.Len(t, r.Analyses["judge"].Spec().Metrics, 2)
}
