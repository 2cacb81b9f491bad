// Package api holds the REST API's request decoding and its RFC 9457 problem
// details: what a client sends is read here, bounded in size, with unknown fields
// refused and every spec problem reported with its field path.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/imago/imago/internal/spec"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// StartRolloutRequest is the body of POST /v1/rollouts.
type StartRolloutRequest struct {
	Spec spec.Rollout `json:"spec"`
	// Image, when set, overrides the spec's image with this image ID.
	Image string `json:"image,omitempty"`
}

// DecisionRequest is the body of approve, abort, promote and rollback.
type DecisionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// DecodeStartRollout reads and validates a start-rollout request. A body that is
// not one JSON object, is larger than MaxBodyBytes, has unknown fields or an
// invalid spec is an error that says what is wrong; the spec comes back defaulted.
func DecodeStartRollout(r io.Reader) (StartRolloutRequest, error) {
	var req StartRolloutRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if req.Image != "" {
		req.Spec.Image = spec.ImageRef{ID: req.Image}
	}
	if err := req.Spec.Normalize(); err != nil {
		return req, err
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

func decodeJSON(r io.Reader, v any) error {
	lr := &io.LimitedReader{R: r, N: MaxBodyBytes + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 {
			return &BadRequest{Msg: fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes)}
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
		return &BadRequest{Msg: fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &BadRequest{Msg: "the request body holds more than one JSON value"}
	}
	return nil
}

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail,omitempty"`
	Errors []spec.FieldError `json:"errors,omitempty"` // invalid spec fields, with their paths
}

// ProblemFor maps a decoding error to its problem details.
func ProblemFor(err error) Problem {
	var es spec.Errors
	if errors.As(err, &es) {
		return Problem{Type: "https://imago.dev/problems/invalid-spec", Title: "Invalid rollout spec",
			Status: http.StatusUnprocessableEntity, Detail: fmt.Sprintf("%d problems in the spec", len(es)), Errors: es}
	}
	var br *BadRequest
	if errors.As(err, &br) {
		return Problem{Type: "https://imago.dev/problems/bad-request", Title: "Bad request", Status: http.StatusBadRequest, Detail: br.Msg}
	}
	return Problem{Type: "about:blank", Title: "Internal error", Status: http.StatusInternalServerError, Detail: err.Error()}
}
