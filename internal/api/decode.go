// Package api is imago's REST API (`imago serve`): JSON under /v1 over the same
// internal packages the CLI uses (rollouts, bakes, catalog, spec), bearer-token
// auth, RFC 9457 problem details on every error, server-sent events for a
// rollout's progress and an OpenAPI document at /v1/openapi.json.
//
// This file holds the request decoding: what a client sends is read here, bounded
// in size, with unknown fields refused and every spec problem reported with its
// field path in the request body (spec.fleet.size). The request types are in
// requests.go, the problem details in problem.go, pipeline validation in
// pipelinespec.go.
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

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/schedules"
	"github.com/imago/imago/internal/spec"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// DecodeStartRollout reads and validates a start-rollout request. A body that is
// not one JSON object, is larger than MaxBodyBytes, has unknown fields or an
// invalid spec is an error that says what is wrong; the spec comes back defaulted.
func DecodeStartRollout(r io.Reader, roots spec.BakeRoots) (StartRolloutRequest, error) {
	var req StartRolloutRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if req.Image != "" {
		req.Spec.Image = contract.ImageRef{ID: req.Image}
	}
	es := prefixed("spec.", req.Spec.Normalize())
	switch {
	case req.Spec.Image.Bake != "" && req.Bake == nil:
		es = append(es, contract.FieldError{Field: "bake", Msg: fmt.Sprintf(
			"is required when spec.image.bake is set (%q): the API reads no spec files, so send the bake spec inline as \"bake\" beside \"spec\"", req.Spec.Image.Bake)})
	case req.Spec.Image.Bake == "" && req.Bake != nil:
		es = append(es, contract.FieldError{Field: "bake", Msg: "is only used with spec.image.bake; set spec.image.bake (a label such as bake.yaml) or leave bake out"})
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
func normalizeBake(prefix string, b *spec.Bake, roots spec.BakeRoots) contract.FieldErrors {
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: prefix + field, Msg: fmt.Sprintf(format, args...)})
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
		if !slices.ContainsFunc(fenced, func(f contract.FieldError) bool { return prefix+f.Field == e.Field }) {
			out = append(out, e)
		}
	}
	return out
}

// prefixed returns the spec errors in err with their field paths under prefix.
func prefixed(prefix string, err error) contract.FieldErrors {
	if err == nil {
		return nil
	}
	var es contract.FieldErrors
	if !errors.As(err, &es) {
		return contract.FieldErrors{{Field: strings.TrimSuffix(prefix, "."), Msg: err.Error()}}
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
		return req, contract.FieldErrors{{Field: "channel", Msg: "is required: the channel to point at the image, e.g. stable"}}
	case !channelRE.MatchString(req.Channel):
		return req, contract.FieldErrors{{Field: "channel", Msg: fmt.Sprintf("%q must be lowercase letters, digits and '-', starting with a letter, at most 40 characters (e.g. stable)", req.Channel)}}
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
		return req, contract.FieldErrors{{Field: "reason", Msg: "is required: it is shown to everyone whose rollout is refused, e.g. \"CVE-2026-1234 in openssl\""}}
	}
	if !req.Cascade && (req.Campaign != nil || req.Channel != "") {
		return req, contract.FieldErrors{{Field: "campaign", Msg: "campaign and channel go with cascade: true"}}
	}
	if req.Campaign != nil {
		if err := campaigns.CheckCascade(*req.Campaign); err != nil {
			return req, prefixFields("campaign", err)
		}
	}
	return req, nil
}

// prefixFields puts the fields of a nested object's field errors under prefix.
func prefixFields(prefix string, err error) error {
	var fe contract.FieldErrors
	if !errors.As(err, &fe) {
		return contract.FieldErrors{{Field: prefix, Msg: err.Error()}}
	}
	out := make(contract.FieldErrors, len(fe))
	for i, e := range fe {
		e.Field = prefix + "." + e.Field
		out[i] = e
	}
	return out
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
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
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
	p := spec.Pipeline{Pipeline: contract.Pipeline{Name: req.Name, Bake: req.Bake}}
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
		var oes contract.FieldErrors
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
	p = spec.Pipeline{Pipeline: contract.Pipeline{Name: in.Name, Bake: in.Bake, Image: in.Image, OnBaseChange: in.OnBaseChange, Stages: stages(in.Stages)}}
	var es contract.FieldErrors
	if in.Image != nil && in.Image.Bake != "" {
		es = append(es, contract.FieldError{Field: "pipeline.image.bake", Msg: "is not used here: send the bake spec inline as pipeline.bake instead of image"})
		p.Image.Bake = ""
	}
	es = append(es, validatePipeline(&p, "pipeline.bake.", roots, func(field string) string { return "pipeline." + field })...)
	if len(es) > 0 {
		return p, req.Always, es
	}
	return p, req.Always, nil
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
	var es contract.FieldErrors
	parse := func(field, v, example string) time.Time {
		if v == "" {
			es = append(es, contract.FieldError{Field: field, Msg: "is required: an RFC 3339 time such as " + example})
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			es = append(es, contract.FieldError{Field: field, Msg: fmt.Sprintf("%q: want an RFC 3339 time such as %s", v, example)})
		}
		return t
	}
	from = parse("from", req.From, "2026-11-20T00:00:00Z")
	to = parse("to", req.To, "2026-11-23T00:00:00Z")
	if len(es) == 0 && !to.After(from) {
		es = append(es, contract.FieldError{Field: "to", Msg: fmt.Sprintf("%s must be after from (%s)", req.To, req.From)})
	}
	if len(es) > 0 {
		return from, to, es
	}
	return from, to, nil
}

// DecodeDrift reads the body of POST /v1/drift; an empty body checks everything.
func DecodeDrift(r io.Reader) (DriftRequest, error) {
	var req DriftRequest
	if err := decodeJSON(r, &req); err != nil && !errors.Is(err, errEmpty) {
		return req, err
	}
	var es contract.FieldErrors
	for _, f := range []struct{ field, v string }{{"environment", req.Environment}, {"service", req.Service}} {
		if f.v != "" && !serviceRE.MatchString(f.v) {
			es = append(es, contract.FieldError{Field: f.field, Msg: fmt.Sprintf("%q is not a name: use letters, digits, '.', '_' and '-'", f.v)})
		}
	}
	if len(es) > 0 {
		return req, es
	}
	return req, nil
}

// DecodeReaper reads the body of POST /v1/reaper; an empty body is a dry run
// with the default grace period.
func DecodeReaper(r io.Reader) (contract.ReaperInput, error) {
	var req ReaperRequest
	if err := decodeJSON(r, &req); err != nil && !errors.Is(err, errEmpty) {
		return contract.ReaperInput{}, err
	}
	in := contract.ReaperInput{Apply: req.Apply, Grace: contract.DefaultReaperGrace}
	if req.Grace != "" {
		d, err := time.ParseDuration(req.Grace)
		switch {
		case err != nil:
			return in, contract.FieldErrors{{Field: "grace", Msg: fmt.Sprintf("%q is not a duration; write it as 30m or 1h", req.Grace)}}
		case d <= 0:
			return in, contract.FieldErrors{{Field: "grace", Msg: fmt.Sprintf("must be positive, e.g. 1h; got %s", req.Grace)}}
		}
		in.Grace = d
	}
	return in, nil
}
