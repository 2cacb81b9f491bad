package contract

// Outcome is how a rollout, rollback, bake or pipeline ended. Its string form
// is the one the inventory (Deployment.Outcome), the workflows' final phases
// and search attributes hold: "rolled-back" with a hyphen, like every phase.
//
// Events and metrics say "rolled_back" instead (Outcome.MetricLabel): both
// forms were on the wire before this type existed (deployments recorded in
// the inventory and recorded workflow histories hold "rolled-back"; CloudEvent
// consumers and Prometheus series hold "rolled_back"), and changing either
// would break what already reads them. Code compares Outcome values, never
// strings, so the two forms cannot disagree again.
type Outcome string

// Outcomes.
const (
	OutcomeSucceeded  Outcome = "succeeded"   // the image took the traffic and kept it; the bake or pipeline finished
	OutcomeFailed     Outcome = "failed"      // it never took the traffic; the previous image kept serving
	OutcomeAborted    Outcome = "aborted"     // stopped by a person; the previous image kept serving
	OutcomeRolledBack Outcome = "rolled-back" // it took the traffic, then handed it back to the previous image
	OutcomeCanceled   Outcome = "canceled"    // its workflow was cancelled; undone as after a failure
	OutcomeCached     Outcome = "cached"      // a bake that found its image in the catalog
	OutcomeSkipped    Outcome = "skipped"     // a pipeline with nothing to do
)

// Outcomes lists every outcome, in declaration order.
var Outcomes = []Outcome{OutcomeSucceeded, OutcomeFailed, OutcomeAborted, OutcomeRolledBack,
	OutcomeCanceled, OutcomeCached, OutcomeSkipped}

// String is the outcome's canonical (inventory, phase) form.
func (o Outcome) String() string { return string(o) }

// MetricLabel is the outcome's form in finished CloudEvents (data.outcome) and
// in the outcome label of the imago_*_total metrics: "rolled_back" for
// OutcomeRolledBack, the canonical form for the others. See Outcome for why
// both forms exist.
func (o Outcome) MetricLabel() string {
	if o == OutcomeRolledBack {
		return "rolled_back"
	}
	return string(o)
}

// OutcomeFromMetricLabel is the outcome whose MetricLabel is label (an event's
// data.outcome); ok is false for a label no outcome has.
func OutcomeFromMetricLabel(label string) (o Outcome, ok bool) {
	for _, o := range Outcomes {
		if o.MetricLabel() == label {
			return o, true
		}
	}
	return "", false
}
