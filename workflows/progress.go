package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"
)

// Progress is the answer to the progress query: what a person watching a rollout
// wants to see.
type Progress struct {
	Phase       string        `json:"phase"`
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
	Events      []Event       `json:"events,omitempty"` // the latest maxEvents
	EventCount  int           `json:"eventCount"`       // events so far, for followers
	Step        string        `json:"step,omitempty"`   // e.g. "3/5 setWeight 50"
	Approvals   []Approval    `json:"approvals,omitempty"`
	Gate        string        `json:"gate,omitempty"` // the gate an approve would release now

	Analyses []AnalysisRun `json:"analyses,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Approval is a released gate: which one, who, why.
type Approval struct {
	Gate string `json:"gate"`
	Decision
}

// AnalysisRun is the outcome of one analysis.
type AnalysisRun struct {
	Name    string `json:"name"`
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
}

// FleetWeight is one fleet's share of traffic.
type FleetWeight struct {
	FleetID string `json:"fleetId"`
	Weight  int    `json:"weight"`
}

// Event is one line of a rollout's story.
type Event struct {
	Time    time.Time `json:"time"`
	Phase   string    `json:"phase"`
	Message string    `json:"message"`
}

// maxEvents bounds the events kept for the query (and so the query's payload).
const maxEvents = 30

// setPhase moves to a new phase: progress, the ImagoPhase search attribute, the
// UI's current details, and an event on IMAGO_EVENTS_URL (see events.go).
func (r *rollout) setPhase(ctx workflow.Context, phase, msg string) {
	r.progress.Phase = phase
	r.event(ctx, msg)
	r.events.announce(ctx, phase, msg)
	r.publishPhase(ctx, msg)
}

func (r *rollout) event(ctx workflow.Context, msg string) {
	r.progress.Events = appendEvent(ctx, r.progress.Events, &r.progress.EventCount, r.progress.Phase, msg)
}

// announce shows a workflow's new phase: the ImagoPhase search attribute (in a
// run that began after phaseAttrOnChange, only when the phase changed: each
// upsert is a history event) and the web UI's current details.
func (n *notifier) announce(ctx workflow.Context, phase, msg string) {
	if !n.attrOnChange || phase != n.attr {
		if err := workflow.UpsertTypedSearchAttributes(ctx, PhaseAttr.ValueSet(phase)); err != nil {
			workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		}
		n.attr = phase
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** — %s", phase, msg))
}

// appendEvent adds one line to a workflow's story (and its log), keeping the
// latest maxEvents; count counts them all, for followers.
func appendEvent(ctx workflow.Context, events []Event, count *int, phase, msg string) []Event {
	*count++
	events = append(events, Event{Time: workflow.Now(ctx), Phase: phase, Message: msg})
	if n := len(events); n > maxEvents {
		events = events[n-maxEvents:]
	}
	workflow.GetLogger(ctx).Info(msg, "phase", phase)
	return events
}
