package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// capacitySample is what the sampler saw once: instance processes running
// (the OS's count, the routers aside) and instances answering their health
// probe.
type capacitySample struct {
	running, healthy int
}

// sampleCapacity samples every 100 ms, until stop is called, how many
// instances of hello run and how many pass /healthz.
func (e *env) sampleCapacity() (stop func() []capacitySample) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu      sync.Mutex
		samples []capacitySample
		done    = make(chan struct{})
	)
	hc := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			byFleet, _ := e.instances()
			running := 0
			for _, n := range byFleet {
				running += n
			}
			healthy := 0
			fleets, err := e.deps.Provider.ListFleets(ctx, provider.Filter{Service: "hello", Environment: "test"})
			if err == nil {
				var wg sync.WaitGroup
				var hmu sync.Mutex
				for _, f := range fleets {
					if f, err := e.deps.Provider.Describe(ctx, f.ID); err == nil {
						for _, in := range f.Instances {
							if in.State != contract.InstanceRunning || in.Address == "" {
								continue
							}
							wg.Go(func() {
								resp, err := hc.Get("http://" + in.Address + "/healthz")
								if err == nil {
									resp.Body.Close()
									if resp.StatusCode == http.StatusOK {
										hmu.Lock()
										healthy++
										hmu.Unlock()
									}
								}
							})
						}
					}
				}
				wg.Wait()
			}
			if ctx.Err() != nil {
				return
			}
			mu.Lock()
			samples = append(samples, capacitySample{running: running, healthy: healthy})
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []capacitySample {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return samples
	}
}

// Rolling rollouts of 4 instances under a capacity budget, under load: no
// request fails, the instances sampled every 100 ms never exceed size +
// maxSurge, those healthy never drop below size − maxUnavailable, and in the
// end the new version serves alone from 4 instances.
func TestRollingWithinACapacityBudgetUnderLoad(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v1 := e.importImage("v1")
	four := func(r *spec.Rollout) { r.Fleet.Size = 4 }
	_, err := e.rollout(e.spec(v1, four))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: 8})
	for _, tc := range []struct {
		version                         string
		waves, maxSurge, maxUnavailable contract.Budget
		history                         string
		wantSteps                       int
	}{
		// The example: one at a time, never below 4 serving.
		{"v2", "25%", "1", "0", "rollout-rolling-capacity-budget", 4},
		// Waves of 2 within a surge of 1 and one unavailable: the old fleet
		// shrinks first, and 3 always serve.
		{"v3", "50%", "1", "25%", "", 2},
	} {
		t.Run(tc.version, func(t *testing.T) {
			// Slow to become healthy, so a surge lasts while it is sampled.
			img := e.importDir(buildHello(t, tc.version, "-X main.version="+tc.version+" -X main.startDelay=1s"))
			r := e.spec(img, four, func(r *spec.Rollout) {
				surge, unavailable := tc.maxSurge, tc.maxUnavailable
				r.Strategy = contract.Strategy{Type: contract.Rolling, Waves: contract.Waves(tc.waves), MaxSurge: &surge, MaxUnavailable: &unavailable}
			})
			c, err := r.Strategy.Capacity(4)
			require.NoError(t, err)
			load.Mark(tc.version)
			stop := e.sampleCapacity()
			res, err := e.rollout(r)
			samples := stop()
			require.NoError(t, err)
			if tc.history != "" {
				e.recordHistory(tc.history, e.last.GetID(), e.last.GetRunID())
			}
			require.NotEmpty(t, samples)
			most, least := 0, 1<<30
			for _, s := range samples {
				most, least = max(most, s.running), min(least, s.healthy)
			}
			t.Logf("%s: %d samples; at most %d instances ran (budget %d), at least %d were healthy (floor %d)",
				tc.version, len(samples), most, c.Size+c.Surge, least, c.Size-c.Unavailable)
			assert.LessOrEqual(t, most, c.Size+c.Surge, "never more than size + maxSurge instances")
			assert.GreaterOrEqual(t, least, c.Size-c.Unavailable, "never fewer than size − maxUnavailable healthy")
			assert.Greater(t, most, c.Size-c.Unavailable, "the sampler saw the surge")

			phase := load.Snapshot()
			assert.Zero(t, phase.Failures(), "no request may fail during a rolling rollout within a budget: %s", phase.String())
			byFleet, _ := e.instances()
			assert.Equal(t, map[string]int{res.FleetID: 4}, byFleet, "the new fleet alone, at full size")
			st, err := rollouts.Get(ctx, e.client, "hello", "test")
			require.NoError(t, err)
			var steps []string
			for _, ev := range st.Progress.Events {
				if strings.HasPrefix(ev.Message, "step ") {
					steps = append(steps, ev.Message)
				}
			}
			require.NotEmpty(t, steps)
			assert.Contains(t, steps[len(steps)-1], fmt.Sprintf("step %d of %d: 4 of 4 new instances take 100%%", tc.wantSteps, tc.wantSteps))
		})
	}
	load.Mark("after")
	e.waitRequests(load, 300)
	rep := load.Stop()
	assert.Zero(t, rep.Total.Failures(), "no request failed: %s", rep.Total.String())
	after, _ := rep.Phase("after")
	assert.Equal(t, after.Requests, after.Bodies["hello from v3"])
}

// A canary with minHealthyPercent under load: before 50% and before 100% the
// new fleet's instances are probed (at least 2 of 3 must pass), no request
// fails, and the new version ends serving alone.
func TestCanaryWithMinHealthyPercentUnderLoad(t *testing.T) {
	e := newEnv(t)
	ctx, v2, load := e.v1ServingUnderLoad(8)
	res, err := e.rollout(e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: ip(50)}}, MinHealthyPercent: ip(60)}
	}))
	require.NoError(t, err)
	e.recordHistory("rollout-canary-min-healthy", e.last.GetID(), e.last.GetRunID())
	load.Mark("after")
	e.waitRequests(load, 300)
	rep := load.Stop()
	assert.Zero(t, rep.Total.Failures(), "no request may fail: %s", rep.Total.String())
	after, _ := rep.Phase("after")
	assert.Equal(t, after.Requests, after.Bodies["hello from v2"])
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res.FleetID: 3}, byFleet)
	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	healthy := 0
	for _, ev := range st.Progress.Events {
		if strings.Contains(ev.Message, "instances healthy after") {
			healthy++
		}
	}
	assert.Equal(t, 3, healthy, "the fleet came up, then was probed before 50% and before 100%")
}
