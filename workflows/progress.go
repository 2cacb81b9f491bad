package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
)

// AnalysesMarkdown shows analyses as the Temporal web UI renders current
// details: per analysis its outcome, source and query, and a table of its
// latest measurements. Empty when there are none.
func AnalysesMarkdown(runs []contract.AnalysisRun) string {
	var b strings.Builder
	for _, a := range runs {
		fmt.Fprintf(&b, "\n\n**Analysis %s** of %s", a.Name, a.FleetID)
		if a.BaselineFleetID != "" {
			fmt.Fprintf(&b, " against baseline %s", a.BaselineFleetID)
		}
		fmt.Fprintf(&b, ": %s", a.Phase)
		if a.Message != "" {
			fmt.Fprintf(&b, " — %s", a.Message)
		}
		fmt.Fprintf(&b, "\n\n%s, %s; no data counts as %s", a.Source, a.Condition, a.OnNoData)
		if a.Query != "" {
			fmt.Fprintf(&b, "\n\n```promql\n%s\n```", a.Query)
		}
		if a.Counts != nil {
			fmt.Fprintf(&b, "\n\n%s", a.Counts.Text(len(a.Measurements)))
		}
		if j := a.Judgment; j != nil {
			fmt.Fprintf(&b, "\n\n%s\n\n| metric | canary median | baseline median | change | U | p | verdict |\n|---|---|---|---|---|---|---|", analysis.JudgmentLine(*j))
			for _, m := range j.Metrics {
				fmt.Fprintf(&b, "\n| %s | %s | %s | %s | %g | %.3g | %s |", m.Name, analysis.FormatValue(&m.CanaryMedian), analysis.FormatValue(&m.BaselineMedian),
					analysis.FormatChange(m.Change), m.U, m.P, m.Verdict)
			}
		}
		if len(a.Measurements) == 0 {
			continue
		}
		b.WriteString("\n\n| time (UTC) | value | verdict | measurement |\n|---|---|---|---|")
		for _, m := range a.Measurements {
			fmt.Fprintf(&b, "\n| %s | %s | %s | %s |", m.Time.UTC().Format(time.TimeOnly), analysis.FormatValue(m.Value), m.Verdict(),
				strings.ReplaceAll(m.Message, "|", `\|`))
		}
	}
	return b.String()
}
