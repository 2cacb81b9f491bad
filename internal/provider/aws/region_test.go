package aws_test

import (
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// TestTargetRegionIsRefused: the aws driver deploys to its configured region
// only; a request for a target region (even its own, which would share the
// region-less listener and tags) is refused before anything is made, not
// deployed to the driver's region.
func TestTargetRegionIsRefused(t *testing.T) {
	e := newFakeEnv(t)
	for _, r := range []string{"us-east-1", region} {
		req := e.request("region-"+r, 1)
		req.Region = r
		_, err := e.p.Provision(e.ctx, req)
		wantCode(t, "provision in region "+r, err, provider.InvalidArgument)
		fs, err := e.p.ListFleets(e.ctx, provider.Filter{})
		if err != nil || len(fs) != 0 {
			t.Fatalf("after a refused provision in %s: fleets %+v, %v; want none", r, fs, err)
		}
		k := contract.RouteKey{Service: key.Service, Environment: key.Environment, Region: r}
		wantCode(t, "set route in region "+r, e.p.SetRoute(e.ctx, k, contract.Route{}), provider.InvalidArgument)
		_, err = e.p.Route(e.ctx, k)
		wantCode(t, "route in region "+r, err, provider.InvalidArgument)
	}
}
