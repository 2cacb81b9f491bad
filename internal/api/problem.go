package api

// Errors as RFC 9457 problem details: what a decoding error (decode.go) or an
// invalid spec tells the client.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/imago/imago/internal/contract"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string                `json:"type"`
	Title    string                `json:"title"`
	Status   int                   `json:"status"`
	Detail   string                `json:"detail,omitempty"`
	Instance string                `json:"instance,omitempty"` // the request path
	Errors   []contract.FieldError `json:"errors,omitempty"`   // invalid request fields, with their paths in the body
}

// ProblemFor maps a decoding error to its problem details: 400 for a body that
// is not the request or holds an invalid spec (with every field's path), 413 for
// one over MaxBodyBytes.
func ProblemFor(err error) Problem {
	var es contract.FieldErrors
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
