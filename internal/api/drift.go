package api

import (
	"net/http"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/drift"
)

// runDrift is POST /v1/drift, as `imago drift`: one drift check on a worker,
// answered with its report (200). With repair it also starts, for each drifted
// service and environment, a rollout of the live image with the last rollout's
// spec; that needs deploy on the whole selection (a service and environment
// left out are every one: deploy:*/*).
func (s *Server) runDrift(w http.ResponseWriter, r *http.Request) error {
	req, err := DecodeDrift(r.Body)
	if err != nil {
		return err
	}
	if req.Repair {
		if err := authorize(r, tokens.Scope{Kind: tokens.Deploy, Service: drift.OrAll(req.Service), Env: drift.OrAll(req.Environment)}); err != nil {
			return err
		}
	}
	res, err := drift.Run(r.Context(), s.cfg.Client, contract.DriftInput{Service: req.Service, Environment: req.Environment}, req.Repair, principal(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}
