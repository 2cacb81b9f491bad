// Package api is imago's REST API (`imago serve`): JSON under /v1 over the same
// internal packages the CLI uses (rollouts, bakes, catalog, spec), bearer-token
// auth, RFC 9457 problem details on every error, server-sent events for a
// rollout's progress and an OpenAPI document at /v1/openapi.json.
//
// This file holds the request decoding: what a client sends is read here, bounded
// in size, with unknown fields refused and every spec problem reported with its
// field path in the request body (spec.fleet.size).
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/imago/imago/internal/schedules"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

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
}

// DecisionRequest is the body of approve, abort, promote and rollback.
type DecisionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// DecodeStartRollout reads and validates a start-rollout request. A body that is
// not one JSON object, is larger than MaxBodyBytes, has unknown fields or an
// invalid spec is an error that says what is wrong; the spec comes back defaulted.
func DecodeStartRollout(r io.Reader, roots spec.BakeRoots) (StartRolloutRequest, error) {
	var req StartRolloutRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if req.Image != "" {
		req.Spec.Image = spec.ImageRef{ID: req.Image}
	}
	es := prefixed("spec.", req.Spec.Normalize())
	switch {
	case req.Spec.Image.Bake != "" && req.Bake == nil:
		es = append(es, spec.FieldError{Field: "bake", Msg: fmt.Sprintf(
			"is required when spec.image.bake is set (%q): the API reads no spec files, so send the bake spec inline as \"bake\" beside \"spec\"", req.Spec.Image.Bake)})
	case req.Spec.Image.Bake == "" && req.Bake != nil:
		es = append(es, spec.FieldError{Field: "bake", Msg: "is only used with spec.image.bake; set spec.image.bake (a label such as bake.yaml) or leave bake out"})
	case req.Bake != nil:
		es = append(es, normalizeBake("bake.", req.Bake, roots)...)
	}
	if len(es) > 0 {
		return req, es
	}
	return req, nil
}

// DecodeStartBake reads and validates a start-bake request; the spec comes back
// defaulted, with absolute paths, each in one of roots.
func DecodeStartBake(r io.Reader, roots spec.BakeRoots) (StartBakeRequest, error) {
	var req StartBakeRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if es := normalizeBake("spec.", &req.Spec, roots); len(es) > 0 {
		return req, es
	}
	return req, nil
}

// normalizeBake defaults and validates b, whose field paths start with prefix. A
// relative path needs dir, the directory on the server it is relative to. Every
// path must lie in roots (IMAGO_BAKE_ROOTS): for a path outside them the fence's
// refusal replaces what validation would say, which would tell whether it exists.
func normalizeBake(prefix string, b *spec.Bake, roots spec.BakeRoots) spec.Errors {
	var es spec.Errors
	add := func(field, format string, args ...any) {
		es = append(es, spec.FieldError{Field: prefix + field, Msg: fmt.Sprintf(format, args...)})
	}
	if b.Dir != "" && !filepath.IsAbs(b.Dir) {
		add("dir", "%q must be an absolute directory on the server", b.Dir)
	}
	if b.Dir == "" {
		relative := func(field, p string) {
			if p != "" && !filepath.IsAbs(p) {
				add(field, "%q is relative: make it absolute, or set %sdir to the directory on the server it is relative to", p, prefix)
			}
		}
		relative("source", b.Source)
		relative("template", b.Template)
		for i, f := range b.Files {
			relative(fmt.Sprintf("files[%d]", i), f)
		}
	}
	if len(es) > 0 {
		return es // the paths cannot be checked until they are anchored
	}
	fenced := roots.Check(b)
	out := prefixed(prefix, fenced)
	for _, e := range prefixed(prefix, b.Normalize()) {
		if !slices.ContainsFunc(fenced, func(f spec.FieldError) bool { return prefix+f.Field == e.Field }) {
			out = append(out, e)
		}
	}
	return out
}

// prefixed returns the spec errors in err with their field paths under prefix.
func prefixed(prefix string, err error) spec.Errors {
	if err == nil {
		return nil
	}
	var es spec.Errors
	if !errors.As(err, &es) {
		return spec.Errors{{Field: strings.TrimSuffix(prefix, "."), Msg: err.Error()}}
	}
	return es.Under(strings.TrimSuffix(prefix, "."))
}

// channelRE is the catalog's rule for channel names.
var channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// DecodePromote reads the body of a promote: a channel is required.
func DecodePromote(r io.Reader) (PromoteRequest, error) {
	var req PromoteRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	switch {
	case req.Channel == "":
		return req, spec.Errors{{Field: "channel", Msg: "is required: the channel to point at the image, e.g. stable"}}
	case !channelRE.MatchString(req.Channel):
		return req, spec.Errors{{Field: "channel", Msg: fmt.Sprintf("%q must be lowercase letters, digits and '-', starting with a letter, at most 40 characters (e.g. stable)", req.Channel)}}
	}
	return req, nil
}

// DecodeRevoke reads the body of a revoke: a reason is required.
func DecodeRevoke(r io.Reader) (RevokeRequest, error) {
	var req RevokeRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return req, spec.Errors{{Field: "reason", Msg: "is required: it is shown to everyone whose rollout is refused, e.g. \"CVE-2026-1234 in openssl\""}}
	}
	return req, nil
}

// DecodeDecision reads the body of a decision; an empty body is an empty decision.
func DecodeDecision(r io.Reader) (DecisionRequest, error) {
	var req DecisionRequest
	err := decodeJSON(r, &req)
	if errors.Is(err, errEmpty) {
		return req, nil
	}
	return req, err
}

var errEmpty = &BadRequest{Msg: "the request body is empty; send a JSON object"}

// BadRequest is a body that cannot be read as the request it should be.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

// TooLarge is a body larger than MaxBodyBytes.
type TooLarge struct{}

func (e *TooLarge) Error() string {
	return fmt.Sprintf("the request body is larger than %d bytes (1 MiB), the most the API reads", MaxBodyBytes)
}

func decodeJSON(r io.Reader, v any) error {
	lr := &io.LimitedReader{R: r, N: MaxBodyBytes + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if lr.N <= 0 || errors.As(err, &mbe) {
			return &TooLarge{}
		}
		if errors.Is(err, io.EOF) {
			return errEmpty
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &BadRequest{Msg: "the request body is not valid JSON: it ends before the object does"}
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return &BadRequest{Msg: fmt.Sprintf("the request body is not valid JSON at byte %d: %v", se.Offset, err)}
		case errors.As(err, &te):
			return &BadRequest{Msg: fmt.Sprintf("field %s: want %s, got JSON %s", te.Field, te.Type, te.Value)}
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return &BadRequest{Msg: strings.TrimPrefix(err.Error(), "json: ") + "; see /v1/openapi.json"}
		}
		return &BadRequest{Msg: "the request body cannot be read: " + err.Error()}
	}
	if lr.N <= 0 {
		return &TooLarge{}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if lr.N <= 0 || errors.As(err, &mbe) {
			return &TooLarge{}
		}
		return &BadRequest{Msg: "the request body holds more than one JSON value"}
	}
	return nil
}

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Instance string            `json:"instance,omitempty"` // the request path
	Errors   []spec.FieldError `json:"errors,omitempty"`   // invalid request fields, with their paths in the body
}

// ProblemFor maps a decoding error to its problem details: 400 for a body that
// is not the request or holds an invalid spec (with every field's path), 413 for
// one over MaxBodyBytes.
func ProblemFor(err error) Problem {
	var es spec.Errors
	if errors.As(err, &es) {
		msgs := make([]string, len(es))
		for i, e := range es {
			msgs[i] = e.Error()
		}
		what := "problems"
		if len(es) == 1 {
			what = "problem"
		}
		return Problem{Type: "https://imago.dev/problems/invalid-request", Title: "Invalid request",
			Status: http.StatusBadRequest, Detail: fmt.Sprintf("%d %s: %s", len(es), what, strings.Join(msgs, "; ")), Errors: es}
	}
	var tl *TooLarge
	if errors.As(err, &tl) {
		return Problem{Type: "https://imago.dev/problems/too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge, Detail: tl.Error()}
	}
	var br *BadRequest
	if errors.As(err, &br) {
		return Problem{Type: "https://imago.dev/problems/bad-request", Title: "Bad request", Status: http.StatusBadRequest, Detail: br.Msg}
	}
	return Problem{Type: "about:blank", Title: "Internal error", Status: http.StatusInternalServerError, Detail: err.Error()}
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
	Bake *spec.Bake `json:"bake"`
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
	Rollout  spec.Rollout  `json:"rollout"`
	Approval spec.Approval `json:"approval"`
}

// PipelineRequest is a pipeline spec with its bake and rollout specs inline.
type PipelineRequest struct {
	Name string `json:"name"`
	// Bake is the bake spec (paths on the server, absolute or relative to
	// bake.dir); Image instead rolls out an existing image (id or channel).
	Bake         *spec.Bake      `json:"bake,omitempty"`
	Image        *spec.ImageRef  `json:"image,omitempty"`
	OnBaseChange bool            `json:"onBaseChange,omitempty"`
	Stages       []PipelineStage `json:"stages,omitempty"`
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

// ReaperRequest is the body of POST /v1/reaper.
type ReaperRequest struct {
	// Apply terminates the leaked fleets; without it the sweep only reports them.
	Apply bool `json:"apply,omitempty"`
	// Grace is how old an unreferenced fleet must be to count as leaked (a Go
	// duration; default 1h).
	Grace string `json:"grace,omitempty"`
}

// inlineBakeLabel stands for the bake file a pipeline sent to the API has none of
// (the pipeline's progress says "baking hello from …").
const inlineBakeLabel = "an inline bake spec (REST API)"

// DecodeCreateSchedule reads and validates a create-schedule request, reporting
// every problem with its field path (pipeline.stages[0].rollout.fleet.size); the
// options come back with the bake defaulted and its paths absolute.
func DecodeCreateSchedule(r io.Reader, roots spec.BakeRoots) (schedules.CreateOptions, error) {
	var req CreateScheduleRequest
	if err := decodeJSON(r, &req); err != nil {
		return schedules.CreateOptions{}, err
	}
	o := schedules.CreateOptions{Name: req.Name, Cron: req.Cron, Timezone: req.Timezone, Overlap: req.Overlap,
		Always: req.Always, Paused: req.Paused, Note: req.Note}
	var es spec.Errors
	add := func(field, format string, args ...any) {
		es = append(es, spec.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if req.Every != "" {
		d, err := time.ParseDuration(req.Every)
		switch {
		case err != nil:
			add("every", "%q is not a duration; write it as 30m, 24h or 1h30m", req.Every)
		case d <= 0:
			add("every", "must be positive, e.g. 24h; got %s", req.Every)
		default:
			o.Every = d
		}
	}
	switch {
	case req.Cron == "" && req.Every == "":
		add("cron", "set cron (e.g. \"0 3 * * *\" or @daily) or every (e.g. 24h)")
	case req.Cron != "" && req.Every != "":
		add("cron", "set cron or every, not both")
	}
	p := spec.Pipeline{Name: req.Name, Bake: req.Bake}
	if req.Bake == nil {
		add("bake", "is required: the bake spec the schedule rebuilds, as JSON (paths on the server, absolute or relative to bake.dir)")
	}
	if req.Pipeline != nil {
		p.OnBaseChange, p.Stages = req.Pipeline.OnBaseChange, stages(req.Pipeline.Stages)
	}
	pes := validatePipeline(&p, "bake.", roots, func(field string) string {
		if strings.HasPrefix(field, "stages") || field == "onBaseChange" {
			return "pipeline." + field
		}
		return field
	})
	o.Pipeline = p
	reported := map[string]bool{}
	for _, e := range es {
		reported[e.Field] = true
	}
	reported["cron"] = reported["cron"] || reported["every"] // an unusable every leaves the options with neither
	if err := o.Validate(); err != nil {
		var oes spec.Errors
		errors.As(err, &oes)
		for _, e := range oes {
			if !reported[e.Field] { // the CLI's wording names its flags; the checks above name the fields
				es = append(es, e)
				reported[e.Field] = true
			}
		}
	}
	for _, e := range pes {
		if reported[e.Field] || req.Bake == nil && e.Field == "pipeline.stages" { // said above, or only because the bake is missing
			continue
		}
		es = append(es, e)
	}
	if len(es) > 0 {
		return o, es
	}
	return o, nil
}

// DecodeStartPipeline reads and validates a start-pipeline request: the pipeline
// comes back loaded (bake defaulted, stage rollouts defaulted) as spec.LoadPipeline
// would load it from files.
func DecodeStartPipeline(r io.Reader, roots spec.BakeRoots) (p spec.Pipeline, always bool, err error) {
	var req StartPipelineRequest
	if err := decodeJSON(r, &req); err != nil {
		return p, false, err
	}
	in := req.Pipeline
	p = spec.Pipeline{Name: in.Name, Bake: in.Bake, Image: in.Image, OnBaseChange: in.OnBaseChange, Stages: stages(in.Stages)}
	var es spec.Errors
	if in.Image != nil && in.Image.Bake != "" {
		es = append(es, spec.FieldError{Field: "pipeline.image.bake", Msg: "is not used here: send the bake spec inline as pipeline.bake instead of image"})
		p.Image.Bake = ""
	}
	es = append(es, validatePipeline(&p, "pipeline.bake.", roots, func(field string) string { return "pipeline." + field })...)
	if len(es) > 0 {
		return p, req.Always, es
	}
	return p, req.Always, nil
}

func stages(in []PipelineStage) []spec.Stage {
	out := make([]spec.Stage, len(in))
	for i, st := range in {
		out[i] = spec.Stage{Rollout: st.Rollout, Approval: st.Approval}
	}
	return out
}

// validatePipeline normalizes p's inline bake (field paths under bakePrefix) and
// validates the pipeline, whose field paths where maps into the request body.
func validatePipeline(p *spec.Pipeline, bakePrefix string, roots spec.BakeRoots, where func(field string) string) spec.Errors {
	var es spec.Errors
	if p.Bake != nil {
		p.BakeFile = inlineBakeLabel
		es = append(es, normalizeBake(bakePrefix, p.Bake, roots)...)
	}
	for i := range p.Stages {
		if r := &p.Stages[i].Rollout; r.Image != (spec.ImageRef{}) {
			es = append(es, spec.FieldError{Field: where(fmt.Sprintf("stages[%d].rollout.image", i)),
				Msg: "is set by the pipeline from its bake or image; leave it out"})
			r.Image = spec.ImageRef{} // and check the rest of the stage
		}
	}
	if err := p.Validate(); err != nil {
		var pes spec.Errors
		if !errors.As(err, &pes) {
			return append(es, spec.FieldError{Field: where(""), Msg: err.Error()})
		}
		for _, e := range pes {
			if e.Field == "bake" && p.Bake == nil && p.Image == nil { // the spec's wording is about files
				e.Msg = "set bake (the bake spec, inline as JSON) or image (an existing image: id or channel)"
			}
			es = append(es, spec.FieldError{Field: where(e.Field), Msg: e.Msg})
		}
	}
	return es
}

// DecodeScheduleNote reads the body of pause or unpause; an empty body has no note.
func DecodeScheduleNote(r io.Reader) (ScheduleNoteRequest, error) {
	var req ScheduleNoteRequest
	if err := decodeJSON(r, &req); err != nil && !errors.Is(err, errEmpty) {
		return req, err
	}
	return req, nil
}

// DecodeBackfill reads the body of a backfill: two RFC 3339 times, from before to.
func DecodeBackfill(r io.Reader) (from, to time.Time, err error) {
	var req BackfillRequest
	if err := decodeJSON(r, &req); err != nil {
		return from, to, err
	}
	var es spec.Errors
	parse := func(field, v, example string) time.Time {
		if v == "" {
			es = append(es, spec.FieldError{Field: field, Msg: "is required: an RFC 3339 time such as " + example})
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			es = append(es, spec.FieldError{Field: field, Msg: fmt.Sprintf("%q: want an RFC 3339 time such as %s", v, example)})
		}
		return t
	}
	from = parse("from", req.From, "2026-11-20T00:00:00Z")
	to = parse("to", req.To, "2026-11-23T00:00:00Z")
	if len(es) == 0 && !to.After(from) {
		es = append(es, spec.FieldError{Field: "to", Msg: fmt.Sprintf("%s must be after from (%s)", req.To, req.From)})
	}
	if len(es) > 0 {
		return from, to, es
	}
	return from, to, nil
}

// DecodeReaper reads the body of POST /v1/reaper; an empty body is a dry run
// with the default grace period.
func DecodeReaper(r io.Reader) (workflows.ReaperInput, error) {
	var req ReaperRequest
	if err := decodeJSON(r, &req); err != nil && !errors.Is(err, errEmpty) {
		return workflows.ReaperInput{}, err
	}
	in := workflows.ReaperInput{Apply: req.Apply, Grace: workflows.DefaultReaperGrace}
	if req.Grace != "" {
		d, err := time.ParseDuration(req.Grace)
		switch {
		case err != nil:
			return in, spec.Errors{{Field: "grace", Msg: fmt.Sprintf("%q is not a duration; write it as 30m or 1h", req.Grace)}}
		case d <= 0:
			return in, spec.Errors{{Field: "grace", Msg: fmt.Sprintf("must be positive, e.g. 1h; got %s", req.Grace)}}
		}
		in.Grace = d
	}
	return in, nil
}
