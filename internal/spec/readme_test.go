package spec

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's Analysis example is a valid spec, and its queries ask for the
// router metrics and labels the README's metrics table lists (which
// internal/telemetry compares with a real scrape of the worker), with every
// label's value a template variable imago replaces.
func TestREADMEAnalysisExampleIsValidAndUsesTheRealMetrics(t *testing.T) {
	src, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(src)
	_, section, ok := strings.Cut(readme, "\n### Analysis\n")
	require.True(t, ok, "the README has an Analysis section")
	_, block, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok)
	block, _, _ = strings.Cut(block, "```")

	r, err := ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\n" +
		"strategy: {type: canary, steps: [{analysis: errors}, {analysis: p99}]}\n" + block))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	require.Len(t, r.Analyses, 2)

	// The metrics table's row of the router counters: metric names, then labels.
	row := regexp.MustCompile("(?m)^\\| (`imago_router_requests_total`.*)$").FindStringSubmatch(readme)
	require.NotNil(t, row, "the README's metrics table lists the router's metrics")
	cells := strings.Split(row[1], "|")
	code := regexp.MustCompile("`([a-z_]+)`")
	listed := map[string]bool{}
	for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
		listed[m[1]] = true
	}
	var labels []string
	for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
		labels = append(labels, m[1])
	}
	require.ElementsMatch(t, []string{"service", "environment", "fleet"}, labels)

	for name, a := range r.Analyses {
		metrics := regexp.MustCompile(`imago_router_[a-z_]+`).FindAllString(a.Query, -1)
		require.NotEmpty(t, metrics, "%s asks for a router metric", name)
		for _, m := range metrics {
			assert.True(t, listed[strings.TrimSuffix(m, "_bucket")], "%s: %s is not a metric the README lists", name, m)
		}
		matchers := regexp.MustCompile(`([a-z_]+)="([^"]*)"`).FindAllStringSubmatch(a.Query, -1)
		require.NotEmpty(t, matchers)
		for _, m := range matchers {
			assert.Contains(t, labels, m[1], "%s: label %s", name, m[1])
			assert.Equal(t, "{{"+m[1]+"}}", m[2], "%s: the %s label's value is its template variable", name, m[1])
		}
	}
}
