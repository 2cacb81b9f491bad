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

// WaitHealthz is Harness.MakeHealthy for drivers whose instances serve on
// their Address (local, qemu): it polls, every interval, until Describe
// reports every instance of the fleet running and each answers GET /healthz
// with 200, or timeout.
func WaitHealthz(ctx context.Context, d provider.Driver, fleetID string, timeout, interval time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := http.Client{Timeout: 2 * time.Second}
	for {
		f, err := d.Describe(ctx, fleetID)
		if err != nil {
			return err
		}
		bad := ""
		for _, in := range f.Instances {
			if in.State != contract.InstanceRunning {
				bad = fmt.Sprintf("instance %s is %s", in.ID, in.State)
				break
			}
			resp, err := c.Get("http://" + in.Address + "/healthz")
			if err != nil {
				bad = fmt.Sprintf("instance %s: /healthz: %v", in.ID, err)
				break
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				bad = fmt.Sprintf("instance %s: /healthz answered %d %q", in.ID, resp.StatusCode, body)
				break
			}
		}
		if bad == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet %s not healthy within %s: %s", fleetID, timeout, bad)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleet %s: %w (%s)", fleetID, ctx.Err(), bad)
		case <-time.After(interval):
		}
	}
}
