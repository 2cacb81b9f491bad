package workflows

import (
	"fmt"
	"sort"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// reaperEndsCanceled is the workflow change that ends a cancelled sweep
// canceled, leaving the rest for the next one (before: each remaining Terminate
// failed at once, and the sweep completed).
const reaperEndsCanceled = "reaper-ends-canceled"

// Reaper is the leak collector: it lists the provider's fleets, keeps those a
// route sends traffic to, those a running rollout, bake or pipeline of their
// service may own, and those younger than the grace period, and terminates the
// rest — or, by default, only reports them. Run it on a schedule (imago reaper
// schedule).
func Reaper(ctx workflow.Context, in contract.ReaperInput) (contract.ReaperResult, error) {
	grace := in.Grace
	if grace <= 0 {
		grace = contract.DefaultReaperGrace
	}
	res := contract.ReaperResult{DryRun: !in.Apply}
	if err := workflow.ExecuteActivity(quickOptions(ctx, "find leaked fleets older than "+grace.String()), contract.ActivityFindOrphans,
		contract.FindOrphansInput{Grace: grace}).Get(ctx, &res.Found); err != nil {
		return res, err
	}
	ids := make([]string, len(res.Found.Orphans))
	for i, o := range res.Found.Orphans {
		ids[i] = o.FleetID
	}
	kept := fmt.Sprintf("kept %d routed, %d owned by running workflows, %d younger than %s", res.Found.Routed, res.Found.Busy, res.Found.Young, grace)
	if !in.Apply || len(ids) == 0 {
		res.Summary = fmt.Sprintf("dry run: would terminate %d leaked fleets %v; %s", len(ids), ids, kept)
		if in.Apply {
			res.Summary = "no leaked fleets; " + kept
		}
		workflow.SetCurrentDetails(ctx, res.Summary)
		return res, nil
	}
	endsCanceled := workflow.GetVersion(ctx, reaperEndsCanceled, workflow.DefaultVersion, 1) >= 1
	for _, o := range res.Found.Orphans {
		err := workflow.ExecuteActivity(terminateOptions(ctx, fmt.Sprintf("terminate leaked %s (%s/%s)", o.FleetID, o.Environment, o.Service)),
			contract.ActivityTerminate, contract.TerminateInput{FleetID: o.FleetID}).Get(ctx, nil)
		if endsCanceled && temporal.IsCanceledError(err) {
			return res, err // cancelled: the rest stays for the next sweep
		}
		if err != nil {
			if res.Failed == nil {
				res.Failed = map[string]string{}
			}
			res.Failed[o.FleetID] = reason(err) // e.g. a route took it since the listing: the provider refuses
			continue
		}
		res.Terminated = append(res.Terminated, o.FleetID)
	}
	res.Summary = fmt.Sprintf("terminated %d leaked fleets %v", len(res.Terminated), res.Terminated)
	if len(res.Failed) > 0 {
		var why []string
		failed := make([]string, 0, len(res.Failed))
		for id := range res.Failed {
			failed = append(failed, id)
		}
		sort.Strings(failed) // no map order in workflow code
		for _, id := range failed {
			why = append(why, id+": "+res.Failed[id])
		}
		res.Summary += fmt.Sprintf("; %d not terminated (%s)", len(res.Failed), strings.Join(why, "; "))
	}
	res.Summary += "; " + kept
	workflow.SetCurrentDetails(ctx, res.Summary)
	return res, nil
}
