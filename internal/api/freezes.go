package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/freezes"
)

// FreezeList answers GET /v1/freezes.
type FreezeList struct {
	Freezes []contract.Freeze `json:"freezes"`
}

// FreezeRequest is the body of POST /v1/freezes, as `imago freeze start`.
type FreezeRequest struct {
	Service     string `json:"service,omitempty"`     // empty: every service
	Environment string `json:"environment,omitempty"` // empty: every environment
	Reason      string `json:"reason"`
	Until       string `json:"until,omitempty"` // RFC 3339 time or a duration such as 2h
}

// freezeScope checks a freeze's service and environment (empty: all).
func freezeScope(service, environment string) contract.FieldErrors {
	var es contract.FieldErrors
	for _, f := range []struct{ field, v string }{{"service", service}, {"environment", environment}} {
		if f.v != "" && !nameRE.MatchString(f.v) {
			es = append(es, contract.FieldError{Field: f.field, Msg: fmt.Sprintf("%q must be 1-40 lowercase letters, digits or '-' (or left out: every one)", f.v)})
		}
	}
	return es
}

// fieldProblem turns freezes' bad input into a 400 naming the field.
func fieldProblem(err error) error {
	var p *freezes.Problem
	if errors.As(err, &p) {
		return contract.FieldErrors{{Field: p.Field, Msg: p.Msg}}
	}
	return err
}

// listFreezes is GET /v1/freezes: the freezes in force, as `imago freeze list -o json`.
func (s *Server) listFreezes(w http.ResponseWriter, r *http.Request) error {
	list, err := freezes.List(r.Context(), s.cfg.Catalog)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, FreezeList{Freezes: list})
}

// startFreeze is POST /v1/freezes, as `imago freeze start`: 201 with the freeze.
func (s *Server) startFreeze(w http.ResponseWriter, r *http.Request) error {
	var req FreezeRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if es := freezeScope(req.Service, req.Environment); len(es) > 0 {
		return es
	}
	now := time.Now()
	until, err := freezes.ParseUntil(req.Until, now)
	if err != nil {
		return fieldProblem(err)
	}
	f, err := freezes.Start(r.Context(), s.cfg.Catalog, freezes.StartOptions{
		Service: req.Service, Environment: req.Environment, Reason: req.Reason, Until: until, By: principal(r),
	})
	if err != nil {
		return fieldProblem(err)
	}
	return writeJSON(w, http.StatusCreated, f)
}

// endFreeze is DELETE /v1/freezes?service=S&environment=E, as `imago freeze
// end`: 200 with the freeze that ended and the rollouts told to go on; 404
// when none is in force for exactly that scope.
func (s *Server) endFreeze(w http.ResponseWriter, r *http.Request) error {
	service, env := r.URL.Query().Get("service"), r.URL.Query().Get("environment")
	if es := freezeScope(service, env); len(es) > 0 {
		return es
	}
	ended, err := freezes.End(r.Context(), s.cfg.Catalog, s.cfg.Client, service, env, principal(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ended)
}
