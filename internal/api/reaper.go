package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// ReaperStarted answers a sweep that outlasted the wait (202).
type ReaperStarted struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Detail     string `json:"detail"`
}

// runReaper is POST /v1/reaper, as `imago reaper run`: one sweep for leaked
// fleets, a dry run unless apply. It waits for the sweep for three quarters of
// the request timeout and answers 200 with the ReaperResult; a sweep still
// running then goes on, answered 202 with its workflow ID (its result is in the
// Temporal UI). One sweep per token at a time (409).
func (s *Server) runReaper(w http.ResponseWriter, r *http.Request) error {
	in, err := DecodeReaper(r.Body)
	if err != nil {
		return err
	}
	if in.Apply {
		if err := authorize(r, tokens.Scope{Kind: tokens.Admin}); err != nil {
			return err
		}
	}
	ctx := r.Context()
	by := principal(r)
	id := "reaper/" + by
	opts := rollouts.ExclusiveStart(id)
	opts.StaticSummary = fmt.Sprintf("reaper · apply=%t · grace %s", in.Apply, in.Grace)
	opts.StaticDetails = "started by " + by + " through the REST API"
	run, err := s.cfg.Client.ExecuteWorkflow(ctx, opts, contract.WorkflowReaper, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return problem(http.StatusConflict, "already-running", "Already running",
			"a sweep started with this token is running (%s, run %s); wait for it, then sweep again", id, started.RunId)
	}
	if err != nil {
		return fmt.Errorf("start the reaper: %w", err)
	}
	// Wait on a timer rather than on a context deadline: the SDK's long poll may end
	// with a transport error (RST_STREAM CANCEL) a moment before such a deadline
	// reports itself, which would read as a failed sweep.
	// The wait ends three quarters into the request's time, counted from when the
	// request began (its deadline), not from when the start returned: a slow start
	// under load must not eat the quarter left to answer 202 before the 504.
	wait := s.cfg.RequestTimeout * 3 / 4
	until := wait
	if dl, ok := ctx.Deadline(); ok {
		until = time.Until(dl) - s.cfg.RequestTimeout/4
	}
	timer := time.NewTimer(max(until, 0))
	defer timer.Stop()
	var res contract.ReaperResult
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, &res) }() // ends with the request's context at the latest
	select {
	case <-timer.C:
		return writeJSON(w, http.StatusAccepted, ReaperStarted{WorkflowID: id, RunID: run.GetRunID(),
			Detail: fmt.Sprintf("the sweep is still running after %s; it goes on, and its result is in the Temporal UI (workflow %s)", wait, id)})
	case err = <-done:
	}
	switch {
	case err == nil:
		return writeJSON(w, http.StatusOK, res)
	case ctx.Err() != nil || temporalUnavailable(err):
		return err
	}
	return problem(http.StatusInternalServerError, "reaper-failed", "Sweep failed", "the sweep %s failed: %s", id, rollouts.Reason(err))
}
