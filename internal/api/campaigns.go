package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// StartedCampaign answers a started campaign.
type StartedCampaign struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Name       string `json:"name"`
	Summary    string `json:"summary"`
	StartedBy  string `json:"startedBy"`
	Links      Links  `json:"links"`
}

func campaignLinks(name string) Links { return Links{Self: "/v1/campaigns/" + name} }

// campaignError words the campaigns package's refusals for the API.
func campaignError(err error) error {
	var ar *campaigns.AlreadyRunningError
	var nf *campaigns.NotFoundError
	switch {
	case errors.As(err, &ar):
		return problem(http.StatusConflict, "already-running", "Already running",
			"%s is already running (run %s); follow it with GET /v1/campaigns/%s, or end it with POST /v1/campaigns/%s/abort",
			ar.WorkflowID, ar.RunID, ar.Name, ar.Name)
	case errors.As(err, &nf):
		return notFoundf("no campaign %q; start one with POST /v1/campaigns", nf.Name)
	}
	return err
}

// startCampaign is POST /v1/campaigns, as `imago campaign start`: the body is
// the campaign spec as JSON. It needs deploy on every service in every ring's
// environment.
func (s *Server) startCampaign(w http.ResponseWriter, r *http.Request) error {
	var c contract.CampaignSpec
	if err := decodeJSON(r.Body, &c); err != nil {
		return err
	}
	if err := spec.NormalizeCampaign(&c); err != nil {
		return err
	}
	// A selection is known only when the campaign plans: deploy on every
	// service of each ring environment.
	services := c.Services
	if c.Select != nil {
		services = []string{"*"}
	}
	var needs []tokens.Scope
	for _, ring := range c.Rings {
		for _, env := range ring.Environments {
			for _, svc := range services {
				needs = append(needs, tokens.Scope{Kind: tokens.Deploy, Service: svc, Env: env})
			}
		}
	}
	if err := authorize(r, needs...); err != nil {
		return err
	}
	by := principal(r)
	run, err := campaigns.Start(r.Context(), s.cfg.Client, c, by)
	if err != nil {
		return campaignError(err)
	}
	links := campaignLinks(c.Name)
	w.Header().Set("Location", links.Self)
	return writeJSON(w, http.StatusCreated, StartedCampaign{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), Name: c.Name, Summary: campaigns.Summary(c), StartedBy: by, Links: links,
	})
}

// getCampaign is GET /v1/campaigns/{name}: its current run and progress, as
// `imago campaign status -o json`.
func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	run, err := campaigns.Latest(r.Context(), s.cfg.Client, name)
	if err != nil {
		return campaignError(err)
	}
	return writeJSON(w, http.StatusOK, run)
}

// campaignNeeds is what a decision on a campaign needs, on every rollout it
// has (each service in each of its environments): resume and approve, the
// approve scope; abort, deploy, as starting it did. Before the campaign knows
// its rollouts, admin.
func campaignNeeds(p contract.CampaignProgress, decision string) []tokens.Scope {
	kind := tokens.Approve
	if decision == contract.UpdateAbort {
		kind = tokens.Deploy
	}
	var needs []tokens.Scope
	for _, rs := range p.Rings {
		for _, t := range rs.Targets {
			needs = append(needs, tokens.Scope{Kind: kind, Service: t.Service, Env: t.Environment})
		}
	}
	if len(needs) == 0 {
		needs = []tokens.Scope{{Kind: tokens.Admin}}
	}
	return needs
}

func (s *Server) resumeCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.decideCampaign(w, r, contract.UpdateResume)
}

func (s *Server) approveCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.decideCampaign(w, r, contract.UpdateApprove)
}

func (s *Server) abortCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.decideCampaign(w, r, contract.UpdateAbort)
}

// decideCampaign is POST /v1/campaigns/{name}/resume|approve|abort, as `imago
// campaign resume|approve|abort`: the campaign refuses (409) what makes no
// sense now — a resume when it is not halted, an approve when no ring waits.
func (s *Server) decideCampaign(w http.ResponseWriter, r *http.Request, decision string) error {
	return decideNamed(w, r, decision, namedDecision[contract.CampaignProgress]{
		latest: func(ctx context.Context, name string) (campaigns.Run, error) {
			run, err := campaigns.Latest(ctx, s.cfg.Client, name)
			return run, campaignError(err)
		},
		needs: campaignNeeds,
		send: func(ctx context.Context, _ campaigns.Run, name, decision, by, reason string) error {
			return campaigns.Decide(ctx, s.cfg.Client, name, decision, by, reason)
		},
		links: campaignLinks,
	})
}
