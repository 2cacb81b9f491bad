package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// DetectDrift compares what the provider runs (its fleets, their instances and
// image, the routers' routes) with what the inventory says is live, for every
// service and environment in.Service and in.Environment select. It changes
// nothing on the provider: it records each target's finding in the catalog
// (imago status shows it) and publishes a dev.imago.drift.detected event for
// each target that drifted. A target whose rollout, bake or pipeline runs is
// skipped: its fleets are in motion.
func (a *Activities) DetectDrift(ctx context.Context, in contract.DriftInput) (contract.DriftReport, error) {
	rep := contract.DriftReport{Provider: a.Provider.Name(), Targets: []contract.DriftTarget{}}
	env, region := contract.SplitPlace(in.Environment) // -e prod@eu-west-1: one region
	fleets, err := a.Provider.ListFleets(ctx, provider.Filter{Service: in.Service, Environment: env})
	if err != nil {
		return rep, providerError(err)
	}
	byKey := map[contract.RouteKey][]contract.Fleet{}
	for _, f := range fleets {
		k := contract.RouteKey{Service: f.Service, Environment: f.Environment, Region: f.Region}
		if region != "" && k.Region != region {
			continue
		}
		byKey[k] = append(byKey[k], f)
	}
	deployed, err := a.Catalog.Deployed(ctx)
	if err != nil {
		return rep, err
	}
	for _, k := range deployed {
		if (in.Service == "" || k.Service == in.Service) && (in.Environment == "" || k.Environment == in.Environment || contract.Place(k.Environment, k.Region) == in.Environment) {
			if _, ok := byKey[k]; !ok {
				byKey[k] = nil
			}
		}
	}
	var busy map[contract.RouteKey]bool
	if a.Temporal != nil {
		if busy, err = a.busyKeys(ctx); err != nil {
			return rep, err
		}
	}
	keys := make([]contract.RouteKey, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	now := time.Now().UTC()
	for _, k := range keys {
		// A deployment to a region is checked as environment@region.
		t := contract.DriftTarget{Service: k.Service, Environment: contract.Place(k.Environment, k.Region), Checked: now}
		if busyKey(busy, k) {
			t.Skipped = "a rollout, bake or pipeline of it is running"
		} else if err := a.driftOf(ctx, k, byKey[k], &t); err != nil {
			return rep, err
		}
		activity.RecordHeartbeat(ctx, k.String())
		if err := a.Catalog.RecordDrift(ctx, t); err != nil {
			return rep, err
		}
		rep.Targets = append(rep.Targets, t)
		rep.Instances += t.Instances
	}
	rep.Summary = driftSummary(rep)
	return rep, a.publishDrift(ctx, rep)
}

// driftOf fills t with the differences between the fleets the provider has
// for k and the inventory's live deployment of k.
func (a *Activities) driftOf(ctx context.Context, k contract.RouteKey, fleets []contract.Fleet, t *contract.DriftTarget) error {
	live, err := a.Catalog.Live(ctx, k.Service, contract.Place(k.Environment, k.Region))
	switch {
	case err == nil && live.FleetID == "":
		t.LiveImage, t.Skipped = live.ImageID, "the inventory names no live fleet (deployed before imago recorded fleets)"
		return nil
	case err == nil:
		t.LiveImage, t.LiveFleet = live.ImageID, live.FleetID
	case !errors.Is(err, catalog.ErrNotFound):
		return err
	}
	add := func(it contract.DriftItem, instances int) {
		t.Items = append(t.Items, it)
		t.Instances += instances
	}
	found := false
	for _, f := range fleets {
		if f.ID != live.FleetID { // with nothing live, every fleet
			running := 0
			for _, in := range f.Instances {
				if in.State == contract.InstanceRunning {
					running++
				}
			}
			add(contract.DriftItem{Kind: contract.DriftExtraFleet, FleetID: f.ID, Image: f.ImageID, Want: live.FleetID,
				Detail: fmt.Sprintf("fleet %s (image %s, %d running) is not the live one and no rollout is making it", f.ID, f.ImageID, running)}, running)
			continue
		}
		found = true
		// Describe: the instances' live state, not the listing's.
		f, err := a.Provider.Describe(ctx, f.ID)
		if provider.ErrorCode(err) == provider.NotFound {
			found = false // gone since the listing
			continue
		}
		if err != nil {
			return providerError(err)
		}
		if f.ImageID != live.ImageID {
			add(contract.DriftItem{Kind: contract.DriftOtherImage, FleetID: f.ID, Image: f.ImageID, Want: live.ImageID,
				Detail: fmt.Sprintf("live fleet %s runs image %s; the inventory says %s", f.ID, f.ImageID, live.ImageID)}, len(f.Instances))
		}
		for _, in := range f.Instances {
			if in.State == contract.InstanceRunning {
				continue
			}
			why := in.State
			if in.Exit != "" {
				why += " (" + in.Exit + ")"
			}
			add(contract.DriftItem{Kind: contract.DriftMissingInstance, FleetID: f.ID, InstanceID: in.ID, PID: in.PID, Want: contract.InstanceRunning,
				Detail: fmt.Sprintf("instance %s of live fleet %s is %s", in.ID, f.ID, why)}, 1)
		}
	}
	if live.FleetID != "" && !found {
		add(contract.DriftItem{Kind: contract.DriftMissingFleet, FleetID: live.FleetID, Want: live.ImageID,
			Detail: fmt.Sprintf("live fleet %s (image %s) is gone from the provider", live.FleetID, live.ImageID)}, 0)
	}
	if live.FleetID == "" {
		return nil // nothing live: no route to expect
	}
	r, err := a.Provider.Route(ctx, k)
	if err != nil {
		return providerError(err)
	}
	if why := routeDrift(r, live.FleetID); why != "" {
		add(contract.DriftItem{Kind: contract.DriftRoute, FleetID: live.FleetID, Want: live.FleetID + "=100",
			Detail: "the route " + why}, 0)
	}
	return nil
}

// routeDrift says how r differs from all traffic to fleet, or "".
func routeDrift(r contract.Route, fleet string) string {
	var split []string
	for _, b := range r.Backends {
		split = append(split, fmt.Sprintf("%s=%d", b.FleetID, b.Weight))
	}
	switch {
	case len(r.Backends) == 0:
		return "sends traffic nowhere (no backends)"
	case r.Weight(fleet) != 100 || len(r.Backends) != 1:
		return "splits traffic " + strings.Join(split, ", ") + ", not all to the live fleet " + fleet
	case len(r.Matches) > 0 || r.Stickiness != nil || r.Mirror != nil:
		return "still carries header, cookie, stickiness or mirror rules"
	}
	return ""
}

func driftSummary(rep contract.DriftReport) string {
	var drifted, skipped []string
	for _, t := range rep.Targets {
		switch {
		case t.Skipped != "":
			skipped = append(skipped, t.Environment+"/"+t.Service)
		case t.Drifted():
			drifted = append(drifted, fmt.Sprintf("%s/%s (%d items, %d instances)", t.Environment, t.Service, len(t.Items), t.Instances))
		}
	}
	s := fmt.Sprintf("checked %d targets on %s: no drift", len(rep.Targets), rep.Provider)
	if len(drifted) > 0 {
		s = fmt.Sprintf("checked %d targets on %s: drift in %s", len(rep.Targets), rep.Provider, strings.Join(drifted, ", "))
	}
	if len(skipped) > 0 {
		s += "; skipped (in motion) " + strings.Join(skipped, ", ")
	}
	return s
}

// publishDrift publishes one event per drifted target. Its ID is the run's
// and the target's place, so a retry sends the same IDs.
func (a *Activities) publishDrift(ctx context.Context, rep contract.DriftReport) error {
	if a.Events == nil || !activity.IsActivity(ctx) {
		return nil
	}
	info := activity.GetInfo(ctx)
	for i, t := range rep.Targets {
		if !t.Drifted() {
			continue
		}
		var what []string
		for _, it := range t.Items {
			what = append(what, it.Detail)
		}
		ev := contract.NewEvent(contract.EventDriftDetected, info.WorkflowNamespace, t.Service+"/"+t.Environment, i+1, t.Checked,
			contract.EventData{Service: t.Service, Environment: t.Environment, Image: t.LiveImage, Fleet: t.LiveFleet,
				Message: strings.Join(what, "; "), WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID})
		if err := a.Events.Publish(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}
