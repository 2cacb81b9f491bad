// Package campaigns is the client side of imago's campaigns (one image change
// rolled across many services, ring by ring): starting one, reading its
// progress, and resume, approve and abort.
package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/runs"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// AlreadyRunningError refuses a second run of the same campaign (Kind "campaign").
type AlreadyRunningError = runs.AlreadyRunningError

// NotFoundError: no run of the campaign exists.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no campaign %q found; start one with: imago campaign start -f FILE", e.Name)
}

// kind names campaigns in the CLI's commands and in errors.
const kind = "campaign"

// Start validates a campaign spec and starts it (workflow ID campaign/NAME).
func Start(ctx context.Context, c client.Client, s contract.CampaignSpec, startedBy string) (client.WorkflowRun, error) {
	if err := spec.NormalizeCampaign(&s); err != nil {
		return nil, err
	}
	id := contract.CampaignWorkflowID(s.Name)
	opts := rollouts.ExclusiveStart(id)
	opts.TypedSearchAttributes = temporal.NewSearchAttributes(contract.PhaseAttr.ValueSet(string(contract.PhasePending)))
	opts.StaticSummary, opts.StaticDetails = Summary(s), "started by "+startedBy
	return runs.Start(ctx, c, kind, s.Name, opts, workflows.Campaign, contract.CampaignInput{Spec: s, StartedBy: startedBy})
}

// Summary is the web UI's one-line summary: "campaign base-2026-12: 3
// services, channel stable: staging → prod (approval)".
func Summary(s contract.CampaignSpec) string {
	rings := make([]string, len(s.Rings))
	for i, r := range s.Rings {
		rings[i] = strings.Join(r.Environments, "+")
		if r.Approval.Required {
			rings[i] += " (approval)"
		}
	}
	what := fmt.Sprintf("%d services", len(s.Services))
	if s.Select != nil {
		what = s.Select.String()
	}
	how := "channel " + s.Image.Channel
	if s.Rebuilds() {
		how = "each rebuilt on the base"
	}
	return fmt.Sprintf("campaign %s: %s, %s: %s", s.Name, what, how, strings.Join(rings, " → "))
}

// Run is the current (latest) run of a campaign and its progress.
type Run = runs.Run[contract.CampaignProgress]

// Latest reads the latest run of campaign name (continue-as-new keeps its
// workflow ID) and its progress.
func Latest(ctx context.Context, c client.Client, name string) (Run, error) {
	id := contract.CampaignWorkflowID(name)
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return Run{}, &NotFoundError{Name: name}
	}
	if err != nil {
		return Run{}, fmt.Errorf("describe %s: %w", id, err)
	}
	return runs.WithProgress(ctx, c, kind, runs.Of[contract.CampaignProgress](desc.GetWorkflowExecutionInfo()))
}

// Decide sends resume, approve or abort to the current run of campaign name
// and waits until it is accepted; a refusal carries the campaign's reason.
func Decide(ctx context.Context, c client.Client, name, update, by, reason string) error {
	id := contract.CampaignWorkflowID(name)
	err := rollouts.SendDecision(ctx, c, id, "", update, by, reason)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// No campaign, or one that ended: an update reaches running ones only.
		desc, derr := c.DescribeWorkflowExecution(ctx, id, "")
		if derr != nil {
			return &NotFoundError{Name: name}
		}
		return fmt.Errorf("%s refused: campaign %s is not running: it ended %s", update, name,
			rollouts.StatusName(desc.GetWorkflowExecutionInfo().GetStatus()))
	}
	return runs.Refused(update, err)
}
