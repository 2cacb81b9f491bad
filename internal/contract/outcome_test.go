package contract

import "testing"

// Each outcome has one canonical form (inventory, phases) and one metric form
// (events, imago_*_total); they differ only for rolled-back, and both are on
// the wire already, so neither may change.
func TestOutcomeForms(t *testing.T) {
	want := map[Outcome][2]string{
		OutcomeSucceeded:  {"succeeded", "succeeded"},
		OutcomeFailed:     {"failed", "failed"},
		OutcomeAborted:    {"aborted", "aborted"},
		OutcomeRolledBack: {"rolled-back", "rolled_back"},
		OutcomeCanceled:   {"canceled", "canceled"},
		OutcomeCached:     {"cached", "cached"},
		OutcomeSkipped:    {"skipped", "skipped"},
	}
	if len(Outcomes) != len(want) {
		t.Fatalf("Outcomes has %d outcomes, the test knows %d", len(Outcomes), len(want))
	}
	for _, o := range Outcomes {
		w, ok := want[o]
		if !ok {
			t.Fatalf("outcome %q has no expected forms", o)
		}
		if o.String() != w[0] || o.MetricLabel() != w[1] {
			t.Errorf("outcome %q: String %q MetricLabel %q, want %q %q", o, o.String(), o.MetricLabel(), w[0], w[1])
		}
		back, ok := OutcomeFromMetricLabel(o.MetricLabel())
		if !ok || back != o {
			t.Errorf("OutcomeFromMetricLabel(%q) = %q, %v; want %q", o.MetricLabel(), back, ok, o)
		}
	}
	if o, ok := OutcomeFromMetricLabel("rolled-back"); ok {
		t.Errorf("OutcomeFromMetricLabel(rolled-back) = %q: the metric form is rolled_back", o)
	}
}
