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

// A final phase is its outcome's canonical form; other phases have no outcome.
func TestFinalPhasesAreOutcomes(t *testing.T) {
	for _, o := range Outcomes {
		if o == OutcomeCached {
			continue // a bake that succeeded from the cache: its phase is succeeded
		}
		got, ok := Phase(o).Outcome()
		if !ok || got != o {
			t.Errorf("Phase(%q).Outcome() = %q, %v; want %q", o, got, ok, o)
		}
	}
	for _, p := range []Phase{PhasePending, PhaseResolving, PhaseCanary, PhaseRollingBack, PhasePublishing, PhaseRollingOut} {
		if o, ok := p.Outcome(); ok {
			t.Errorf("phase %q is not final, but has outcome %q", p, o)
		}
	}
	if PhaseRolledBack != "rolled-back" || StageNotStarted != "not-started" || PhasePublishing != "publishing" {
		t.Error("a wire form changed: recorded histories and search attributes hold rolled-back, not-started and publishing")
	}
}
