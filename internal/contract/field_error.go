package contract

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem with one field of a spec or a request, and its
// line in the YAML file the spec came from (0 when there is none: a spec sent
// as JSON, a field left out). FieldErrors are the details of an ErrInvalidSpec
// failure and the "errors" of the API's problem answers: on the wire.
type FieldError struct {
	Field string `json:"field"`
	Line  int    `json:"line,omitempty"`
	Msg   string `json:"message"`
}

func (e FieldError) Error() string {
	msg := e.Msg
	if e.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	if e.Field == "" {
		return msg
	}
	return e.Field + ": " + msg
}

// FieldErrors is every problem found in a spec.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = "  " + e.Error()
	}
	return "invalid spec:\n" + strings.Join(lines, "\n")
}

// SortByLine orders problems by line; those without one (a required field left
// out) keep their order and come last.
func (es FieldErrors) SortByLine() {
	sort.SliceStable(es, func(i, j int) bool {
		li, lj := es[i].Line, es[j].Line
		return li != 0 && (lj == 0 || li < lj)
	})
}

// Under returns the problems with their field paths inside prefix (stages[0].rollout).
func (es FieldErrors) Under(prefix string) FieldErrors {
	out := make(FieldErrors, len(es))
	for i, e := range es {
		e.Field = JoinPath(prefix, e.Field)
		out[i] = e
	}
	return out
}

// WithLines returns es with each problem's line looked up by lines (the line
// of a field in the file a spec was parsed from), where it has none.
func (es FieldErrors) WithLines(lines func(field string) int) FieldErrors {
	out := make(FieldErrors, len(es))
	for i, e := range es {
		if e.Line == 0 && lines != nil {
			e.Line = lines(e.Field)
		}
		out[i] = e
	}
	return out
}

// JoinPath puts field inside prefix: a.b, a[2], or either alone when the
// other is empty.
func JoinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case strings.HasPrefix(field, "["):
		return prefix + field
	}
	return prefix + "." + field
}

// InvalidSpec returns the problems of a spec refused by the CheckSpec activity
// (a failure of type ErrInvalidSpec with the FieldErrors as details), found
// anywhere in err's chain.
func InvalidSpec(err error) (FieldErrors, bool) {
	var es FieldErrors
	if !FailureDetails(err, ErrInvalidSpec, &es) || len(es) == 0 {
		return nil, false
	}
	return es, true
}
