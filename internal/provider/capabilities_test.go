package provider_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// switchOnly is a driver whose router sends all traffic to one fleet: it says
// it has no weights (nor anything else).
type switchOnly struct {
	stubDriver
	set []contract.Route
}

func (d *switchOnly) Capabilities() provider.Capabilities { return provider.CapabilitiesOf() }
func (d *switchOnly) SetRoute(_ context.Context, _ contract.RouteKey, r contract.Route) error {
	d.set = append(d.set, r)
	return nil
}

// resizing has Resize through its optional interface and says nothing itself.
type resizing struct{ stubDriver }

func (resizing) Resize(context.Context, string, int) (contract.Fleet, error) {
	return contract.Fleet{}, nil
}

func TestCapabilitiesComeFromTheDriver(t *testing.T) {
	assert.Equal(t, "weights, resize", provider.New("x", &resizing{}).Capabilities().String(),
		"a driver that does not say has its optional interfaces' capabilities, and weights")
	assert.Equal(t, "weights", provider.New("x", &stubDriver{}).Capabilities().String())
	assert.Equal(t, "none", provider.New("x", &switchOnly{}).Capabilities().String())
}

// The portable type refuses what the driver cannot do, with FailedPrecondition,
// before the driver sees it.
func TestProviderRefusesWhatTheDriverCannotDo(t *testing.T) {
	ctx := context.Background()
	d := &switchOnly{}
	p := provider.New("dns", d)
	key := contract.RouteKey{Service: "web", Environment: "prod"}
	split := contract.Route{Backends: []contract.Backend{
		{FleetID: "a", Weight: 30, Targets: []string{"10.0.0.1:80"}},
		{FleetID: "b", Weight: 70, Targets: []string{"10.0.0.2:80"}},
	}}
	err := p.SetRoute(ctx, key, split)
	require.Error(t, err)
	assert.Equal(t, provider.FailedPrecondition, provider.ErrorCode(err))
	assert.EqualError(t, err, "route prod/web: fleet a would get 30% of traffic, but the dns provider routes all traffic to one fleet (it has no routes that split traffic between fleets by weight)")
	all := contract.Route{Backends: []contract.Backend{
		{FleetID: "a", Weight: 0, Targets: []string{"10.0.0.1:80"}},
		{FleetID: "b", Weight: 100, Targets: []string{"10.0.0.2:80"}},
	}}
	require.NoError(t, p.SetRoute(ctx, key, all), "a switch to one fleet needs no weights")
	assert.Equal(t, []contract.Route{all}, d.set)

	_, err = p.Resize(ctx, "a", 3)
	assert.Equal(t, provider.FailedPrecondition, provider.ErrorCode(err))
	_, err = p.FleetMetrics(ctx, key)
	assert.Equal(t, provider.FailedPrecondition, provider.ErrorCode(err))
}
