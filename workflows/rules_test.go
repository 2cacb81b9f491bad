package workflows

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

var canaryHeader = contract.Step{SetHeaderRoute: &contract.HeaderRouteStep{Name: "canary",
	Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}, {Cookie: "imago-canary", Exact: "1"}}}}

func mirrorStep(p int) contract.Step {
	return contract.Step{SetMirrorRoute: &contract.MirrorRouteStep{Percent: p}}
}

// recordRouteInputs records every SetRoute input, rules and all.
func (s *rolloutSuite) recordRouteInputs(ins *[]contract.SetRouteInput) {
	s.env.OnActivity(s.a.SetRoute, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.SetRouteInput) error {
			*ins = append(*ins, in)
			return nil
		})
}

// A canary's header route, mirror and stickiness ride on every route it sets
// (a header route at 0% puts the new fleet in the route at weight 0), a
// setWeight keeps them, a step with percent 0 removes the mirror, and the
// cutover route has none.
func (s *rolloutSuite) TestCanaryRouteRulesRideTheRouteUntilCutover() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	var ins []contract.SetRouteInput
	s.recordRouteInputs(&ins)
	r := canarySpec(canaryHeader, mirrorStep(50), weightStep(10), mirrorStep(0), weightStep(50), pauseStep(time.Minute))
	r.Strategy.Stickiness = &contract.Stickiness{Cookie: "imago-fleet", TTL: contract.Duration(time.Hour)}
	var during contract.RolloutProgress
	s.env.RegisterDelayedCallback(func() { during = s.progress() }, 30*time.Second) // in the pause
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: r})
	s.Require().NoError(s.env.GetWorkflowError())

	header := []contract.MatchRoute{{Name: "canary", FleetID: "fl-new", Match: canaryHeader.SetHeaderRoute.Match}}
	sticky := r.Strategy.Stickiness
	mirror := &contract.Mirror{FleetID: "fl-new", Percent: 50}
	want := []struct {
		shares []contract.FleetShare
		rules  contract.RouteRules
	}{
		{[]contract.FleetShare{{FleetID: "fl-old", Weight: 100}, {FleetID: "fl-new"}}, contract.RouteRules{Matches: header, Stickiness: sticky}},
		{[]contract.FleetShare{{FleetID: "fl-old", Weight: 100}, {FleetID: "fl-new"}}, contract.RouteRules{Matches: header, Stickiness: sticky, Mirror: mirror}},
		{[]contract.FleetShare{{FleetID: "fl-new", Weight: 10}, {FleetID: "fl-old", Weight: 90}}, contract.RouteRules{Matches: header, Stickiness: sticky, Mirror: mirror}},
		{[]contract.FleetShare{{FleetID: "fl-new", Weight: 10}, {FleetID: "fl-old", Weight: 90}}, contract.RouteRules{Matches: header, Stickiness: sticky}},
		{[]contract.FleetShare{{FleetID: "fl-new", Weight: 50}, {FleetID: "fl-old", Weight: 50}}, contract.RouteRules{Matches: header, Stickiness: sticky}},
		{[]contract.FleetShare{{FleetID: "fl-new", Weight: 100}}, contract.RouteRules{}},
	}
	s.Require().Len(ins, len(want))
	for i, w := range want {
		s.Equal(w.shares, ins[i].Shares, "route %d", i)
		s.Equal(w.rules, ins[i].Route.RouteRules, "route %d", i)
	}
	s.Require().NotNil(during.RouteRules, "while the canary pauses, progress shows its rules")
	s.Equal("header route canary: header X-Canary=1 or cookie imago-canary=1 → fl-new; sticky by cookie imago-fleet for 1h0m0s", during.RouteRules.String())
	p := s.progress()
	s.Nil(p.RouteRules, "after cutover no rule is left")
	s.True(slices.ContainsFunc(p.Events, func(e contract.ProgressEvent) bool {
		return strings.Contains(e.Message, "step 2/6: mirror 50% → fl-new")
	}), "events: %+v", p.Events)
}

// A canary rolled back after a header route routes back to the old route,
// which has no rules, and shows none.
func (s *rolloutSuite) TestARolledBackCanaryClearsItsRouteRules() {
	s.routeIs(oldRoute)
	s.healthy()
	s.checksPass()
	var ins []contract.SetRouteInput
	s.recordRouteInputs(&ins)
	s.analysisReturns(activities.AnalysisFailed)
	s.env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: canarySpec(canaryHeader, analysisStep("errors"), weightStep(100))})
	s.Equal(ErrRolledBack, s.errType())
	s.Require().Len(ins, 2)
	s.Len(ins[0].Route.RouteRules.Matches, 1)
	s.Equal(oldShares, ins[1].Shares)
	s.True(ins[1].Route.RouteRules.Empty(), "the restored route has no rules")
	s.Nil(s.progress().RouteRules)
	s.Equal([]string{"fl-new"}, s.terminated)
}

// setMatch sets, replaces in place and removes header routes by name.
func (s *rolloutSuite) TestSetMatchSetsReplacesAndRemovesByName() {
	a := contract.HeaderRouteStep{Name: "a", Match: []contract.MatchRule{{Header: "X-A", Exact: "1"}}}
	b := contract.HeaderRouteStep{Name: "b", Match: []contract.MatchRule{{Cookie: "b", Exact: "1"}}}
	a2 := contract.HeaderRouteStep{Name: "a", Match: []contract.MatchRule{{Header: "X-A", Exact: "2"}}}
	m := setMatch(nil, a, "fl-1")
	m = setMatch(m, b, "fl-1")
	m = setMatch(m, a2, "fl-1")
	s.Equal([]contract.MatchRoute{{Name: "a", FleetID: "fl-1", Match: a2.Match}, {Name: "b", FleetID: "fl-1", Match: b.Match}}, m)
	s.Equal([]contract.MatchRoute{{Name: "b", FleetID: "fl-1", Match: b.Match}}, setMatch(m, contract.HeaderRouteStep{Name: "a"}, "fl-1"))
	s.Len(m, 2, "the input is not changed")
	s.Equal(m, setMatch(m, contract.HeaderRouteStep{Name: "c"}, "fl-1"))
}
