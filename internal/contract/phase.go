package contract

// Phase is where a rollout, bake or pipeline is, as its progress query, its
// ImagoPhase search attribute and its phase events say it. Each phase has one
// string form, whichever workflow is in it ("resolving" for rollouts and
// pipelines alike); a final phase is the canonical form of its Outcome.
type Phase string

// Phases of every workflow.
const (
	PhasePending          Phase = "pending" // started, not yet running (the initial ImagoPhase)
	PhaseResolving        Phase = "resolving"
	PhaseAwaitingApproval Phase = "awaiting-approval"

	// Final phases: the outcomes' canonical forms.
	PhaseSucceeded  = Phase(OutcomeSucceeded)
	PhaseFailed     = Phase(OutcomeFailed)
	PhaseAborted    = Phase(OutcomeAborted)
	PhaseRolledBack = Phase(OutcomeRolledBack)
	PhaseCanceled   = Phase(OutcomeCanceled) // the workflow was cancelled (and undone, as after a failure)
	PhaseSkipped    = Phase(OutcomeSkipped)  // a pipeline with nothing to do
)

// Rollout phases.
const (
	PhaseProvisioning    Phase = "provisioning"
	PhaseWaitingHealthy  Phase = "waiting-healthy"
	PhaseValidating      Phase = "validating"
	PhaseCuttingOver     Phase = "cutting-over"
	PhaseCanary          Phase = "canary"
	PhaseRolling         Phase = "rolling"
	PhasePaused          Phase = "paused"
	PhaseAnalyzing       Phase = "analyzing"
	PhaseVerifying       Phase = "verifying"
	PhaseSoaking         Phase = "soaking"
	PhaseBakeTime        Phase = "bake-time" // the bake-time analysis watches the new fleet after cutover (not the pipelines' baking)
	PhaseRollingBack     Phase = "rolling-back"
	PhaseDecommissioning Phase = "decommissioning"
	// PhaseWaitingWindow: outside every deployment window of the spec, the
	// rollout waits for the next one (or an approve with a reason).
	PhaseWaitingWindow Phase = "waiting-window"
	// PhaseFrozen: a freeze (imago freeze start) holds the rollout before it
	// provisions or moves traffic, until the freeze ends.
	PhaseFrozen Phase = "frozen"
)

// Bake phases.
const (
	PhaseDigest     Phase = "digest"
	PhaseBuilding   Phase = "building"
	PhaseTesting    Phase = "testing"
	PhasePublishing Phase = "publishing"
)

// Pipeline phases.
const (
	PhaseBaking     Phase = "baking"
	PhaseRollingOut Phase = "rolling-out"
)

// Campaign phases (besides rolling-out, awaiting-approval and bake-time).
const (
	// PhaseHalted: the campaign's error budget is spent; it waits for resume or abort.
	PhaseHalted Phase = "halted"
)

// String is the phase's one form.
func (p Phase) String() string { return string(p) }

// Outcome is the outcome a final phase is the form of; ok is false for a phase
// that is not final.
func (p Phase) Outcome() (o Outcome, ok bool) {
	switch o := Outcome(p); o {
	case OutcomeSucceeded, OutcomeFailed, OutcomeAborted, OutcomeRolledBack, OutcomeCanceled, OutcomeSkipped:
		return o, true
	}
	return "", false
}

// StageState is the state of one stage of a pipeline.
type StageState string

// Stage states.
const (
	StagePending   StageState = "pending"
	StageWaiting   StageState = "awaiting-approval"
	StageRunning   StageState = "running"
	StageSucceeded StageState = "succeeded"
	StageUnchanged StageState = "unchanged" // the image was already live there
	StageFailed    StageState = "failed"
	// StageNotStarted: an earlier stage failed or the pipeline was aborted.
	// (Its Go name used to be StageSkipped; the wire form was always
	// "not-started", and stays so.)
	StageNotStarted StageState = "not-started"
	StageCanceled   StageState = "canceled" // the pipeline was cancelled while its rollout ran; the rollout undid itself
)
