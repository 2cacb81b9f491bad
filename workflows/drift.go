package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// Drift compares what the provider runs with the inventory's live deployments
// (the DetectDrift activity) and returns what differs. It never changes a fleet
// or a route: a repair is a new rollout of the live image (imago drift
// --repair). Run it on a schedule with imago drift schedule; the telemetry
// interceptor turns its result into the imago_drift_instances gauge.
func Drift(ctx workflow.Context, in contract.DriftInput) (contract.DriftReport, error) {
	var rep contract.DriftReport
	err := workflow.ExecuteActivity(quickOptions(ctx, "compare the provider's fleets and routes with the inventory"),
		contract.ActivityDetectDrift, in).Get(ctx, &rep)
	if err != nil {
		return rep, err
	}
	workflow.SetCurrentDetails(ctx, rep.Summary)
	return rep, nil
}
