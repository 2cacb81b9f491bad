package activities

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// FindOrphans lists the provider's fleets and returns those that leaked: a
// rollout that died before it could clean up, a fleet made by hand. It never
// terminates anything.
func (a *Activities) FindOrphans(ctx context.Context, in contract.FindOrphansInput) (contract.FindOrphansResult, error) {
	out := contract.FindOrphansResult{Provider: a.Provider.Name()}
	fleets, err := a.Provider.ListFleets(ctx, provider.Filter{})
	if err != nil {
		return out, providerError(err)
	}
	busy, err := a.busyKeys(ctx)
	if err != nil {
		return out, err
	}
	routed := map[string]bool{}
	seen := map[contract.RouteKey]bool{}
	for _, f := range fleets {
		key := contract.RouteKey{Service: f.Service, Environment: f.Environment, Region: f.Region}
		if seen[key] {
			continue
		}
		seen[key] = true
		r, err := a.Provider.Route(ctx, key)
		if err != nil {
			return out, providerError(err)
		}
		for _, id := range r.FleetIDs() {
			routed[id] = true
		}
	}
	now := time.Now()
	for _, f := range fleets {
		out.Checked++
		switch {
		case routed[f.ID]:
			out.Routed++
		case busyKey(busy, contract.RouteKey{Service: f.Service, Environment: f.Environment}):
			out.Busy++
		case now.Sub(f.Created) < in.Grace:
			out.Young++
		default:
			out.Orphans = append(out.Orphans, contract.Orphan{FleetID: f.ID, Service: f.Service, Environment: f.Environment,
				ImageID: f.ImageID, Instances: len(f.Instances), Created: f.Created, Role: f.Labels[contract.LabelRole]})
		}
	}
	sort.Slice(out.Orphans, func(i, j int) bool { return out.Orphans[i].FleetID < out.Orphans[j].FleetID })
	return out, nil
}

// busyKey tells whether busy (busyKeys) holds k: its service and environment
// (in any region: the search attributes name no region), or its service alone.
func busyKey(busy map[contract.RouteKey]bool, k contract.RouteKey) bool {
	return busy[contract.RouteKey{Service: k.Service, Environment: k.Environment}] || busy[contract.RouteKey{Service: k.Service}]
}

// busyKeys are the service/environment pairs of running rollouts and pipelines,
// and the services (empty environment) of running bakes, whose image tests boot
// fleets of their own.
func (a *Activities) busyKeys(ctx context.Context) (map[contract.RouteKey]bool, error) {
	busy := map[contract.RouteKey]bool{}
	if a.Temporal == nil {
		return nil, temporal.NewNonRetryableApplicationError(
			"the reaper needs a Temporal client to see running rollouts; run it on imago-worker", contract.ErrProvider, nil)
	}
	var token []byte
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "ExecutionStatus = 'Running' AND WorkflowType IN ('Rollout', 'Bake', 'Pipeline')", NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list running workflows: %w", err)
		}
		for _, info := range resp.Executions {
			sa := info.GetSearchAttributes()
			key := contract.RouteKey{Service: Keyword(sa, contract.ServiceAttr)}
			if info.GetType().GetName() == "Rollout" {
				key.Environment = Keyword(sa, contract.EnvironmentAttr)
			}
			busy[key] = true
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return busy, nil
		}
	}
}
