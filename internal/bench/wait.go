package bench

// Waiting without Temporal: Poll, and WaitHealthy, the harness's own health wait.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/probe"
	"github.com/imago/imago/internal/provider"
)

// Poll calls f every interval until it returns true, an error, or ctx ends.
func Poll(ctx context.Context, interval time.Duration, f func() (bool, error)) error {
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// WaitHealthy probes every instance of the fleet on path until all answer 2xx,
// the rounds probe.Backoff(interval) apart, as the WaitHealthy activity does
// (probe.All), without Temporal.
func WaitHealthy(ctx context.Context, p *provider.Provider, hc *http.Client, fleetID, path string, interval, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	next := probe.Backoff(interval)
	for {
		fleet, err := p.Describe(ctx, fleetID)
		if err != nil {
			return err
		}
		var addrs []string
		for _, in := range fleet.Instances {
			if in.State == contract.InstanceRunning {
				addrs = append(addrs, in.Address)
			}
		}
		healthy := 0
		for _, err := range probe.All(ctx, hc, addrs, path) {
			if err == nil {
				healthy++
			}
		}
		if healthy == len(fleet.Instances) && healthy > 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("fleet %s not healthy within %s: %d of %d pass %s", fleetID, timeout, healthy, len(fleet.Instances), path)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(next(), time.Until(deadline))):
		}
	}
}
