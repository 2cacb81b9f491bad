package contract

import "time"

// What clients read of imago's workflows: their results and progress (the
// answer to QueryProgress), people's decisions (the argument of every update),
// and the reaper's input and result.

// RolloutInput starts a rollout.
type RolloutInput struct {
	Spec Rollout `json:"spec"`
	// Bake is the loaded bake spec when Spec.Image.Bake names one: the rollout
	// bakes (or finds in the cache) its image first, as a child workflow.
	Bake      *Bake  `json:"bake,omitempty"`
	StartedBy string `json:"startedBy,omitempty"`
	// Action is "rollout", or "rollback" when this rollout returns to the
	// previous deployable image: the workflow finds it (PreviousImage), and
	// Spec.Image is what its starter expected.
	Action string `json:"action,omitempty"`
}

// BakeInput starts a bake.
type BakeInput struct {
	Spec      Bake   `json:"spec"`
	StartedBy string `json:"startedBy,omitempty"`
}

// PipelineInput starts a pipeline.
type PipelineInput struct {
	Spec Pipeline `json:"spec"`
	// Always builds and rolls out even when nothing changed (schedule --always).
	Always bool `json:"always,omitempty"`
	// Trigger is what started it: "manual", "schedule" or "base-change".
	Trigger   string `json:"trigger,omitempty"`
	StartedBy string `json:"startedBy,omitempty"`
}

// RolloutResult is what a successful rollout did.
type RolloutResult struct {
	ImageID        string   `json:"imageId"`
	FleetID        string   `json:"fleetId"`
	Instances      int      `json:"instances"`
	Decommissioned []string `json:"decommissioned,omitempty"`
	// BakeTime is what the bake time measured. A rollout that the bake time
	// rolled back ends with an error (ErrRolledBack) whose details are a
	// RolloutResult with the failed measurement here.
	BakeTime *BakeTimeResult `json:"bakeTime,omitempty"`
}

// BakeTimeResult is a bake time's analysis after cutover: how long it
// watched, what it counted, and, when it failed, the measurement that failed.
type BakeTimeResult struct {
	Analysis string         `json:"analysis"`
	Duration Duration       `json:"duration"`
	Phase    string         `json:"phase"` // the analysis' outcome: Successful or Failed
	Message  string         `json:"message,omitempty"`
	Counts   AnalysisCounts `json:"counts"`
	Failed   *Measurement   `json:"failed,omitempty"`
}

// RolloutProgress is the answer to the progress query: what a person watching a rollout
// wants to see.
type RolloutProgress struct {
	Story                     // phase, events, eventCount
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	ImageID     string        `json:"imageId"`
	Strategy    string        `json:"strategy"`
	StartedBy   string        `json:"startedBy,omitempty"`
	StartedAt   time.Time     `json:"startedAt"`
	NewFleet    string        `json:"newFleet,omitempty"`
	Instances   int           `json:"instances,omitempty"`
	OldFleets   []string      `json:"oldFleets,omitempty"`
	Weights     []FleetWeight `json:"weights,omitempty"`
	Step        string        `json:"step,omitempty"` // e.g. "3/5 setWeight 50"
	Approvals   []Approval    `json:"approvals,omitempty"`
	Gate        string        `json:"gate,omitempty"` // the gate an approve would release now
	Hold        *Hold         `json:"hold,omitempty"` // a deployment window or a freeze it waits for

	// RouteRules are the canary's header routes, mirror and stickiness while
	// they are on the route (until cutover, abort or rollback).
	RouteRules *RouteRules `json:"routeRules,omitempty"`

	// BaselineFleet is the canary's baseline fleet (strategy.baseline), from
	// the live image.
	BaselineFleet string `json:"baselineFleet,omitempty"`

	Analyses []AnalysisRun `json:"analyses,omitempty"`
	Error    string        `json:"error,omitempty"`
	// BakeTimeEnds is when the bake time (phase bake-time) ends, while it runs.
	BakeTimeEnds *time.Time `json:"bakeTimeEnds,omitempty"`

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
	AnalysisSource
	Counts       *AnalysisCounts `json:"counts,omitempty"`
	Measurements []Measurement   `json:"measurements,omitempty"`
	// BaselineFleetID and Judgment are a compare analysis' (see AnalysisResult).
	BaselineFleetID string    `json:"baselineFleetId,omitempty"`
	Judgment        *Judgment `json:"judgment,omitempty"`
}

// AnalysisRunning is the phase of an analysis that is still measuring.
const AnalysisRunning = "Running"

// FleetWeight is one fleet's share of traffic.
type FleetWeight struct {
	FleetID string `json:"fleetId"`
	Weight  int    `json:"weight"`
}

// Decision is who did what and why, as recorded in progress and the inventory.
type Decision struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

// DecisionInput is the argument of every update.
type DecisionInput struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// BakeResult is the image a bake produced, or found already built.
type BakeResult struct {
	ImageID     string `json:"imageId"`
	Cached      bool   `json:"cached"` // the catalog had an image with the same input digest
	InputDigest string `json:"inputDigest"`
	Channel     string `json:"channel"`
	Tested      bool   `json:"tested"`
}

// BakeProgress answers the progress query of a bake.
type BakeProgress struct {
	Story                 // phase, events, eventCount
	Service     string    `json:"service"`
	InputDigest string    `json:"inputDigest,omitempty"`
	ImageID     string    `json:"imageId,omitempty"`
	Cached      bool      `json:"cached"`
	LastLine    string    `json:"lastLine,omitempty"`
	Error       string    `json:"error,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
}

// PipelineResult is what a pipeline did.
type PipelineResult struct {
	ImageID string `json:"imageId"`
	// Built is true when the bake built a new image (not a cache hit).
	Built bool `json:"built"`
	// Skipped is true when nothing changed: the image was built before from the
	// same inputs and is live in every stage. Reason says so for the schedule's history.
	Skipped bool          `json:"skipped"`
	Reason  string        `json:"reason"`
	Stages  []StageStatus `json:"stages,omitempty"`
}

// StageStatus is one stage of a pipeline as the progress query shows it.
type StageStatus struct {
	Environment string     `json:"environment"`
	State       StageState `json:"state"`
	RolloutID   string     `json:"rolloutId,omitempty"`
	RunID       string     `json:"runId,omitempty"`
	Error       string     `json:"error,omitempty"`
	Approval    *Decision  `json:"approval,omitempty"`
}

// PipelineProgress answers a pipeline's progress query.
type PipelineProgress struct {
	Story                   // phase, events, eventCount
	Name      string        `json:"name"`
	Service   string        `json:"service"`
	Trigger   string        `json:"trigger,omitempty"`
	StartedBy string        `json:"startedBy,omitempty"`
	StartedAt time.Time     `json:"startedAt"`
	ImageID   string        `json:"imageId,omitempty"`
	Gate      string        `json:"gate,omitempty"` // the stage waiting for approval
	Stages    []StageStatus `json:"stages"`
	Error     string        `json:"error,omitempty"`
}

// DefaultReaperGrace is how old an unreferenced fleet must be before the reaper
// counts it as leaked: longer than any rollout takes to route to its new fleet.
const DefaultReaperGrace = time.Hour

// ReaperInput configures one sweep.
type ReaperInput struct {
	// Apply terminates the orphans; without it the sweep is a dry run that only
	// reports what it would terminate.
	Apply bool          `json:"apply,omitempty"`
	Grace time.Duration `json:"grace,omitempty"` // default DefaultReaperGrace
}

// ReaperResult is what a sweep found and did.
type ReaperResult struct {
	DryRun     bool              `json:"dryRun"`
	Found      FindOrphansResult `json:"found"`
	Terminated []string          `json:"terminated,omitempty"`
	Failed     map[string]string `json:"failed,omitempty"` // fleet → why it was not terminated
	Summary    string            `json:"summary"`
}
