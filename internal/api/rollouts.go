package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// decisions are the people-in-the-loop updates, one POST route each.
var decisions = []string{contract.UpdateApprove, contract.UpdateAbort, contract.UpdatePromote, contract.UpdateRollback}

// nameRE is the spec's rule for service and environment names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// StartedRollout answers a started rollout.
type StartedRollout struct {
	WorkflowID  string            `json:"workflowId"`
	RunID       string            `json:"runId"`
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	Image       contract.ImageRef `json:"image"`
	Strategy    string            `json:"strategy"`
	StartedBy   string            `json:"startedBy"`
	Action      string            `json:"action,omitempty"` // "rollback" for a rollback to the previous image
	Links       Links             `json:"links"`
}

// Links are where to follow a rollout.
type Links struct {
	Self   string `json:"self"`
	Events string `json:"events,omitempty"`
}

func rolloutLinks(service, env string) Links {
	self := "/v1/rollouts/" + service + "/" + env
	return Links{Self: self, Events: self + "/events"}
}

// startRollout is POST /v1/rollouts: as `imago rollout start`, an unknown or
// revoked image is refused before anything starts.
func (s *Server) startRollout(w http.ResponseWriter, r *http.Request) error {
	req, err := DecodeStartRollout(r.Body, s.cfg.BakeRoots)
	if err != nil {
		return err
	}
	ro := req.Spec
	needs := []tokens.Scope{{Kind: tokens.Deploy, Service: ro.Service, Env: ro.Environment}}
	if req.Bake != nil {
		needs = append(needs, tokens.Scope{Kind: tokens.Bake, Service: req.Bake.Service})
	}
	if err := authorize(r, needs...); err != nil {
		return err
	}
	if err := s.checkImage(r.Context(), ro); err != nil {
		return err
	}
	by := principal(r)
	run, err := rollouts.Start(r.Context(), s.cfg.Client, ro, rollouts.StartOptions{StartedBy: by, Bake: req.Bake})
	var refused *rollouts.RefusedError
	if errors.As(err, &refused) {
		return prefixed("spec.", refused.Errs) // a strategy the worker's provider cannot run
	}
	if err != nil {
		return err
	}
	links := rolloutLinks(ro.Service, ro.Place()) // a region's rollout is ENV@REGION in paths
	w.Header().Set("Location", links.Self)
	return writeJSON(w, http.StatusCreated, StartedRollout{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), Service: ro.Service, Environment: ro.Environment,
		Image: ro.Image, Strategy: ro.Strategy.Type, StartedBy: by, Links: links,
	})
}

// checkImage refuses, before anything starts, an unknown or revoked image and
// one whose entrypoint uses a variable spec.env does not provide.
func (s *Server) checkImage(ctx context.Context, ro spec.Rollout) error {
	if ro.Image.ID == "" {
		return nil
	}
	img, err := s.cfg.Catalog.Get(ctx, ro.Image.ID)
	if err != nil {
		return err
	}
	if err := img.Usable(); err != nil {
		return err
	}
	if err := ro.CheckImage(img.ID, img.Entrypoint, 0); err != nil {
		return prefixed("spec.", err)
	}
	return nil
}

// RolloutList answers GET /v1/rollouts.
type RolloutList struct {
	Rollouts []rollouts.Summary `json:"rollouts"`
}

// listRollouts is GET /v1/rollouts?service=S&environment=E&limit=N, newest first.
func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	o := rollouts.ListOptions{Service: q.Get("service"), Environment: q.Get("environment"), Limit: 50}
	var es contract.FieldErrors
	for _, f := range []struct{ name, v string }{{"service", o.Service}, {"environment", o.Environment}} {
		if f.v != "" && !nameRE.MatchString(f.v) {
			es = append(es, contract.FieldError{Field: "query." + f.name, Msg: fmt.Sprintf("%q must be 1-40 lowercase letters, digits or '-'", f.v)})
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			es = append(es, contract.FieldError{Field: "query.limit", Msg: fmt.Sprintf("%q: want a number from 1 to 1000", l)})
		}
		o.Limit = n
	}
	if len(es) > 0 {
		return es
	}
	list, err := rollouts.List(r.Context(), s.cfg.Client, o)
	if err != nil {
		return err
	}
	if list == nil {
		list = []rollouts.Summary{}
	}
	return writeJSON(w, http.StatusOK, RolloutList{Rollouts: list})
}

// target reads {service} and {env} from the path.
func target(r *http.Request) (service, env string, err error) {
	service, env = r.PathValue("service"), r.PathValue("env")
	var es contract.FieldErrors
	if !nameRE.MatchString(service) {
		es = append(es, contract.FieldError{Field: "path.service", Msg: fmt.Sprintf("%q must be 1-40 lowercase letters, digits or '-'", service)})
	}
	if !nameRE.MatchString(env) {
		es = append(es, contract.FieldError{Field: "path.env", Msg: fmt.Sprintf("%q must be 1-40 lowercase letters, digits or '-'", env)})
	}
	if len(es) > 0 {
		return "", "", es
	}
	return service, env, nil
}

// describeRollout returns the latest run of the rollout of service to env, or
// a 404 problem when there never was one.
func (s *Server) describeRollout(ctx context.Context, service, env string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	desc, err := s.cfg.Client.DescribeWorkflowExecution(ctx, contract.RolloutWorkflowID(service, env), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil, notFoundf("no rollout of %s to %s yet; start one with POST /v1/rollouts", service, env)
	}
	return desc, err
}

// getRollout is GET /v1/rollouts/{service}/{env}: the latest rollout, as
// `imago rollout status -o json` shows it.
func (s *Server) getRollout(w http.ResponseWriter, r *http.Request) error {
	service, env, err := target(r)
	if err != nil {
		return err
	}
	st, err := rollouts.GetLive(r.Context(), s.cfg.Client, s.cfg.DataConverter, service, env)
	if err != nil {
		if _, derr := s.describeRollout(r.Context(), service, env); derr != nil {
			return derr
		}
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// Decided answers an accepted decision.
type Decided struct {
	WorkflowID string `json:"workflowId"`
	Decision   string `json:"decision"`
	By         string `json:"by"`
	Reason     string `json:"reason,omitempty"`
	Links      Links  `json:"links"`
}

// decide is POST /v1/rollouts/{service}/{env}/{decision}, as `imago rollout
// approve|abort|promote|rollback`: the rollout's validators refuse (409) what
// makes no sense in its phase. A rollback of a rollout that has ended starts a
// rollout of the previous deployable image (201).
func (s *Server) decide(decision string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		service, env, err := target(r)
		if err != nil {
			return err
		}
		req, err := DecodeDecision(r.Body)
		if err != nil {
			return err
		}
		ctx := r.Context()
		desc, err := s.describeRollout(ctx, service, env)
		if err != nil {
			return err
		}
		by := principal(r)
		id := contract.RolloutWorkflowID(service, env)
		if desc.GetWorkflowExecutionInfo().GetCloseTime() != nil {
			if decision != contract.UpdateRollback {
				return conflictf("%s is not running (its last run ended %s); %s applies to a running rollout",
					id, desc.GetWorkflowExecutionInfo().GetCloseTime().AsTime().UTC().Format(time.RFC3339), decision)
			}
			run, back, err := rollouts.RollbackToPrevious(ctx, s.cfg.Client, s.cfg.Catalog, service, env, by)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) || temporalUnavailable(err) {
					return err
				}
				var ar *rollouts.AlreadyRunningError
				if errors.As(err, &ar) {
					return err
				}
				return conflictf("%v", err)
			}
			links := rolloutLinks(service, env)
			w.Header().Set("Location", links.Self)
			return writeJSON(w, http.StatusCreated, StartedRollout{
				WorkflowID: run.GetID(), RunID: run.GetRunID(), Service: service, Environment: env,
				Image: back.Image, Strategy: back.Strategy.Type, StartedBy: by, Action: contract.ActionRollback, Links: links,
			})
		}
		if err := rollouts.Decide(ctx, s.cfg.Client, service, env, decision, by, req.Reason); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return problem(http.StatusConflict, "decision-refused", "Decision refused", "%v", err)
		}
		return writeJSON(w, http.StatusOK, Decided{WorkflowID: id, Decision: decision, By: by, Reason: req.Reason, Links: rolloutLinks(service, env)})
	}
}

// temporalUnavailable reports whether err says Temporal could not be reached.
func temporalUnavailable(err error) bool {
	var u *serviceerror.Unavailable
	return errors.As(err, &u)
}
