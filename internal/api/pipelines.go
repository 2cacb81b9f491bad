package api

import (
	"context"
	"errors"
	"net/http"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/pipelines"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/runs"
)

// StartedPipeline answers a started pipeline.
type StartedPipeline struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Name       string `json:"name"`
	Service    string `json:"service"`
	Summary    string `json:"summary"` // "pipeline hello: bake → staging → prod (approval)"
	Always     bool   `json:"always"`
	StartedBy  string `json:"startedBy"`
	Links      Links  `json:"links"`
}

func pipelineLinks(name string) Links { return Links{Self: "/v1/pipelines/" + name} }

// pipelineError words the pipelines package's refusals for the API.
func pipelineError(err error) error {
	var ar *pipelines.AlreadyRunningError
	var nf *pipelines.NotFoundError
	switch {
	case errors.As(err, &ar):
		return problem(http.StatusConflict, "already-running", "Already running",
			"%s is already running (run %s); follow it with GET /v1/pipelines/%s, or stop it at its gate with POST /v1/pipelines/%s/abort",
			ar.WorkflowID, ar.RunID, ar.Name, ar.Name)
	case errors.As(err, &nf):
		return notFoundf("no run of pipeline %q yet; start one with POST /v1/pipelines, or run its schedule with POST /v1/schedules/%s/trigger", nf.Name, nf.Name)
	}
	return err
}

// startPipeline is POST /v1/pipelines, as `imago pipeline start`: the bake, then
// each stage's rollout in order. One run per pipeline at a time (409).
func (s *Server) startPipeline(w http.ResponseWriter, r *http.Request) error {
	p, always, err := DecodeStartPipeline(r.Body, s.cfg.BakeRoots)
	if err != nil {
		return err
	}
	var needs []tokens.Scope
	if p.Bake != nil {
		needs = append(needs, tokens.Scope{Kind: tokens.Bake, Service: p.Bake.Service})
	}
	for _, st := range p.Stages {
		needs = append(needs, tokens.Scope{Kind: tokens.Deploy, Service: st.Rollout.Service, Env: st.Rollout.Environment})
	}
	if err := authorize(r, needs...); err != nil {
		return err
	}
	by := principal(r)
	run, err := pipelines.Start(r.Context(), s.cfg.Client, p, always, by)
	if err != nil {
		return pipelineError(err)
	}
	links := pipelineLinks(p.Name)
	w.Header().Set("Location", links.Self)
	return writeJSON(w, http.StatusCreated, StartedPipeline{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), Name: p.Name, Service: p.Service(),
		Summary: pipelines.Summary(p), Always: always, StartedBy: by, Links: links,
	})
}

// getPipeline is GET /v1/pipelines/{name}: the latest run of the pipeline, by
// hand or by its schedule, with its progress, as `imago pipeline status -o json`.
func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	run, err := s.latestPipeline(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, run)
}

// latestPipeline is pipelines.Latest (which also finds a run started a moment
// ago, before the visibility store lists it) with its errors as problems.
func (s *Server) latestPipeline(ctx context.Context, name string) (pipelines.Run, error) {
	run, err := pipelines.Latest(ctx, s.cfg.Client, name)
	if err != nil {
		return run, pipelineError(err)
	}
	return run, nil
}

// pipelineNeeds is what a decision on a pipeline's run needs: an approve,
// approve on the environment whose gate waits (with none waiting, on every
// stage's, as a gate may open before the update lands); an abort, deploy on
// every stage's environment, as starting it did.
func pipelineNeeds(p contract.PipelineProgress, decision string) []tokens.Scope {
	kind := tokens.Deploy
	if decision == contract.UpdateApprove {
		kind = tokens.Approve
		if p.Gate != "" {
			return []tokens.Scope{{Kind: kind, Service: p.Service, Env: p.Gate}}
		}
	}
	var needs []tokens.Scope
	for _, st := range p.Stages {
		needs = append(needs, tokens.Scope{Kind: kind, Service: p.Service, Env: st.Environment})
	}
	return needs
}

func (s *Server) approvePipeline(w http.ResponseWriter, r *http.Request) error {
	return s.decidePipeline(w, r, contract.UpdateApprove)
}

func (s *Server) abortPipeline(w http.ResponseWriter, r *http.Request) error {
	return s.decidePipeline(w, r, contract.UpdateAbort)
}

// decidePipeline is POST /v1/pipelines/{name}/approve|abort, as `imago pipeline
// approve|abort`: the latest run's validators refuse (409) what makes no sense
// in its phase — an approve when no gate waits, an abort while a stage rolls out.
func (s *Server) decidePipeline(w http.ResponseWriter, r *http.Request, decision string) error {
	return decideNamed(w, r, decision, namedDecision[contract.PipelineProgress]{
		latest: s.latestPipeline,
		needs:  pipelineNeeds,
		send: func(ctx context.Context, run pipelines.Run, _, decision, by, reason string) error {
			if run.Status != rollouts.StatusName(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING) {
				what := run.Status
				if run.Progress.Phase != "" {
					what = run.Progress.Phase.String()
				}
				return problem(http.StatusConflict, "decision-refused", "Decision refused",
					"%s is not running: its latest run (%s) %s; %s applies to a running pipeline", run.WorkflowID, run.RunID, what, decision)
			}
			// The update goes to the run just read, so the answer names the run decided.
			err := rollouts.SendDecision(ctx, s.cfg.Client, run.WorkflowID, run.RunID, decision, by, reason)
			if err == nil || ctx.Err() != nil || temporalUnavailable(err) {
				return err // unwrapped: Temporal unreachable stays 503
			}
			return runs.Refused(decision, err)
		},
		links: pipelineLinks,
	})
}
