package vmimagetest

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/drivertest"
	"github.com/imago/imago/internal/provider/local"
)

// BootTimeout bounds a VM's boot to a healthy /healthz: TCG on 2 shared cores
// under load takes tens of seconds.
const BootTimeout = 100 * time.Second

// WaitHealthy polls each instance's /healthz through its hostfwd port until
// every one answers 200, or BootTimeout.
func WaitHealthy(ctx context.Context, d provider.Driver, fleetID string) error {
	return drivertest.WaitHealthz(ctx, d, fleetID, BootTimeout, 250*time.Millisecond)
}

// HTTPGet GETs url (2 s at most) and returns the status and body.
func HTTPGet(url string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Conformance is what the conformance harnesses of the VM drivers share
// (all of drivertest.Harness but MakeDriver): images v1 and v2 of Hello, the
// route key web/test, health by /healthz, the local driver's capabilities
// (their routers are the local driver's) and requests through the router.
type Conformance struct {
	VMImages map[string]contract.Image
}

func (c Conformance) Images(ctx context.Context) (drivertest.Images, error) {
	return drivertest.Images{First: c.VMImages["v1"].ID, Second: c.VMImages["v2"].ID, Missing: "img-000000000000"}, nil
}

func (Conformance) RouteKey() contract.RouteKey {
	return contract.RouteKey{Service: "web", Environment: "test"}
}

func (Conformance) MakeHealthy(ctx context.Context, d provider.Driver, fleet contract.Fleet) error {
	return WaitHealthy(ctx, d, fleet.ID)
}

func (Conformance) Capabilities() provider.Capabilities {
	return (*local.Driver)(nil).Capabilities()
}

// SendRequests sends GET / through the router's listen address.
func (Conformance) SendRequests(ctx context.Context, d provider.Driver, key contract.RouteKey, n int) error {
	return drivertest.SendThroughListen(ctx, d, key, n)
}

func (Conformance) Close() {}
