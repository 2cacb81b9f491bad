package api

import (
	"errors"
	"net/http"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// StartedBake answers a started bake.
type StartedBake struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Service    string `json:"service"`
	Channel    string `json:"channel"`
	Builder    string `json:"builder"`
	Force      bool   `json:"force"`
	StartedBy  string `json:"startedBy"`
	Links      Links  `json:"links"`
}

// startBake is POST /v1/bakes, as `imago bake start`.
func (s *Server) startBake(w http.ResponseWriter, r *http.Request) error {
	req, err := DecodeStartBake(r.Body)
	if err != nil {
		return err
	}
	b := req.Spec
	by := principal(r)
	run, err := bakes.Start(r.Context(), s.cfg.Client, b, by)
	if err != nil {
		return err
	}
	self := "/v1/bakes/" + b.Service + "/" + b.Channel
	w.Header().Set("Location", self)
	return writeJSON(w, http.StatusCreated, StartedBake{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), Service: b.Service, Channel: b.Channel,
		Builder: b.Builder, Force: b.Force, StartedBy: by, Links: Links{Self: self},
	})
}

// BakeStatus answers GET /v1/bakes/{service}/{channel}.
type BakeStatus struct {
	WorkflowID string                  `json:"workflowId"`
	RunID      string                  `json:"runId"`
	Status     string                  `json:"status"` // Running, Succeeded, Failed, ...
	Started    time.Time               `json:"started"`
	Closed     *time.Time              `json:"closed,omitempty"`
	Progress   *workflows.BakeProgress `json:"progress,omitempty"`
	Result     *workflows.BakeResult   `json:"result,omitempty"`
	Error      string                  `json:"error,omitempty"`
}

// getBake is GET /v1/bakes/{service}/{channel}: the latest bake of service to
// channel, its progress, and its result or failure once it ended.
func (s *Server) getBake(w http.ResponseWriter, r *http.Request) error {
	b := spec.Bake{Service: r.PathValue("service"), Channel: r.PathValue("channel")}
	var es spec.Errors
	if !nameRE.MatchString(b.Service) {
		es = append(es, spec.FieldError{Field: "path.service", Msg: "must be 1-40 lowercase letters, digits or '-'"})
	}
	if !channelRE.MatchString(b.Channel) {
		es = append(es, spec.FieldError{Field: "path.channel", Msg: "must be a lowercase name such as latest or stable"})
	}
	if len(es) > 0 {
		return es
	}
	ctx := r.Context()
	id := b.WorkflowID()
	desc, err := s.cfg.Client.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return notFoundf("no bake of %s to channel %s yet; start one with POST /v1/bakes", b.Service, b.Channel)
	}
	if err != nil {
		return err
	}
	info := desc.GetWorkflowExecutionInfo()
	st := BakeStatus{
		WorkflowID: id, RunID: info.GetExecution().GetRunId(),
		Status: rollouts.StatusName(info.GetStatus()), Started: info.GetStartTime().AsTime(),
	}
	if info.GetCloseTime() != nil {
		t := info.GetCloseTime().AsTime()
		st.Closed = &t
	}
	if val, err := s.cfg.Client.QueryWorkflow(ctx, id, st.RunID, workflows.QueryProgress); err == nil {
		var p workflows.BakeProgress
		if val.Get(&p) == nil {
			st.Progress = &p
		}
	}
	if st.Closed != nil {
		var res workflows.BakeResult
		if err := s.cfg.Client.GetWorkflow(ctx, id, st.RunID).Get(ctx, &res); err != nil {
			st.Error = rollouts.Reason(err)
		} else {
			st.Result = &res
		}
	}
	return writeJSON(w, http.StatusOK, st)
}
