package analysis

import "github.com/imago/imago/internal/contract"

// AnalysisProgress is the heartbeat of RunAnalysis: the measurements taken so
// far. A retried attempt goes on from them (they count).
type AnalysisProgress struct {
	Measurements []contract.Measurement `json:"measurements"`
	// Samples are a compare's values so far.
	Samples *CompareSamples `json:"samples,omitempty"`
}

// SourceOf describes the analysis spec s, expanded for fleetID and key as
// RunAnalysis runs it.
func SourceOf(s contract.AnalysisSpec, key contract.RouteKey, fleetID string) contract.AnalysisSource {
	s = Expand(s, AnalysisVars(key, fleetID))
	onNoData := s.OnNoData
	if onNoData == "" {
		onNoData = NoDataInconclusive
	}
	return contract.AnalysisSource{Provider: s.Provider, Metric: s.Metric, Condition: Condition(s), Source: Source(s), Query: s.Query, OnNoData: onNoData}
}

// AnalysisVars are the values of the template variables of an analysis' query,
// address and url: {{fleet}}, {{service}}, {{environment}}.
func AnalysisVars(key contract.RouteKey, fleetID string) map[string]string {
	return map[string]string{"fleet": fleetID, "service": key.Service, "environment": key.Environment}
}
