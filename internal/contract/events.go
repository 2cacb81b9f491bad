package contract

import (
	"fmt"
	"time"
)

// CloudEvents constants of imago's events.
const (
	EventSpecVersion     = "1.0"
	EventDataContentType = "application/json"
)

// Event types (CloudEvents type attribute).
const (
	EventRolloutPhase     = "dev.imago.rollout.phase"    // a rollout entered a phase (or moved on within it)
	EventRolloutFinished  = "dev.imago.rollout.finished" // a rollout ended: data.outcome says how
	EventBakePhase        = "dev.imago.bake.phase"
	EventBakeFinished     = "dev.imago.bake.finished"
	EventPipelinePhase    = "dev.imago.pipeline.phase"    // a pipeline entered a phase
	EventPipelineFinished = "dev.imago.pipeline.finished" // a pipeline ended; data.outcome says how
	EventCampaignPhase    = "dev.imago.campaign.phase"    // a campaign entered a phase (a ring, a halt)
	EventCampaignFinished = "dev.imago.campaign.finished" // a campaign ended; data.outcome says how
)

// Event is one CloudEvents 1.0 event. The workflows hand it to the publishing
// activity as this plain struct (its JSON is the structured mode's); Publish
// and Decode (package events) go through the CloudEvents SDK.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`     // <runId>/<seq>: unique per event, the same when redelivered
	Source          string    `json:"source"` // imago/<namespace>/<workflowId>
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"` // <service>/<environment> (a bake: <service>)
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            EventData `json:"data"`
}

// EventData is what happened, in imago's words.
type EventData struct {
	Service     string `json:"service"`
	Environment string `json:"environment,omitempty"`
	Image       string `json:"image,omitempty"`
	Phase       Phase  `json:"phase"`
	Message     string `json:"message,omitempty"`
	WorkflowID  string `json:"workflowId"`
	RunID       string `json:"runId"`
	Seq         int    `json:"seq"` // 1, 2, ... within the run
	Step        string `json:"step,omitempty"`
	Strategy    string `json:"strategy,omitempty"`
	Fleet       string `json:"fleet,omitempty"` // the new fleet
	InputDigest string `json:"inputDigest,omitempty"`
	StartedBy   string `json:"startedBy,omitempty"`
	Gate        string `json:"gate,omitempty"` // what an approve would release now (a rollout's phase events)
	// Outcome is set on *.finished events, as Outcome.MetricLabel writes it:
	// succeeded, failed, aborted, rolled_back, canceled (rollouts); succeeded,
	// cached, failed, canceled (bakes); succeeded, skipped, failed, aborted,
	// canceled (pipelines).
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// NewEvent makes an event of one workflow run: its ID is the run ID and seq, its
// source names the workflow.
func NewEvent(typ, namespace, subject string, seq int, t time.Time, data EventData) Event {
	data.Seq = seq
	return Event{
		SpecVersion:     EventSpecVersion,
		ID:              fmt.Sprintf("%s/%d", data.RunID, seq),
		Source:          EventSource(namespace, data.WorkflowID),
		Type:            typ,
		Subject:         subject,
		Time:            t.UTC(),
		DataContentType: EventDataContentType,
		Data:            data,
	}
}

// EventSource is the CloudEvents source of a workflow's events.
func EventSource(namespace, workflowID string) string {
	return "imago/" + namespace + "/" + workflowID
}
