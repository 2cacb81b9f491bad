package app

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// Canary route rules through the real router and a real Temporal: header
// routes, mirroring and stickiness (issue 17 items 3-5).

// send asks the router for / with c, setting header (name: value) when
// given, and returns the body.
func (e *env) send(c *http.Client, header ...string) string {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+e.listen+"/", nil)
	require.NoError(e.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "router answered %s", body)
	return strings.TrimSpace(string(body))
}

// bodies sends n requests and counts the answers by body.
func (e *env) bodies(n int, c *http.Client, header ...string) map[string]int {
	seen := map[string]int{}
	for range n {
		seen[e.send(c, header...)]++
	}
	return seen
}

// requestsOf reads the router's request counter of fleetID.
func (e *env) requestsOf(fleetID string) float64 {
	m, err := e.deps.Provider.FleetMetrics(context.Background(), contract.RouteKey{Service: "hello", Environment: "test"})
	require.NoError(e.t, err)
	return m[fleetID].Requests
}

// A canary of examples/hello whose first steps set a header route and a 50%
// mirror at weight 0: requests with the header (or the cookie) all reach v2,
// others all v1, and the mirror fills v2's request counter while it serves no
// one. A setWeight keeps the header route; the cutover clears every rule.
func TestCanaryHeaderRouteAndMirrorAtWeightZero(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	_, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	run, err := rollouts.Start(ctx, e.client, e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{
			{SetHeaderRoute: &contract.HeaderRouteStep{Name: "canary", Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}, {Cookie: "imago-canary", Exact: "1"}}}},
			{SetMirrorRoute: &contract.MirrorRouteStep{Percent: 50}},
			{Pause: &contract.Pause{}},
			{SetMirrorRoute: &contract.MirrorRouteStep{Percent: 0}},
			{SetWeight: ip(20)},
			{Pause: &contract.Pause{}},
		}}
	}), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	e.waitStep("3/6 pause (until approved)")
	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	newFleet := st.Progress.NewFleet
	require.NotNil(t, st.Progress.RouteRules)
	assert.Equal(t, "header route canary: header X-Canary=1 or cookie imago-canary=1 → "+newFleet+"; mirror 50% → "+newFleet,
		st.Progress.RouteRules.String(), "progress shows the active rules")
	assert.Equal(t, 0, weightOf(st.Progress.Weights, newFleet))

	// First the mirror, while nothing else goes through the router: its
	// copies are sent once the live answers are done.
	c := &http.Client{}
	before := e.requestsOf(newFleet)
	assert.Equal(t, map[string]int{"hello from v1": 200}, e.bodies(200, c), "without the header every answer is v1's")
	e.waitRequestsOf(newFleet, before+100)
	assert.Equal(t, 100.0, e.requestsOf(newFleet)-before, "half of the 200 requests are mirrored to the canary, which serves none of them")

	assert.Equal(t, map[string]int{"hello from v2": 50}, e.bodies(50, c, "X-Canary", "1"), "the header routes to the canary at weight 0")
	assert.Equal(t, map[string]int{"hello from v2": 50}, e.bodies(50, c, "Cookie", "imago-canary=1"), "so does the cookie")
	assert.Equal(t, map[string]int{"hello from v1": 20}, e.bodies(20, c, "X-Canary", "2"), "another value does not match")

	require.NoError(t, rollouts.Decide(ctx, e.client, "hello", "test", contract.UpdateApprove, "integration-test", "header route verified"))
	e.waitStep("6/6 pause (until approved)")
	e.waitRequestsOf(newFleet, before+100+50+50+10) // the mirrored copies of the last requests are counted
	before = e.requestsOf(newFleet)
	seen := e.bodies(100, c)
	assert.InDelta(t, 20, seen["hello from v2"], 1, "at weight 20 a fifth of the plain requests reach v2: %v", seen)
	e.waitRequestsOf(newFleet, before+float64(seen["hello from v2"]))
	assert.Equal(t, float64(seen["hello from v2"]), e.requestsOf(newFleet)-before, "the mirror is off: v2 counts only what it served")
	assert.Equal(t, map[string]int{"hello from v2": 30}, e.bodies(30, c, "X-Canary", "1"), "the header route survives the setWeight")

	require.NoError(t, rollouts.Decide(ctx, e.client, "hello", "test", contract.UpdateApprove, "integration-test", "go"))
	require.NoError(t, run.Get(ctx, nil))
	e.recordHistory("rollout-canary-route-rules", run.GetID(), run.GetRunID())
	route, err := e.deps.Provider.Route(ctx, contract.RouteKey{Service: "hello", Environment: "test"})
	require.NoError(t, err)
	assert.True(t, route.RouteRules.Empty(), "the cutover clears the rules: %+v", route.RouteRules)
	assert.Equal(t, map[string]int{"hello from v2": 10}, e.bodies(10, c))
}

// A canary at 50% with stickiness: every client with a cookie jar keeps the
// fleet it first got, both fleets get clients; after an abort the cookie of
// the torn-down fleet no longer pins anyone and v1 serves everyone.
func TestStickyClientsNeverFlipWhileBothFleetsKeepWeight(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	_, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	run, err := rollouts.Start(ctx, e.client, e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Stickiness: &contract.Stickiness{Cookie: "imago-fleet", TTL: contract.Duration(time.Hour)},
			Steps: []contract.Step{{SetWeight: ip(50)}, {Pause: &contract.Pause{}}}}
	}), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	e.waitStep("2/2 pause (until approved)")

	got := map[string]int{} // clients by the version they got
	var jars []http.CookieJar
	for i := range 16 {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		jars = append(jars, jar)
		seen := e.bodies(25, &http.Client{Jar: jar})
		assert.Len(t, seen, 1, "client %d flipped between fleets: %v", i, seen)
		for body := range seen {
			got[body]++
		}
	}
	assert.Positive(t, got["hello from v1"], "clients by version: %v", got)
	assert.Positive(t, got["hello from v2"], "clients by version: %v", got)

	require.NoError(t, rollouts.Decide(ctx, e.client, "hello", "test", contract.UpdateAbort, "integration-test", "enough"))
	require.Error(t, run.Get(ctx, nil))
	for _, jar := range jars {
		assert.Equal(t, map[string]int{"hello from v1": 5}, e.bodies(5, &http.Client{Jar: jar}), "after the abort v1 serves every client")
	}
	route, err := e.deps.Provider.Route(ctx, contract.RouteKey{Service: "hello", Environment: "test"})
	require.NoError(t, err)
	assert.True(t, route.RouteRules.Empty(), "the abort restores the route without rules: %+v", route.RouteRules)
}

// waitRequestsOf polls until the router counted at least n requests of fleetID.
func (e *env) waitRequestsOf(fleetID string, n float64) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for e.requestsOf(fleetID) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("fleet %s: the router counted %v requests, want at least %v", fleetID, e.requestsOf(fleetID), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func weightOf(ws []contract.FleetWeight, fleetID string) int {
	for _, w := range ws {
		if w.FleetID == fleetID {
			return w.Weight
		}
	}
	return 0
}
