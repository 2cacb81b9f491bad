package contract

import (
	"fmt"
	"strings"
	"time"
)

// What an analysis (package analysis) reports of its measurements, in the
// RunAnalysis activity's result and a rollout's progress (AnalysisRun).

// AnalysisSource says what an analysis measured and how it judged it, once,
// apart from the measurements (a Prometheus query is long).
type AnalysisSource struct {
	Provider string `json:"provider,omitempty"`
	Metric   string `json:"metric,omitempty"`
	// Condition is the success condition: "max 0.05".
	Condition string `json:"condition,omitempty"`
	// Source is where measurements came from (Spec.Source): the
	// router's counters, a Prometheus address, a URL (passwords hidden).
	Source string `json:"source,omitempty"`
	// Query is the Prometheus query as run ({{fleet}} and the others replaced).
	Query    string `json:"query,omitempty"`
	OnNoData string `json:"onNoData,omitempty"`
}

// Measurement is one measurement. Value is set when the measurement produced
// one (Successful and Failed ones, but for those without data; infinities are
// stored as ±MaxFloat64, so it always encodes as JSON); NoData marks a
// measurement without data, whatever onNoData made of it; Message says what was
// measured or why it could not be.
type Measurement struct {
	Time    time.Time `json:"time"`
	Value   *float64  `json:"value,omitempty"`
	Phase   string    `json:"phase"`
	NoData  bool      `json:"noData,omitempty"`
	Message string    `json:"message,omitempty"`
}

// AnalysisCounts are the measurements of an analysis by phase; NoData counts those
// without data, whatever phase onNoData gave them.
type AnalysisCounts struct {
	Successful   int `json:"successful"`
	Failed       int `json:"failed"`
	Inconclusive int `json:"inconclusive"`
	Errors       int `json:"errors"`
	NoData       int `json:"noData,omitempty"`
}

// Total is the number of measurements, errors included.
func (c AnalysisCounts) Total() int { return c.Successful + c.Failed + c.Inconclusive + c.Errors }

// Verdict is a measurement's phase, "no data" said apart.
func (m Measurement) Verdict() string {
	if m.NoData {
		return m.Phase + " (no data)"
	}
	return m.Phase
}

// Text says how many measurements an analysis took and how many are shown:
// "12 measurements: 11 successful, 1 failed (2 without data); the latest 10 shown".
func (c AnalysisCounts) Text(shown int) string {
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
