package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/runs"
)

// namedDecision is what a decision endpoint on a named campaign or pipeline
// (POST /v1/campaigns|pipelines/{name}/<decision>) does its own way.
type namedDecision[P any] struct {
	// latest finds the run decided on, its errors already problems.
	latest func(ctx context.Context, name string) (runs.Run[P], error)
	// needs are the scopes the decision asks for, from the run's progress.
	needs func(p P, decision string) []tokens.Scope
	// send delivers the decision; an error that is no problem is its refusal.
	send  func(ctx context.Context, run runs.Run[P], name, decision, by, reason string) error
	links func(name string) Links
}

// decideNamed is a decision endpoint on a named campaign or pipeline: the
// latest run, the scopes the decision needs on it, the decision; a refusal is
// 409 with the workflow's reason, Temporal unreachable 503.
func decideNamed[P any](w http.ResponseWriter, r *http.Request, decision string, d namedDecision[P]) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	req, err := DecodeDecision(r.Body)
	if err != nil {
		return err
	}
	ctx := r.Context()
	run, err := d.latest(ctx, name)
	if err != nil {
		return err
	}
	if err := authorize(r, d.needs(run.Progress, decision)...); err != nil {
		return err
	}
	by := principal(r)
	if err := d.send(ctx, run, name, decision, by, req.Reason); err != nil {
		var pe *problemError
		if errors.As(err, &pe) || ctx.Err() != nil || temporalUnavailable(err) {
			return err
		}
		return problem(http.StatusConflict, "decision-refused", "Decision refused", "%s", err.Error())
	}
	return writeJSON(w, http.StatusOK, Decided{WorkflowID: run.WorkflowID, Decision: decision, By: by, Reason: req.Reason, Links: d.links(name)})
}
