package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
)

// Progress is the answer to the progress query: what a person watching a rollout
// wants to see.
type Progress struct {
	contract.Story               // phase, events, eventCount
	Service        string        `json:"service"`
	Environment    string        `json:"environment"`
	ImageID        string        `json:"imageId"`
	Strategy       string        `json:"strategy"`
	StartedBy      string        `json:"startedBy,omitempty"`
	StartedAt      time.Time     `json:"startedAt"`
	NewFleet       string        `json:"newFleet,omitempty"`
	Instances      int           `json:"instances,omitempty"`
	OldFleets      []string      `json:"oldFleets,omitempty"`
	Weights        []FleetWeight `json:"weights,omitempty"`
	Step           string        `json:"step,omitempty"` // e.g. "3/5 setWeight 50"
	Approvals      []Approval    `json:"approvals,omitempty"`
	Gate           string        `json:"gate,omitempty"` // the gate an approve would release now

	Analyses []AnalysisRun `json:"analyses,omitempty"`
	Error    string        `json:"error,omitempty"`

	// Action is "rollout", or "rollback" for a rollout back to the previous
	// deployable image; RollbackFrom is the image it replaces (ImageID the one
	// it rolls back to), once the rollback found it.
	Action       string `json:"action,omitempty"`
	RollbackFrom string `json:"rollbackFrom,omitempty"`
}

// Approval is a released gate: which one, who, why.
type Approval struct {
	Gate string `json:"gate"`
	Decision
}

// AnalysisRun is one analysis of the rollout: what it measures (the query as
// run, once), and, once it is done, its outcome, counts and latest
// measurements (analysis.KeptMeasurements of them, as its activity result keeps).
type AnalysisRun struct {
	Name string `json:"name"`
	// Phase is AnalysisRunning while it measures, then Successful, Failed or Inconclusive.
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
	FleetID string `json:"fleetId,omitempty"`
	analysis.AnalysisSource
	Counts       *analysis.Counts       `json:"counts,omitempty"`
	Measurements []analysis.Measurement `json:"measurements,omitempty"`
}

// AnalysisRunning is the phase of an analysis that is still measuring.
const AnalysisRunning = "Running"

// FleetWeight is one fleet's share of traffic.
type FleetWeight struct {
	FleetID string `json:"fleetId"`
	Weight  int    `json:"weight"`
}

// AnalysesMarkdown shows analyses as the Temporal web UI renders current
// details: per analysis its outcome, source and query, and a table of its
// latest measurements. Empty when there are none.
func AnalysesMarkdown(runs []AnalysisRun) string {
	var b strings.Builder
	for _, a := range runs {
		fmt.Fprintf(&b, "\n\n**Analysis %s** of %s: %s", a.Name, a.FleetID, a.Phase)
		if a.Message != "" {
			fmt.Fprintf(&b, " — %s", a.Message)
		}
		fmt.Fprintf(&b, "\n\n%s, %s; no data counts as %s", a.Source, a.Condition, a.OnNoData)
		if a.Query != "" {
			fmt.Fprintf(&b, "\n\n```promql\n%s\n```", a.Query)
		}
		if a.Counts != nil {
			fmt.Fprintf(&b, "\n\n%s", CountsText(*a.Counts, len(a.Measurements)))
		}
		if len(a.Measurements) == 0 {
			continue
		}
		b.WriteString("\n\n| time (UTC) | value | verdict | measurement |\n|---|---|---|---|")
		for _, m := range a.Measurements {
			fmt.Fprintf(&b, "\n| %s | %s | %s | %s |", m.Time.UTC().Format(time.TimeOnly), analysis.FormatValue(m.Value), Verdict(m),
				strings.ReplaceAll(m.Message, "|", `\|`))
		}
	}
	return b.String()
}

// Verdict is a measurement's phase, "no data" said apart.
func Verdict(m analysis.Measurement) string {
	if m.NoData {
		return m.Phase + " (no data)"
	}
	return m.Phase
}

// CountsText says how many measurements an analysis took and how many are shown:
// "12 measurements: 11 successful, 1 failed (2 without data); the latest 10 shown".
func CountsText(c analysis.Counts, shown int) string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{c.Successful, "successful"}, {c.Failed, "failed"}, {c.Inconclusive, "inconclusive"}, {c.Errors, "could not be taken"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	s := fmt.Sprintf("%d measurements", c.Total())
	if c.Total() == 1 {
		s = "1 measurement"
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	if c.NoData > 0 {
		s += fmt.Sprintf(" (%d without data)", c.NoData)
	}
	if shown < c.Total() {
		s += fmt.Sprintf("; the latest %d shown", shown)
	}
	return s
}
