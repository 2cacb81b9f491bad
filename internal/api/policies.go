package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/imago/imago/internal/contract"
)

// PolicyRequest is the body of PUT /v1/policies/{env}, as `imago policy set`;
// maxAge is whole days ("90d") or a duration ("2160h").
type PolicyRequest struct {
	RequireProvenance bool     `json:"requireProvenance,omitempty"`
	ProvenanceKey     string   `json:"provenanceKey,omitempty"`
	RequireSBOM       bool     `json:"requireSbom,omitempty"`
	DenyPackages      []string `json:"denyPackages,omitempty"`
	MaxAge            string   `json:"maxAge,omitempty"`
}

// PolicyList answers GET /v1/policies.
type PolicyList struct {
	Policies []contract.Policy `json:"policies"`
}

// pathEnv is the {env} of a request's path, checked.
func pathEnv(r *http.Request) (string, error) {
	env := r.PathValue("env")
	if !serviceRE.MatchString(env) {
		return "", contract.FieldErrors{{Field: "path.env", Msg: fmt.Sprintf("%q: use letters, digits, '.', '_' and '-' (at most 128 characters)", env)}}
	}
	return env, nil
}

// listPolicies is GET /v1/policies: every environment's policy, as
// `imago policy show -o json`.
func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.cfg.Catalog.Policies(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, PolicyList{Policies: ps})
}

// getPolicy is GET /v1/policies/{env}: 404 when the environment has none.
func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	env, err := pathEnv(r)
	if err != nil {
		return err
	}
	p, err := s.cfg.Catalog.Policy(r.Context(), env)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// setPolicy is PUT /v1/policies/{env}, as `imago policy set`: 200 with the
// policy, which replaces the environment's previous one. Bad input is a 400
// naming the field.
func (s *Server) setPolicy(w http.ResponseWriter, r *http.Request) error {
	env, err := pathEnv(r)
	if err != nil {
		return err
	}
	var req PolicyRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	p := contract.Policy{Environment: env, RequireProvenance: req.RequireProvenance, ProvenanceKey: req.ProvenanceKey,
		RequireSBOM: req.RequireSBOM, DenyPackages: req.DenyPackages, By: principal(r)}
	if req.MaxAge != "" {
		if p.MaxAge, err = contract.ParseAge(req.MaxAge); err != nil {
			return contract.FieldErrors{{Field: "maxAge", Msg: err.Error()}}
		}
	}
	got, err := s.cfg.Catalog.SetPolicy(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, got)
}

// deletePolicy is DELETE /v1/policies/{env}, as `imago policy delete`: 200
// with the delete entry; 404 when the environment has no policy.
func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	env, err := pathEnv(r)
	if err != nil {
		return err
	}
	got, err := s.cfg.Catalog.DeletePolicy(r.Context(), env, principal(r), time.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, got)
}
