package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// TestOneFreezeHoldsFiftyInFlightRolloutsAndOneCommandReleasesThem: with a
// real Temporal server, the real worker and sim fleets behind real routers, 50
// rollouts (one per service) provision and wait at their approval gate; `imago
// freeze start -e dev` freezes them; approved, each holds in phase frozen before
// its cutover (its traffic unmoved) and a 51st, new rollout holds before it
// provisions. One `imago freeze end -e dev` releases all 51, which succeed.
func TestOneFreezeHoldsFiftyInFlightRolloutsAndOneCommandReleasesThem(t *testing.T) {
	e := newImagoEnv(t)
	ctx := context.Background()
	const n = 50
	services := make([]string, n+1)
	for i := range services {
		services[i] = fmt.Sprintf("svc-%02d", i)
	}
	taken := map[string]bool{}
	start := func(service string, approval bool) {
		addr := routerAddr(t, taken)
		f := filepath.Join(t.TempDir(), "rollout.yaml")
		require.NoError(t, os.WriteFile(f, []byte(fmt.Sprintf(`service: %s
environment: dev
image: {id: %s}
fleet: {size: 1}
listen: %s
health: {path: /healthz, interval: 100ms, timeout: 60s}
approval: {required: %t, timeout: 1h}
soak: 0s
`, service, e.simImage(service, "v1"), addr, approval)), 0o600))
		r, err := spec.LoadRollout(f)
		require.NoError(t, err)
		require.NoError(t, r.Normalize())
		_, err = rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "freeze-test"})
		require.NoError(t, err)
	}
	// waitAll polls every service's progress until ok holds for all of them.
	waitAll := func(what string, services []string, ok func(rollouts.Status) bool) map[string]rollouts.Status {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		seen := map[string]rollouts.Status{}
		for {
			var mu sync.Mutex
			var g errgroup.Group
			g.SetLimit(8)
			for _, s := range services {
				g.Go(func() error {
					st, err := rollouts.Get(ctx, e.client, s, "dev")
					if err != nil {
						return err
					}
					mu.Lock()
					seen[s] = st
					mu.Unlock()
					return nil
				})
			}
			require.NoError(t, g.Wait())
			var missing []string
			for _, s := range services {
				if !ok(seen[s]) {
					missing = append(missing, fmt.Sprintf("%s: %s %+v", s, seen[s].Status, seen[s].Progress))
				}
			}
			if len(missing) == 0 {
				return seen
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d rollouts did not %s within 5 minutes:\n%s", len(missing), len(services), what, strings.Join(missing, "\n"))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	phase := func(p contract.Phase) func(rollouts.Status) bool {
		return func(st rollouts.Status) bool { return st.Progress != nil && st.Progress.Phase == p }
	}

	inflight := services[:n]
	for _, s := range inflight {
		start(s, true)
	}
	waitAll("reach the approval gate", inflight, phase(contract.PhaseAwaitingApproval))

	out, code, err := run(t, "freeze", "start", "-e", "dev", "--reason", "incident INC-42")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "froze dev/*: incident INC-42 (until ended)")
	assert.Contains(t, out, "imago freeze end -e dev")
	out, _, err = run(t, "freeze", "list")
	require.NoError(t, err, out)
	assert.Regexp(t, `dev/\*\s+incident INC-42`, out)

	for _, s := range inflight {
		require.NoError(t, rollouts.Decide(ctx, e.client, s, "dev", contract.UpdateApprove, "freeze-test", "go"))
	}
	start(services[n], false) // a new rollout, started during the freeze
	all := append([]string(nil), services...)
	held := waitAll("hold in phase frozen", all, phase(contract.PhaseFrozen))
	for _, s := range inflight {
		p := held[s].Progress
		require.NotNil(t, p.Hold, s)
		assert.Contains(t, p.Hold.Why, "dev/* frozen by ")
		assert.Contains(t, p.Hold.Why, ": incident INC-42")
		assert.NotEmpty(t, p.NewFleet, "%s provisioned before the freeze", s)
		assert.Empty(t, p.Weights, "%s: no traffic moved while frozen", s)
		assert.Contains(t, p.Events[len(p.Events)-1].Message, "held before 100% of traffic to "+p.NewFleet)
	}
	assert.Empty(t, held[services[n]].Progress.NewFleet, "the new rollout holds before it provisions")

	// The freeze-end signal finds them by the ImagoPhase search attribute.
	require.Eventually(t, func() bool {
		list, err := rollouts.List(ctx, e.client, rollouts.ListOptions{Environment: "dev", Limit: 100})
		require.NoError(t, err)
		frozen := 0
		for _, r := range list {
			if r.Phase == contract.PhaseFrozen {
				frozen++
			}
		}
		return frozen == n+1
	}, time.Minute, 100*time.Millisecond, "every rollout is listed as frozen")

	out, code, err = run(t, "freeze", "end", "-e", "dev")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, fmt.Sprintf("ended the freeze of dev/* (incident INC-42); told %d frozen rollouts to go on", n+1))
	// Well within contract.FreezeRecheck: the signal, not the timer, released them.
	released := time.Now()
	done := waitAll("succeed", all, func(st rollouts.Status) bool { return st.Status == "Succeeded" })
	assert.Less(t, time.Since(released), contract.FreezeRecheck)
	for _, s := range all {
		assert.Equal(t, []contract.FleetWeight{{FleetID: done[s].Progress.NewFleet, Weight: 100}}, done[s].Progress.Weights, s)
	}
	out, _, err = run(t, "freeze", "list")
	require.NoError(t, err)
	assert.Contains(t, out, "no freezes")
	_, code, err = run(t, "freeze", "end", "-e", "dev")
	assert.ErrorContains(t, err, "no freeze of dev/* is in force")
	assert.Equal(t, 1, code)
}

// TestFreezeStartRefusesWhatItCannotDo: usage errors name the flag and freeze nothing.
func TestFreezeStartRefusesWhatItCannotDo(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	for args, want := range map[string][]string{
		"--reason: is required":                    {"freeze", "start", "-e", "prod"},
		"--until: \"soon\" is neither a time":      {"freeze", "start", "-e", "prod", "--reason", "x", "--until", "soon"},
		"--until: 2020-01-01T00:00:00Z has passed": {"freeze", "start", "--reason", "x", "--until", "2020-01-01T00:00:00Z"},
	} {
		out, code, err := run(t, want...)
		assert.ErrorContains(t, err, args, out)
		assert.Equal(t, 2, code, args)
	}
	out, _, err := run(t, "freeze", "list")
	require.NoError(t, err)
	assert.Contains(t, out, "no freezes")
	out, _, err = run(t, "freeze", "start", "--service", "web", "--reason", "db migration", "--until", "2h")
	require.NoError(t, err, out)
	out, _, err = run(t, "freeze", "list", "-o", "json")
	require.NoError(t, err)
	assert.Contains(t, out, `"service": "web"`)
	assert.Contains(t, out, `"until": "`)
}

// routerAddr is a free loopback address below the kernel's ephemeral range
// (32768-60999 here), so that none of the instances the test's 50 rollouts
// start on ":0" takes it in the minutes before its router binds it.
func routerAddr(t *testing.T, taken map[string]bool) string {
	t.Helper()
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if taken[addr] {
			continue
		}
		taken[addr] = true
		if ln, err := net.Listen("tcp", addr); err == nil {
			require.NoError(t, ln.Close())
			return addr
		}
	}
	t.Fatal("no free port in 20000-31999")
	return ""
}

// TestRolloutStatusSaysWhyARolloutIsHeld: `imago rollout status` prints the
// window or freeze a rollout waits for, and until when.
func TestRolloutStatusSaysWhyARolloutIsHeld(t *testing.T) {
	opens := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	var out strings.Builder
	require.NoError(t, printRolloutStatus(&out, rollouts.Status{WorkflowID: "rollout/prod/web", Progress: &contract.RolloutProgress{
		Story: contract.Story{Phase: contract.PhaseWaitingWindow},
		Hold:  &contract.Hold{Phase: contract.PhaseWaitingWindow, Why: "outside every deployment window (Mon-Fri 09:00-16:00 Europe/Berlin)", Until: &opens},
	}}))
	assert.Regexp(t, `(?m)^Phase:\s+waiting-window$`, out.String())
	assert.Contains(t, out.String(), "Held:      outside every deployment window (Mon-Fri 09:00-16:00 Europe/Berlin); until "+opens.Local().Format("Mon 2006-01-02 15:04 MST"))
}
