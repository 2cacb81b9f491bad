// Package freezes starts, ends and lists freezes (stop-the-line) for the CLI
// and the API: the catalog keeps them (catalog.StartFreeze), rollouts check
// them before provisioning and before each traffic change (workflows/gates.go),
// and ending one wakes the rollouts it held.
package freezes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// StartOptions start a freeze.
type StartOptions struct {
	Service     string // empty: every service
	Environment string // empty: every environment
	Reason      string
	By          string
	Until       *time.Time // nil: until someone ends it
}

// Problem is bad input, naming the field (as the CLI flag or the API field).
type Problem struct {
	Field, Msg string
}

func (p *Problem) Error() string { return p.Field + ": " + p.Msg }

// Validate refuses a freeze without a reason or whose until has passed.
func (o StartOptions) Validate(now time.Time) error {
	switch {
	case strings.TrimSpace(o.Reason) == "":
		return &Problem{"reason", "is required: say why the line stops (it is shown to everyone it holds)"}
	case o.Until != nil && !o.Until.After(now):
		return &Problem{"until", fmt.Sprintf("%s has passed; give a later time (RFC 3339, e.g. %s) or a duration such as 2h", o.Until.UTC().Format(time.RFC3339), now.Add(2*time.Hour).UTC().Format(time.RFC3339))}
	}
	return nil
}

// Start records a freeze. Rollouts it covers hold before their next
// provisioning or traffic change: each checks the catalog there.
func Start(ctx context.Context, cat *catalog.Catalog, o StartOptions) (contract.Freeze, error) {
	now := time.Now().UTC()
	if err := o.Validate(now); err != nil {
		return contract.Freeze{}, err
	}
	f := contract.Freeze{Service: o.Service, Environment: o.Environment, Reason: o.Reason, By: o.By, Since: now, Until: o.Until}
	e, err := cat.StartFreeze(ctx, f)
	return e.Freeze, err
}

// Ended is what End did.
type Ended struct {
	Freeze contract.Freeze `json:"freeze"`
	// Signalled are the workflow IDs of the frozen rollouts told to check again.
	Signalled []string `json:"signalled"`
}

// End ends the freeze of exactly this scope (catalog.ErrNotFound when none is
// in force) and signals every running rollout in phase frozen that it could
// hold; one that is not listed yet finds out at its next recheck.
func End(ctx context.Context, cat *catalog.Catalog, c client.Client, service, environment, by string) (Ended, error) {
	e, err := cat.EndFreeze(ctx, service, environment, by, time.Now().UTC())
	if err != nil {
		return Ended{}, err
	}
	out := Ended{Freeze: e.Freeze, Signalled: []string{}}
	ids, err := frozenRollouts(ctx, c, service, environment)
	if err != nil {
		return out, fmt.Errorf("the freeze of %s ended, but the rollouts it held could not be listed (each checks again within %s): %w", e.Scope(), contract.FreezeRecheck, err)
	}
	var errs []error
	for _, id := range ids {
		err := c.SignalWorkflow(ctx, id, "", contract.SignalFreezeChanged, nil)
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			out.Signalled = append(out.Signalled, id)
		case errors.As(err, &nf): // it ended meanwhile
		default:
			errs = append(errs, fmt.Errorf("signal %s: %w", id, err))
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("the freeze of %s ended; %d rollouts could not be told and check again within %s: %w", e.Scope(), len(errs), contract.FreezeRecheck, errors.Join(errs...))
	}
	return out, nil
}

// frozenRollouts are the IDs of the running rollouts in phase frozen that a
// freeze of service and environment (empty: any) covers.
func frozenRollouts(ctx context.Context, c client.Client, service, environment string) ([]string, error) {
	q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND %s = '%s'",
		contract.WorkflowRollout, contract.PhaseAttr.GetName(), contract.PhaseFrozen)
	if service != "" {
		q += fmt.Sprintf(" AND %s = '%s'", contract.ServiceAttr.GetName(), service)
	}
	if environment != "" {
		q += fmt.Sprintf(" AND %s = '%s'", contract.EnvironmentAttr.GetName(), environment)
	}
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, info := range resp.Executions {
			ids = append(ids, info.GetExecution().GetWorkflowId())
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return ids, nil
		}
	}
}

// List returns the freezes in force now.
func List(ctx context.Context, cat *catalog.Catalog) ([]contract.Freeze, error) {
	fs, err := cat.Freezes(ctx, time.Now())
	if fs == nil {
		fs = []contract.Freeze{}
	}
	return fs, err
}

// ParseUntil reads --until: an RFC 3339 time or a duration from now (2h).
func ParseUntil(s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		t := now.Add(d).UTC()
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, &Problem{"until", fmt.Sprintf("%q is neither a time (RFC 3339, e.g. %s) nor a duration such as 2h", s, now.Add(2*time.Hour).UTC().Format(time.RFC3339))}
	}
	return &t, nil
}
