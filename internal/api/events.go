package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// RolloutDone is the data of the final event of a rollout's stream.
type RolloutDone struct {
	WorkflowID string                  `json:"workflowId"`
	RunID      string                  `json:"runId"`
	Status     string                  `json:"status"` // Succeeded, Failed, Canceled, Terminated, TimedOut
	Phase      contract.Phase          `json:"phase,omitempty"`
	Result     *contract.RolloutResult `json:"result,omitempty"`
	Error      string                  `json:"error,omitempty"`
}

// keepAlive is how long a quiet stream waits before it sends a comment, so
// proxies keep the connection open.
const keepAlive = 15 * time.Second

// rolloutEvents is GET /v1/rollouts/{service}/{env}/events: a server-sent event
// stream of the latest rollout. It polls the rollout's progress query and status
// every PollInterval and sends `event: progress` (the contract.RolloutProgress, as JSON)
// whenever it changed, then one `event: done` (a RolloutDone) once the run ended,
// and closes. Event ids count up, continuing from a reconnecting client's
// Last-Event-ID; every progress event is a whole snapshot, so nothing is lost.
func (s *Server) rolloutEvents(w http.ResponseWriter, r *http.Request) error {
	service, env, err := target(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	dctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	desc, err := s.describeRollout(dctx, service, env)
	cancel()
	if err != nil {
		return err
	}
	id, runID := contract.RolloutWorkflowID(service, env), desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream lasts as long as the rollout, past the server's WriteTimeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	seq, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
	lastWrite := time.Now()
	send := func(event string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		seq++
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", seq, event, data); err != nil {
			return err
		}
		lastWrite = time.Now()
		return rc.Flush()
	}
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}

	var last []byte
	progress := func(p *contract.RolloutProgress) error {
		if p == nil {
			return nil
		}
		data, err := json.Marshal(p)
		if err != nil || string(data) == string(last) {
			return err
		}
		last = data
		return send("progress", p)
	}
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		st, err := rollouts.GetLive(pctx, s.cfg.Client, s.cfg.DataConverter, service, env)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil // the client went away
		case err != nil:
			s.log.Warn("event stream: read the rollout", "rollout", id, "error", err) // try again at the next tick
		case st.RunID == runID && st.Status == "Running":
			if err := progress(st.Progress); err != nil {
				return nil
			}
		default: // this run ended (a newer run may have started since)
			done := RolloutDone{WorkflowID: id, RunID: runID}
			if st.RunID == runID {
				if err := progress(st.Progress); err != nil {
					return nil
				}
				done.Status = st.Status
				if st.Progress != nil {
					done.Phase = st.Progress.Phase
				}
			}
			s.result(ctx, &done)
			_ = send("done", done)
			return nil
		}
		if time.Since(lastWrite) >= keepAlive {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
			lastWrite = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.stop:
			_, _ = fmt.Fprint(w, ": the server is shutting down; reconnect with Last-Event-ID\n\n")
			_ = rc.Flush()
			return nil
		case <-tick.C:
		}
	}
}

// result fills done with the run's result or its failure.
func (s *Server) result(ctx context.Context, done *RolloutDone) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	var res contract.RolloutResult
	err := s.cfg.Client.GetWorkflow(rctx, done.WorkflowID, done.RunID).Get(rctx, &res)
	if err == nil {
		done.Result = &res
		if done.Status == "" {
			done.Status = "Succeeded"
		}
		return
	}
	done.Error = rollouts.Reason(err)
	done.Result = rollouts.ResultOf(err) // a bake time's rollback: the failed measurement
	if done.Status != "" {
		return
	}
	var canceled *temporal.CanceledError
	var terminated *temporal.TerminatedError
	var timedOut *temporal.TimeoutError
	switch {
	case errors.As(err, &canceled):
		done.Status = "Canceled"
	case errors.As(err, &terminated):
		done.Status = "Terminated"
	case errors.As(err, &timedOut):
		done.Status = "TimedOut"
	default:
		done.Status = "Failed"
	}
}
