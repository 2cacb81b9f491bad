package spec

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// A strategy the worker's provider cannot run is refused by field and line,
// with what it needs and what to do instead; what the provider can run passes.
func TestCheckProviderRefusesWhatTheProviderCannotDo(t *testing.T) {
	const canary = `service: web
provider: aws
image: {id: img-3f2a1c9d0b7e}
strategy:
  type: canary
  steps:
    - setWeight: 10
    - analysis: errors
analyses:
  errors: {provider: router, max: 0.05}
  prom: {provider: prometheus, address: "http://prom:9090", query: "up", max: 1}
`
	r, err := ParseRollout([]byte(canary))
	require.NoError(t, err)
	parsed := r
	require.NoError(t, r.Normalize())

	aws := provider.CapabilitiesOf(provider.CapWeights)
	assert.NoError(t, r.CheckProvider("aws", provider.CapabilitiesOf(provider.CapWeights, provider.CapFleetMetrics)))
	err = parsed.CheckProvider("dns", provider.CapabilitiesOf())
	assert.EqualError(t, err, `invalid spec:
  provider: line 2: "aws", but the worker runs provider dns; start a worker with IMAGO_PROVIDER_URL=aws://…, or set provider: dns
  strategy.type: line 5: canary needs a provider with routes that split traffic between fleets by weight (weights), which the worker's provider dns does not have (it has: none); use strategy blueGreen, or a worker whose provider has it
  analyses.errors.provider: line 10: a router analysis needs a provider with per-fleet request metrics from its router (fleetMetrics), which the worker's provider dns does not have (it has: none); measure with a prometheus or http analysis instead`)

	// After Normalize the lines are gone; the parsed copy still has them.
	err = r.CheckProvider("aws", aws)
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	assert.Equal(t, contract.FieldErrors{{Field: "analyses.errors.provider", Line: 10, Msg: es[0].Msg}}, es.WithLines(parsed.LineOf))
	assert.Equal(t, 0, es[0].Line)

	rolling := Rollout{Rollout: contract.Rollout{Service: "web", Provider: "aws", Image: contract.ImageRef{ID: "img-3f2a1c9d0b7e"}, Strategy: contract.Strategy{Type: contract.Rolling}}}
	require.NoError(t, rolling.Normalize())
	err = rolling.CheckProvider("aws", aws)
	assert.EqualError(t, err, `invalid spec:
  strategy.type: rolling needs a provider with fleets that grow and shrink in place (resize), which the worker's provider aws does not have (it has: weights); use strategy blueGreen, or a worker whose provider has it`)
	assert.Equal(t, []Need{{provider.CapWeights, "strategy.type", "rolling"}, {provider.CapResize, "strategy.type", "rolling"}}, rolling.Needs())

	blueGreen := Rollout{Rollout: contract.Rollout{Service: "web", Listen: "127.0.0.1:9080", Image: contract.ImageRef{ID: "img-3f2a1c9d0b7e"}}}
	require.NoError(t, blueGreen.Normalize())
	assert.Empty(t, blueGreen.Needs())
	assert.NoError(t, blueGreen.CheckProvider("local", provider.CapabilitiesOf()), "blue/green switches all traffic at once: it needs nothing")
}

// The providers a spec may name are the drivers the program links (here
// none: any well-formed name, which the worker then checks).
func TestProviderNamesComeFromTheRegistry(t *testing.T) {
	r := Rollout{Rollout: contract.Rollout{Service: "web", Provider: "gcp", Image: contract.ImageRef{ID: "img-3f2a1c9d0b7e"}}}
	require.Empty(t, provider.DefaultURLMux().Names(), "this test links no driver")
	assert.NoError(t, r.Normalize(), "a program that links no driver checks the name's form only")
	r = Rollout{Rollout: contract.Rollout{Service: "web", Provider: "Local!", Image: contract.ImageRef{ID: "img-3f2a1c9d0b7e"}}}
	assert.ErrorContains(t, r.Normalize(), `provider: "Local!" is not a provider name such as local or aws`)
}
