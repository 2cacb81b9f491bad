package local

import (
	"context"
	"fmt"
	"strings"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/router/routermetrics"
)

var _ provider.MetricsDriver = (*Driver)(nil)

// FleetMetrics scrapes the admin listener (GET /metrics) of the running router
// of key and returns its cumulative counters per fleet ID. It returns NotFound
// when no router of key runs. A router that restarted counts from zero again.
func (d *Driver) FleetMetrics(ctx context.Context, key contract.RouteKey) (map[string]contract.FleetMetrics, error) {
	ri, err := d.RouterProcess(key)
	if err != nil {
		return nil, err
	}
	text, err := router.GetMetrics(ctx, ri.Admin)
	if err != nil {
		return nil, fmt.Errorf("fleet metrics of %s: router (pid %d): %w", key, ri.PID, err)
	}
	m, err := routermetrics.ParseFleetMetrics(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("fleet metrics of %s: router (pid %d, admin %s): %w", key, ri.PID, ri.Admin, err)
	}
	return m, nil
}
