package local

import (
	"context"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/drivertest"
)

// conformanceHarness runs the provider conformance suite on a local driver with
// sim images (one sim host process per fleet, real HTTP listeners) and a real
// router process per route key, on a fresh Home per test.
type conformanceHarness struct {
	e *testEnv
}

func (h *conformanceHarness) MakeDriver(ctx context.Context) (provider.Driver, error) {
	return Open(h.e.cfg)
}

func (h *conformanceHarness) Images(ctx context.Context) (drivertest.Images, error) {
	return drivertest.Images{
		First:   h.e.simImage("conformance-1", false).ID,
		Second:  h.e.simImage("conformance-2", true).ID,
		Missing: "img-000000000000",
	}, nil
}

func (h *conformanceHarness) RouteKey() contract.RouteKey {
	return contract.RouteKey{Service: "web", Environment: "test"}
}

// MakeHealthy waits until every instance of the fleet runs and answers its
// health check (sim instances need nothing more).
func (h *conformanceHarness) MakeHealthy(ctx context.Context, d provider.Driver, fleet contract.Fleet) error {
	return drivertest.WaitHealthz(ctx, d, fleet.ID, 15*time.Second, 10*time.Millisecond)
}

// Capabilities: the local router splits by weight, matches headers and
// cookies, keeps sessions sticky, mirrors, and counts per fleet; fleets resize
// in place.
func (h *conformanceHarness) Capabilities() provider.Capabilities {
	return provider.CapabilitiesOf(provider.CapWeights, provider.CapResize, provider.CapFleetMetrics,
		provider.CapHeaderRoutes, provider.CapStickiness, provider.CapMirror)
}

// SendRequests sends GET / through the router's listen address.
func (h *conformanceHarness) SendRequests(ctx context.Context, d provider.Driver, key contract.RouteKey, n int) error {
	return drivertest.SendThroughListen(ctx, d, key, n)
}

// Close has nothing to do: newEnv's cleanup kills every process of the Home.
func (h *conformanceHarness) Close() {}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
		return &conformanceHarness{e: newEnv(t)}, nil
	})
}
