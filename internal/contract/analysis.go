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

// AnalysisSpec describes one analysis: what to measure, how often, and what passes.
type AnalysisSpec struct {
	// Provider is where measurements come from: router, prometheus or http.
	Provider string `json:"provider"`
	// Metric is, for provider router, one of errorRate, p50, p90, p95, p99
	// (latency in seconds). For the other providers it only names the value in
	// messages (optional).
	Metric string `json:"metric,omitempty"`
	// Max and Min are the success condition: a measurement passes when its value
	// is <= Max and >= Min (either may be left out, not both).
	Max *float64 `json:"max,omitempty"`
	Min *float64 `json:"min,omitempty"`
	// Interval is the time between measurements. For provider router it is also
	// the window each measurement covers, so it is required there.
	Interval time.Duration `json:"interval,omitempty"`
	// Count is the number of measurements that produce a result (errors do not
	// count); 0 means 1.
	Count int `json:"count,omitempty"`
	// FailureLimit is the number of failed measurements tolerated; one more
	// fails the analysis at once.
	FailureLimit int `json:"failureLimit,omitempty"`
	// ConsecutiveErrorLimit is the number of measurements in a row that could
	// not be taken (errors) tolerated; one more fails the analysis ("could not
	// measure"). 0 means 4; a negative value tolerates none.
	ConsecutiveErrorLimit int `json:"consecutiveErrorLimit,omitempty"`
	// InconclusiveLimit is the number of inconclusive measurements tolerated
	// (too little traffic, no data); one more ends the analysis Inconclusive.
	InconclusiveLimit int `json:"inconclusiveLimit,omitempty"`
	// MinRequests, for provider router: a window in which the fleet received
	// fewer requests is inconclusive. 0 means 10; a negative value means any
	// window with at least one request counts.
	MinRequests int `json:"minRequests,omitempty"`
	// Address (the Prometheus base URL, e.g. http://prometheus:9090) and Query
	// (PromQL returning one scalar or a one-series vector), for provider prometheus.
	Address string `json:"address,omitempty"`
	Query   string `json:"query,omitempty"`
	// URL answers JSON, and Field is the dotted path of a number in it
	// (data.errorRate, items.0.value; empty: the whole answer), for provider http.
	URL   string `json:"url,omitempty"`
	Field string `json:"field,omitempty"`
	// OnNoData says what a measurement without data counts as (no samples:
	// an empty vector, a NaN, a null, fewer than minRequests requests):
	// analysis.NoDataInconclusive (the default: the analysis ends Inconclusive and waits
	// for a person, as inconclusiveLimit says), analysis.NoDataFail or analysis.NoDataPass.
	OnNoData string `json:"onNoData,omitempty"`
	// Kind is "" or AnalysisCompare; Metrics (each with its Tolerance as a
	// fraction: 0.1 for 10%) and Pass/Marginal (nil: 75 and 50) are a
	// compare's.
	Kind     string              `json:"kind,omitempty"`
	Metrics  []CompareMetricSpec `json:"metrics,omitempty"`
	Pass     *float64            `json:"pass,omitempty"`
	Marginal *float64            `json:"marginal,omitempty"`
}

// CompareMetricSpec is a CompareMetric as the analysis package runs it.
type CompareMetricSpec struct {
	Metric    string  `json:"metric"`
	Direction string  `json:"direction"`
	Tolerance float64 `json:"tolerance"`
	Group     string  `json:"group,omitempty"`
	Weight    float64 `json:"weight,omitempty"`
	Critical  bool    `json:"critical,omitempty"`
}

// The input and result of the RunAnalysis activity (package analysis runs it).

// AnalysisInput runs one analysis against a fleet.
type AnalysisInput struct {
	// Name names the analysis in messages (the rollout spec's analyses key).
	Name string       `json:"name"`
	Spec AnalysisSpec `json:"spec"`
	// Key is the router of the service (provider router).
	Key RouteKey `json:"key"`
	// FleetID is the fleet under analysis. {{fleet}}, {{service}} and
	// {{environment}} in the spec's query, address and url are replaced by it
	// and by Key.
	FleetID string `json:"fleetId"`
	// BaselineFleetID is the baseline fleet a compare analysis judges
	// FleetID against.
	BaselineFleetID string `json:"baselineFleetId,omitempty"`
}

// AnalysisResult is the outcome of an analysis. Failed and Inconclusive are
// results, not activity errors: the workflow decides what they mean.
type AnalysisResult struct {
	Name    string `json:"name"`
	FleetID string `json:"fleetId,omitempty"`
	// Phase is analysis.PhaseSuccessful, PhaseFailed or PhaseInconclusive.
	Phase string `json:"phase"`
	// Reason is empty for Successful, else one of analysis.Reason*; Failed with
	// ReasonCouldNotMeasure means too many measurements in a row could
	// not be taken.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
	// Measurements are the latest analysis.KeptMeasurements measurements (the
	// history keeps no more); Counts count them all.
	Measurements []Measurement  `json:"measurements"`
	Counts       AnalysisCounts `json:"counts"`
	AnalysisSource
	// BaselineFleetID and Judgment are a compare analysis': the fleet the
	// canary was judged against, and the judgment once the samples are in.
	BaselineFleetID string    `json:"baselineFleetId,omitempty"`
	Judgment        *Judgment `json:"judgment,omitempty"`
}
