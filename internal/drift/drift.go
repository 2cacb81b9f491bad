// Package drift runs imago's drift check (workflows.Drift on a worker, which
// sees the provider) and repairs what it finds with new rollouts.
package drift

import (
	"context"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// Check runs one drift check on a worker and returns its report. Checks of the
// same selection by the same person share one run while it lasts.
func Check(ctx context.Context, c client.Client, in contract.DriftInput, by string) (contract.DriftReport, error) {
	var rep contract.DriftReport
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       fmt.Sprintf("drift/%s/%s/%s", OrAll(in.Environment), OrAll(in.Service), by),
		TaskQueue:                contract.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("drift check · %s/%s", OrAll(in.Environment), OrAll(in.Service)),
	}, contract.WorkflowDrift, in)
	if err != nil {
		return rep, fmt.Errorf("start the drift check: %w", err)
	}
	if err := run.Get(ctx, &rep); err != nil {
		return rep, fmt.Errorf("drift check: %w", err)
	}
	return rep, nil
}

// OrAll is s, or "*" (every service or environment) when s is empty.
func OrAll(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// Repair is a rollout started to repair one drifted target.
type Repair struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Image       string `json:"image,omitempty"`
	WorkflowID  string `json:"workflowId,omitempty"`
	RunID       string `json:"runId,omitempty"`
	Error       string `json:"error,omitempty"` // why none was started
}

// RepairAll starts, for each target of rep that drifted, a rollout of its live
// image with the last rollout's spec (rollouts.StartLastSpec): a new fleet
// replaces the drifted one through the spec's strategy, gates and checks;
// nothing is patched in place. A target with nothing live cannot be repaired
// so (its extra fleets are the reaper's). It returns one Repair per drifted
// target, and the runs started, in the same order (nil where none started).
func RepairAll(ctx context.Context, c client.Client, rep contract.DriftReport, by string) ([]Repair, []client.WorkflowRun) {
	var out []Repair
	var runs []client.WorkflowRun
	for _, t := range rep.Targets {
		if !t.Drifted() || t.Skipped != "" {
			continue
		}
		r := Repair{Service: t.Service, Environment: t.Environment, Image: t.LiveImage}
		var run client.WorkflowRun
		if t.LiveImage == "" {
			r.Error = "nothing is live there to roll out again; terminate its extra fleets with imago reaper run --apply"
		} else {
			var err error
			run, _, err = rollouts.StartLastSpec(ctx, c, t.Service, t.Environment, func() (string, error) { return t.LiveImage, nil },
				rollouts.StartOptions{StartedBy: by})
			if err != nil {
				r.Error = strings.TrimSpace(err.Error())
			} else {
				r.WorkflowID, r.RunID = run.GetID(), run.GetRunID()
			}
		}
		out = append(out, r)
		runs = append(runs, run)
	}
	return out, runs
}

// Result is a drift check and the repairs it started: what imago drift -o json
// prints and POST /v1/drift answers.
type Result struct {
	contract.DriftReport
	Repairs []Repair `json:"repairs,omitempty"`
}

// Run checks for drift and, with repair, starts the repairs (RepairAll).
func Run(ctx context.Context, c client.Client, in contract.DriftInput, repair bool, by string) (Result, error) {
	rep, err := Check(ctx, c, in, by)
	if err != nil {
		return Result{}, err
	}
	res := Result{DriftReport: rep}
	if repair {
		res.Repairs, _ = RepairAll(ctx, c, rep, by)
	}
	return res, nil
}
