package spec

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

const routed = `service: web
image: {id: img-3f2a1c9d0b7e}
listen: 127.0.0.1:9080
strategy:
  type: canary
  stickiness: {cookie: imago-fleet, ttl: 1h}
  steps:
    - setHeaderRoute: {name: canary, match: [{header: X-Canary, exact: "1"}, {cookie: imago-canary, exact: "1"}]}
    - setMirrorRoute: {percent: 50}
    - setWeight: 10
    - setMirrorRoute: {percent: 0}
    - setHeaderRoute: {name: canary}
`

// A canary's setHeaderRoute, setMirrorRoute and stickiness decode into the
// contract's types, and what they need of the provider is listed by field.
func TestRouteRuleStepsDecode(t *testing.T) {
	r, err := ParseRollout([]byte(routed))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	steps := r.Strategy.Steps
	assert.Equal(t, &contract.HeaderRouteStep{Name: "canary", Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}, {Cookie: "imago-canary", Exact: "1"}}}, steps[0].SetHeaderRoute)
	assert.Equal(t, &contract.MirrorRouteStep{Percent: 50}, steps[1].SetMirrorRoute)
	assert.Equal(t, &contract.MirrorRouteStep{Percent: 0}, steps[3].SetMirrorRoute)
	assert.Equal(t, &contract.HeaderRouteStep{Name: "canary"}, steps[4].SetHeaderRoute)
	assert.Equal(t, &contract.Stickiness{Cookie: "imago-fleet", TTL: contract.Duration(time.Hour)}, r.Strategy.Stickiness)
	assert.Equal(t, []Need{
		{provider.CapWeights, "strategy.type", "canary"},
		{provider.CapHeaderRoutes, "strategy.steps[0].setHeaderRoute", "setHeaderRoute"},
		{provider.CapMirror, "strategy.steps[1].setMirrorRoute", "setMirrorRoute"},
		{provider.CapMirror, "strategy.steps[3].setMirrorRoute", "setMirrorRoute"},
		{provider.CapHeaderRoutes, "strategy.steps[4].setHeaderRoute", "setHeaderRoute"},
		{provider.CapStickiness, "strategy.stickiness", "stickiness"},
	}, r.Needs())

	// The cookie defaults by provider: the ALB's own on aws.
	r, err = ParseRollout([]byte("service: web\nprovider: aws\nimage: {id: img-3f2a1c9d0b7e}\nstrategy: {type: canary, stickiness: {ttl: 30m}, steps: [{setWeight: 10}]}\n"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, &contract.Stickiness{Cookie: ALBStickyCookie, TTL: contract.Duration(30 * time.Minute)}, r.Strategy.Stickiness)
}

// Bad rules are refused all at once, by field and line.
func TestBadRouteRulesAreRefusedByFieldAndLine(t *testing.T) {
	r, err := ParseRollout([]byte(`service: web
provider: aws
image: {id: img-3f2a1c9d0b7e}
strategy:
  type: canary
  stickiness: {cookie: imago-fleet, ttl: 0s}
  steps:
    - setHeaderRoute: {name: "can ary", match: [{header: X-Canary, cookie: c, exact: "1"}, {header: "X Canary", exact: "*"}, {cookie: c}]}
    - {setMirrorRoute: {percent: 150}, setWeight: 10}
    - setHeaderRoute: {name: other}
    - setMirrorRoute: {percent: 50}
`))
	require.NoError(t, err)
	err = r.Normalize()
	assert.EqualError(t, err, `invalid spec:
  strategy.stickiness.cookie: line 6: "imago-fleet": the aws provider's stickiness is the ALB's target-group stickiness, whose cookie is AWSALBTG and cannot be renamed; leave cookie out (or write AWSALBTG)
  strategy.stickiness.ttl: line 6: must be above 0, e.g. 1h
  strategy.steps[0].setHeaderRoute.name: line 8: "can ary": name the route with letters, digits, '-', '_' or '.', e.g. canary
  strategy.steps[0].setHeaderRoute.match[0]: line 8: set exactly one of header and cookie
  strategy.steps[0].setHeaderRoute.match[1].header: line 8: "X Canary" is not a header name: use letters, digits, '-', '_' or '.'
  strategy.steps[0].setHeaderRoute.match[1].exact: line 8: "*": use printable ASCII without spaces, quotes, ';', ',', '*' or '?'
  strategy.steps[0].setHeaderRoute.match[2].exact: line 8: is required: the value the header or cookie must have, e.g. "1"
  strategy.steps[1].setMirrorRoute.percent: line 9: 150 must be 0-100 (0 stops mirroring)
  strategy.steps[1].setMirrorRoute: line 9: provider aws cannot mirror traffic (an ALB has no request mirroring); leave the step out, or send chosen requests to the canary with setHeaderRoute
  strategy.steps[1]: line 9: set exactly one of setWeight, pause, analysis, setHeaderRoute, setMirrorRoute
  strategy.steps[2].setHeaderRoute: line 10: removes header route "other", which no earlier step sets; give match: [{header: X-Canary, exact: "1"}] to set it
  strategy.steps[3].setMirrorRoute: line 11: provider aws cannot mirror traffic (an ALB has no request mirroring); leave the step out, or send chosen requests to the canary with setHeaderRoute`)

	bg := Rollout{Service: "web", Listen: "127.0.0.1:9080", Image: contract.ImageRef{ID: "img-3f2a1c9d0b7e"},
		Strategy: contract.Strategy{Stickiness: &contract.Stickiness{TTL: contract.Duration(time.Hour)}}}
	assert.ErrorContains(t, bg.Normalize(), "strategy.stickiness: is for the canary strategy")
}

// A worker whose provider cannot mirror (aws) refuses the spec at its check,
// naming the step and its line; header routes and stickiness pass there.
func TestAProviderWithoutMirroringRefusesTheStep(t *testing.T) {
	r, err := ParseRollout([]byte(routed))
	require.NoError(t, err)
	aws := provider.CapabilitiesOf(provider.CapWeights, provider.CapHeaderRoutes, provider.CapStickiness)
	err = r.CheckProvider("local", aws)
	assert.EqualError(t, err, `invalid spec:
  strategy.steps[1].setMirrorRoute: line 9: setMirrorRoute needs a provider with routes that mirror requests to a fleet (mirror), which the worker's provider local does not have (it has: weights, headerRoutes, stickiness); leave the step out, or send chosen requests to the canary with setHeaderRoute
  strategy.steps[3].setMirrorRoute: line 11: setMirrorRoute needs a provider with routes that mirror requests to a fleet (mirror), which the worker's provider local does not have (it has: weights, headerRoutes, stickiness); leave the step out, or send chosen requests to the canary with setHeaderRoute`)
	err = r.CheckProvider("local", provider.CapabilitiesOf(provider.CapWeights))
	assert.ErrorContains(t, err, "strategy.stickiness: line 6: stickiness needs a provider with sticky sessions that keep a client on one fleet (stickiness)")
	assert.NoError(t, r.CheckProvider("local", provider.CapabilitiesOf(provider.AllCapabilities...)))
}

// The README's route-rules example is a valid spec, and the refusals it
// shows for provider aws are what validation says of it.
func TestREADMERouteRulesExample(t *testing.T) {
	src, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(src), "\n### Header routes, mirroring and sticky sessions\n")
	require.True(t, ok, "the README has the section")
	_, block, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok)
	block, _, _ = strings.Cut(block, "```")
	const analyses = "analyses:\n  errors: {provider: router, max: 0.05}\n"
	r, err := ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\n" + block + analyses))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())

	r, err = ParseRollout([]byte("service: hello\nprovider: aws\nimage: {id: img-3f2a00000000}\n" + block + analyses))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	assert.Contains(t, string(src), "imago: rollout.yaml: "+err.Error()+"\n```")
}
