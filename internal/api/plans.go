package api

import (
	"net/http"

	"github.com/imago/imago/internal/plan"
)

// planRollout is POST /v1/plans: the rollout POST /v1/rollouts would start
// with the same body, checked the same way, run on a simulated clock against
// a simulated target (internal/plan). It starts nothing and only reads the
// catalog, so read is its scope.
func (s *Server) planRollout(w http.ResponseWriter, r *http.Request) error {
	req, err := DecodeStartRollout(r.Body, s.cfg.BakeRoots)
	if err != nil {
		return err
	}
	if err := s.checkImage(r.Context(), req.Spec); err != nil {
		return err
	}
	p, err := plan.Run(r.Context(), s.cfg.Catalog, req.Spec, plan.Options{Bake: req.Bake})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}
