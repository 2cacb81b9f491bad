package api

import (
	"net/http"

	"github.com/imago/imago/internal/contract"
)

// LifecycleRequest is the body of PUT /v1/lifecycle/{service}, as `imago image
// lifecycle set`; ages are whole days ("30d") or durations ("720h").
type LifecycleRequest struct {
	KeepLast       int    `json:"keepLast"`
	DeprecateAfter string `json:"deprecateAfter,omitempty"`
	DeleteAfter    string `json:"deleteAfter,omitempty"`
}

// LifecycleList answers GET /v1/lifecycle.
type LifecycleList struct {
	Rules []contract.LifecycleRule `json:"rules"`
}

// listLifecycle is GET /v1/lifecycle: every service's lifecycle rule, as
// `imago image lifecycle show -o json`.
func (s *Server) listLifecycle(w http.ResponseWriter, r *http.Request) error {
	rules, err := s.cfg.Catalog.LifecycleRules(r.Context())
	if err != nil {
		return err
	}
	if rules == nil {
		rules = []contract.LifecycleRule{}
	}
	return writeJSON(w, http.StatusOK, LifecycleList{Rules: rules})
}

// setLifecycle is PUT /v1/lifecycle/{service}, as `imago image lifecycle set`:
// 200 with the rule, which replaces the service's previous one. Bad input is a
// 400 naming the field.
func (s *Server) setLifecycle(w http.ResponseWriter, r *http.Request) error {
	service, err := pathService(r)
	if err != nil {
		return err
	}
	var req LifecycleRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	rule := contract.LifecycleRule{Service: service, KeepLast: req.KeepLast, By: principal(r)}
	var es contract.FieldErrors
	for _, f := range []struct {
		field, v string
		to       *contract.Duration
	}{{"deprecateAfter", req.DeprecateAfter, &rule.DeprecateAfter}, {"deleteAfter", req.DeleteAfter, &rule.DeleteAfter}} {
		if f.v == "" {
			continue
		}
		if *f.to, err = contract.ParseAge(f.v); err != nil {
			es = append(es, contract.FieldError{Field: f.field, Msg: err.Error()})
		}
	}
	if len(es) > 0 {
		return es
	}
	if field, err := rule.Problem(); err != nil {
		return contract.FieldErrors{{Field: field, Msg: err.Error()}}
	}
	got, err := s.cfg.Catalog.SetLifecycle(r.Context(), rule)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, got)
}
