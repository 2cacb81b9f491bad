package api

// The bodies of the API's requests, as clients send them (the OpenAPI document
// describes the same types). decode.go reads and validates them.

import (
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// StartRolloutRequest is the body of POST /v1/rollouts.
type StartRolloutRequest struct {
	Spec spec.Rollout `json:"spec"`
	// Image, when set, overrides the spec's image with this image ID.
	Image string `json:"image,omitempty"`
	// Bake is the bake spec when spec.image.bake names one: the API reads no spec
	// files, so it comes inline (its paths are on the server's host).
	Bake *spec.Bake `json:"bake,omitempty"`
}

// StartBakeRequest is the body of POST /v1/bakes.
type StartBakeRequest struct {
	// Spec is the bake spec; its paths are on the server's host, absolute or
	// relative to spec.dir.
	Spec spec.Bake `json:"spec"`
}

// PromoteRequest is the body of POST /v1/images/{id}/promote.
type PromoteRequest struct {
	Channel string `json:"channel"`
	Reason  string `json:"reason,omitempty"`
}

// RevokeRequest is the body of POST /v1/images/{id}/revoke.
type RevokeRequest struct {
	Reason  string `json:"reason"`
	Cascade bool   `json:"cascade,omitempty"`
	// Campaign, with cascade, starts a rebuild campaign of every service built
	// on the base channel that named the image: its rings, errorBudget and
	// override (name optional; services, select and image are the revoke's).
	Campaign *contract.CampaignSpec `json:"campaign,omitempty"`
	// Channel is the base channel to rebuild on (default: the one channel of
	// the image's service that named it).
	Channel string `json:"channel,omitempty"`
}

// DecisionRequest is the body of approve, abort, promote and rollback.
type DecisionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Schedules, pipelines and the reaper: the API reads no spec files, so a
// pipeline's bake and its stages' rollout specs come inline, as JSON.

// CreateScheduleRequest is the body of POST /v1/schedules, as `imago schedule
// create`: the bake it rebuilds (--bake), optionally the stages that roll each new
// image out (--then), and when it runs.
type CreateScheduleRequest struct {
	Name string `json:"name"`
	// Bake is the bake spec to rebuild; its paths are on the server's host,
	// absolute or relative to bake.dir.
	Bake *contract.Bake `json:"bake"`
	// Pipeline, when set, rolls each new image out through its stages in order.
	Pipeline *SchedulePipeline `json:"pipeline,omitempty"`
	Cron     string            `json:"cron,omitempty"`     // "0 3 * * *", @daily; or
	Every    string            `json:"every,omitempty"`    // a Go duration, e.g. 24h
	Timezone string            `json:"timezone,omitempty"` // IANA name for cron; default UTC
	Overlap  string            `json:"overlap,omitempty"`  // skip (default), buffer-one, buffer-all, cancel-other, allow-all
	Always   bool              `json:"always,omitempty"`
	Paused   bool              `json:"paused,omitempty"`
	Note     string            `json:"note,omitempty"`
}

// SchedulePipeline is what a schedule does with each new image (a pipeline file's
// stages, as --then reads them).
type SchedulePipeline struct {
	// OnBaseChange also runs the schedule when the channel of the bake's base image moves.
	OnBaseChange bool            `json:"onBaseChange,omitempty"`
	Stages       []PipelineStage `json:"stages"`
}

// PipelineStage is one environment of a pipeline, its rollout spec inline and
// without an image (the pipeline sets it).
type PipelineStage struct {
	Rollout  contract.Rollout      `json:"rollout"`
	Approval contract.ApprovalSpec `json:"approval"`
}

// PipelineRequest is a pipeline spec with its bake and rollout specs inline.
type PipelineRequest struct {
	Name string `json:"name"`
	// Bake is the bake spec (paths on the server, absolute or relative to
	// bake.dir); Image instead rolls out an existing image (id or channel).
	Bake         *contract.Bake     `json:"bake,omitempty"`
	Image        *contract.ImageRef `json:"image,omitempty"`
	OnBaseChange bool               `json:"onBaseChange,omitempty"`
	Stages       []PipelineStage    `json:"stages,omitempty"`
}

// StartPipelineRequest is the body of POST /v1/pipelines.
type StartPipelineRequest struct {
	Pipeline PipelineRequest `json:"pipeline"`
	// Always builds and rolls out even when nothing changed.
	Always bool `json:"always,omitempty"`
}

// ScheduleNoteRequest is the body of pause and unpause.
type ScheduleNoteRequest struct {
	Note string `json:"note,omitempty"`
}

// BackfillRequest is the body of POST /v1/schedules/{name}/backfill.
type BackfillRequest struct {
	From string `json:"from"` // RFC 3339
	To   string `json:"to"`   // RFC 3339
}

// DriftRequest is the body of POST /v1/drift.
type DriftRequest struct {
	// Service and Environment select what is checked; empty: everything.
	Service     string `json:"service,omitempty"`
	Environment string `json:"environment,omitempty"`
	// Repair starts a rollout of the live image, with the last rollout's spec,
	// for each drifted service and environment.
	Repair bool `json:"repair,omitempty"`
}

// ReaperRequest is the body of POST /v1/reaper.
type ReaperRequest struct {
	// Apply terminates the leaked fleets; without it the sweep only reports them.
	Apply bool `json:"apply,omitempty"`
	// Grace is how old an unreferenced fleet must be to count as leaked (a Go
	// duration; default 1h).
	Grace string `json:"grace,omitempty"`
}
