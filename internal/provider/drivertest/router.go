package drivertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// SendThroughListen is TrafficSender.SendRequests for drivers whose router
// listens on the route's Listen address (local, qemu): n GET / requests there,
// each of which must answer 200.
func SendThroughListen(ctx context.Context, d provider.Driver, key contract.RouteKey, n int) error {
	r, err := d.Route(ctx, key)
	if err != nil {
		return err
	}
	c := http.Client{Timeout: 10 * time.Second}
	for i := 0; i < n; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Listen+"/", nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("GET / through the router at %s: %w", r.Listen, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET / through the router at %s: %d %q", r.Listen, resp.StatusCode, body)
		}
	}
	return nil
}
