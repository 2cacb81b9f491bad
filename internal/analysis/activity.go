package analysis

import "github.com/imago/imago/internal/contract"

// The inputs and results of the RunAnalysis activity. They live here, not in
// package contract, because they carry a Spec; package workflows imports this
// package (no AWS SDK, no gocloud) to call RunAnalysis by its name.

// AnalysisInput runs one analysis against a fleet.
type AnalysisInput struct {
	// Name names the analysis in messages (the rollout spec's analyses key).
	Name string `json:"name"`
	Spec Spec   `json:"spec"`
	// Key is the router of the service (provider router).
	Key contract.RouteKey `json:"key"`
	// FleetID is the fleet under analysis. {{fleet}}, {{service}} and
	// {{environment}} in the spec's query, address and url are replaced by it
	// and by Key.
	FleetID string `json:"fleetId"`
}

// AnalysisResult is the outcome of an analysis. Failed and Inconclusive are
// results, not activity errors: the workflow decides what they mean.
type AnalysisResult struct {
	Name    string `json:"name"`
	FleetID string `json:"fleetId,omitempty"`
	// Phase is PhaseSuccessful, PhaseFailed or PhaseInconclusive.
	Phase string `json:"phase"`
	// Reason is empty for Successful, else one of Reason*; Failed with
	// ReasonCouldNotMeasure means too many measurements in a row could
	// not be taken.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
	// Measurements are the latest KeptMeasurements measurements (the
	// history keeps no more); Counts count them all.
	Measurements []contract.Measurement  `json:"measurements"`
	Counts       contract.AnalysisCounts `json:"counts"`
	contract.AnalysisSource
}

// AnalysisProgress is the heartbeat of RunAnalysis: the measurements taken so
// far. A retried attempt goes on from them (they count).
type AnalysisProgress struct {
	Measurements []contract.Measurement `json:"measurements"`
}

// SourceOf describes the analysis spec s, expanded for fleetID and key as
// RunAnalysis runs it.
func SourceOf(s Spec, key contract.RouteKey, fleetID string) contract.AnalysisSource {
	s = s.Expand(AnalysisVars(key, fleetID))
	onNoData := s.OnNoData
	if onNoData == "" {
		onNoData = NoDataInconclusive
	}
	return contract.AnalysisSource{Provider: s.Provider, Metric: s.Metric, Condition: s.Condition(), Source: s.Source(), Query: s.Query, OnNoData: onNoData}
}

// AnalysisVars are the values of the template variables of an analysis' query,
// address and url: {{fleet}}, {{service}}, {{environment}}.
func AnalysisVars(key contract.RouteKey, fleetID string) map[string]string {
	return map[string]string{"fleet": fleetID, "service": key.Service, "environment": key.Environment}
}
