package api

import (
	"errors"
	"net/http"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
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
	req, err := DecodeStartBake(r.Body, s.cfg.BakeRoots)
	if err != nil {
		return err
	}
	b := req.Spec
	if err := authorize(r, tokens.Scope{Kind: tokens.Bake, Service: b.Service}); err != nil {
		return err
	}
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
	bakes.State
	Result *contract.BakeResult `json:"result,omitempty"`
	Error  string               `json:"error,omitempty"`
}

// getBake is GET /v1/bakes/{service}/{channel}: the latest bake of service to
// channel, its progress, and its result or failure once it ended.
func (s *Server) getBake(w http.ResponseWriter, r *http.Request) error {
	b := spec.Bake{Bake: contract.Bake{Service: r.PathValue("service"), Channel: r.PathValue("channel")}}
	var es contract.FieldErrors
	if !nameRE.MatchString(b.Service) {
		es = append(es, contract.FieldError{Field: "path.service", Msg: "must be 1-40 lowercase letters, digits or '-'"})
	}
	if !channelRE.MatchString(b.Channel) {
		es = append(es, contract.FieldError{Field: "path.channel", Msg: "must be a lowercase name such as latest or stable"})
	}
	if len(es) > 0 {
		return es
	}
	ctx := r.Context()
	got, err := bakes.Get(ctx, s.cfg.Client, b.Service, b.Channel)
	var nf *bakes.NotFoundError
	if errors.As(err, &nf) {
		return notFoundf("no bake of %s to channel %s yet; start one with POST /v1/bakes", b.Service, b.Channel)
	}
	if err != nil {
		return err
	}
	st := BakeStatus{State: got}
	if st.Closed != nil {
		var res contract.BakeResult
		if err := s.cfg.Client.GetWorkflow(ctx, st.WorkflowID, st.RunID).Get(ctx, &res); err != nil {
			st.Error = rollouts.Reason(err)
		} else {
			st.Result = &res
		}
	}
	return writeJSON(w, http.StatusOK, st)
}
