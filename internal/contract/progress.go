package contract

import "time"

// Story is what the progress query of every workflow (rollout, bake,
// pipeline) shows of its course: the phase it is in and its latest events.
// Each progress type embeds it, so its JSON fields sit beside the others.
type Story struct {
	Phase      Phase           `json:"phase"`
	Events     []ProgressEvent `json:"events,omitempty"` // the latest MaxProgressEvents
	EventCount int             `json:"eventCount"`       // events so far, for followers
}

// ProgressEvent is one line of a workflow's story.
type ProgressEvent struct {
	Time    time.Time `json:"time"`
	Phase   Phase     `json:"phase"`
	Message string    `json:"message"`
}

// MaxProgressEvents bounds the events a Story keeps (and so the progress
// query's payload).
const MaxProgressEvents = 30
