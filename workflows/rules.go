package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// routeRulesChange is the workflow change that gives a canary's routes the
// rules its spec asks for: setHeaderRoute and setMirrorRoute steps and
// strategy.stickiness. Only a spec with such rules reaches it, and runs
// recorded before it had none.
const routeRulesChange = "route-rules"

// canaryRules are the route rules a canary has set so far. They ride on every
// route it sets below 100% (a setWeight keeps them) and are gone at cutover;
// revert restores the route from before the rollout, which has none.
type canaryRules struct {
	on      bool // the spec has rules and the run has routeRulesChange
	matches []contract.MatchRoute
	mirror  *contract.Mirror
	sticky  *contract.Stickiness
}

// usesRouteRules reports whether a canary strategy sets any route rule.
func usesRouteRules(s contract.Strategy) bool {
	return s.Stickiness != nil || slices.ContainsFunc(s.Steps, func(st contract.Step) bool {
		return st.SetHeaderRoute != nil || st.SetMirrorRoute != nil
	})
}

// startRules arms the canary's rules: stickiness from its first route on.
func (r *rollout) startRules(ctx workflow.Context) {
	if !usesRouteRules(r.spec.Strategy) {
		return
	}
	r.rules.on = workflow.GetVersion(ctx, routeRulesChange, workflow.DefaultVersion, 1) >= 1
	if s := r.spec.Strategy.Stickiness; r.rules.on && s != nil {
		sticky := *s
		r.rules.sticky = &sticky
	}
}

// setRule runs a setHeaderRoute or setMirrorRoute step: the rule changes, and
// the route is set again with the new fleet at its current weight.
func (r *rollout) setRule(ctx workflow.Context, step string, s contract.Step, prev contract.Route, fleet contract.Fleet, weight int) error {
	if !r.rules.on {
		return r.stopped()
	}
	var what string
	switch {
	case s.SetHeaderRoute != nil:
		h := *s.SetHeaderRoute
		r.progress.Step = fmt.Sprintf("%s setHeaderRoute %s", step, h.Name)
		r.rules.matches = setMatch(r.rules.matches, h, fleet.ID)
		what = "header route " + h.Name + " removed"
		if len(h.Match) > 0 {
			what = contract.RouteRules{Matches: []contract.MatchRoute{{Name: h.Name, FleetID: fleet.ID, Match: h.Match}}}.String()
		}
	case s.SetMirrorRoute != nil:
		p := s.SetMirrorRoute.Percent
		r.progress.Step = fmt.Sprintf("%s setMirrorRoute %d%%", step, p)
		r.rules.mirror, what = nil, "mirror removed"
		if p > 0 {
			r.rules.mirror = &contract.Mirror{FleetID: fleet.ID, Percent: p}
			what = contract.RouteRules{Mirror: r.rules.mirror}.String()
		}
	}
	r.setPhase(ctx, contract.PhaseCanary, fmt.Sprintf("step %s: %s", step, what))
	return r.route(ctx, prev, fleet, weight)
}

// setMatch sets (with match rules) or removes (without) the header route h
// to fleetID; a route set again keeps its place, so the first set wins ties.
func setMatch(matches []contract.MatchRoute, h contract.HeaderRouteStep, fleetID string) []contract.MatchRoute {
	i := slices.IndexFunc(matches, func(m contract.MatchRoute) bool { return m.Name == h.Name })
	switch {
	case len(h.Match) == 0 && i >= 0:
		return slices.Delete(slices.Clone(matches), i, i+1)
	case len(h.Match) == 0:
		return matches
	}
	m := contract.MatchRoute{Name: h.Name, FleetID: fleetID, Match: slices.Clone(h.Match)}
	out := slices.Clone(matches)
	if i >= 0 {
		out[i] = m
		return out
	}
	return append(out, m)
}

// of returns the rules a route at weight (the new fleet's) carries: none
// once the new fleet has all traffic.
func (c canaryRules) of(weight int) contract.RouteRules {
	if !c.on || weight >= 100 {
		return contract.RouteRules{}
	}
	return contract.RouteRules{Matches: c.matches, Mirror: c.mirror, Stickiness: c.sticky}
}

// withRuleFleets adds, at weight 0, each fleet the rules send requests to
// that the shares leave out (a canary at 0% that takes header-matched
// requests): a driver routes rules only to backends of the route.
func withRuleFleets(shares []contract.FleetShare, rules contract.RouteRules) []contract.FleetShare {
	ids := make([]string, 0, len(rules.Matches)+1)
	for _, m := range rules.Matches {
		ids = append(ids, m.FleetID)
	}
	if rules.Mirror != nil {
		ids = append(ids, rules.Mirror.FleetID)
	}
	out := shares
	for _, id := range ids {
		if !slices.ContainsFunc(out, func(s contract.FleetShare) bool { return s.FleetID == id }) {
			out = append(slices.Clip(out), contract.FleetShare{FleetID: id})
		}
	}
	return out
}
