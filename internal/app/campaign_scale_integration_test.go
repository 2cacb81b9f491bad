package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
)

// campaignEnvs are the environments of the 20-service campaign, one ring each.
var campaignEnvs = []string{"staging", "prod-eu", "prod-us"}

// seedCampaignFleet imports n services from examples/hello (stable on v2) and
// records in the inventory, as a finished deployment of v1, each one's last
// rollout spec in each of envs: what a campaign reads. Nothing runs yet, so
// every rollout of the campaign is its fleet's first (one instance and one
// router per service and environment): the cheapest fleet the real parts allow.
func seedCampaignFleet(e *env, n int, envs []string) *campaignFleet {
	f := importCampaignServices(e, n)
	for i, svc := range f.services {
		for j, env := range envs {
			f.listen[svc+"/"+env] = routerAddr(e.t, 1+i*len(envs)+j)
			f.seed(svc, env, "hello from")
		}
	}
	return f
}

// routerAddr is a free address for router k of a test whose routers start
// long after their addresses are picked: a port free on the loopback address
// 127.0.77.k, which no instance (127.0.0.1) or sim fleet (outside 127.0.0.0/16)
// takes meanwhile, as freeAddr's port on 127.0.0.1 might be.
func routerAddr(t *testing.T, k int) string {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.77.%d:0", k))
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// seed records a succeeded deployment of svc's v1 to env whose smoke check
// wants body on /.
func (f *campaignFleet) seed(svc, env, body string) {
	b, err := json.Marshal(f.spec(svc, env, f.v1[svc], body))
	require.NoError(f.e.t, err)
	_, err = f.e.deps.Catalog.RecordDeployment(context.Background(), contract.Deployment{
		Service: svc, Environment: env, ImageID: f.v1[svc], StartedBy: "integration-test (seed)",
		Outcome: contract.OutcomeSucceeded, Spec: b,
	})
	require.NoError(f.e.t, err)
}

// rolloutRuns counts, from the server's visibility, the Rollout workflow runs
// per workflow ID (rollout/<env>/<service>).
func (e *env) rolloutRuns() map[string]int {
	e.t.Helper()
	runs := map[string]int{}
	var token []byte
	for {
		resp, err := e.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: e.cfg.Namespace, Query: "WorkflowType = '" + contract.WorkflowRollout + "'", NextPageToken: token, PageSize: 1000,
		})
		require.NoError(e.t, err)
		for _, x := range resp.GetExecutions() {
			runs[x.GetExecution().GetWorkflowId()]++
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return runs
		}
	}
}

// v2Deployments counts the succeeded deployments of svc's v2 to env in the inventory.
func (f *campaignFleet) v2Deployments(svc, env string) int {
	hist, err := f.e.deps.Catalog.History(context.Background(), svc, env, 0)
	require.NoError(f.e.t, err)
	n := 0
	for _, d := range hist {
		if d.ImageID == f.v2[svc] && d.Outcome == contract.OutcomeSucceeded {
			n++
		}
	}
	return n
}

// The campaign test at its size: 20 services from examples/hello, 3
// rings (staging, prod-eu, prod-us), all on imago-worker processes. The first
// worker is killed (SIGKILL) in the middle of ring 1 and a second one carries
// the campaign on. svc2's prod-eu spec wants "v1" on /, so v2 fails its smoke
// check there: the error budget of 1 halts the campaign in ring 2, the rest of
// ring 2 and all of ring 3 untouched (no rollout started). A fixed spec (a
// rollout by hand) and resume finish it; no service is rolled out twice.
func TestCampaignOf20ServicesSurvivesAKilledWorkerAndHaltsOnItsBudget(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	bin := workerBinary(t, "")
	ctx := context.Background()
	seeding := time.Now()
	f := seedCampaignFleet(e, 20, campaignEnvs)
	f.seed("svc2", "prod-eu", "v1") // v2 answers "hello from v2": its smoke check fails
	t.Logf("20 services imported and seeded in 3 environments in %s", time.Since(seeding).Round(time.Millisecond))

	w1 := e.startWorkerProcess(bin, "first")
	c := contract.CampaignSpec{Name: "stable-20", Services: f.services, Image: contract.CampaignImage{Channel: "stable"},
		Rings: []contract.Ring{
			{Environments: []string{"staging"}, Parallel: 10},
			{Environments: []string{"prod-eu"}, Parallel: 4},
			{Environments: []string{"prod-us"}, Parallel: 10},
		},
		ErrorBudget: contract.ErrorBudget{MaxFailed: 1},
	}
	campaignStart := time.Now()
	run, err := campaigns.Start(ctx, e.client, c, "integration-test")
	require.NoError(t, err)

	// Kill the worker while ring 1 has rollouts done and rollouts in flight.
	e.waitCampaign(c.Name, "ring 1 half done", func(r campaigns.Run) bool {
		if len(r.Progress.Rings) == 0 {
			return false
		}
		states := map[contract.TargetState]int{}
		for _, tg := range r.Progress.Rings[0].Targets {
			states[tg.State]++
		}
		return states[contract.TargetSucceeded] >= 3 && states[contract.TargetRunning] >= 1
	})
	w1.kill()
	killed := time.Now()
	e.startWorkerProcess(bin, "second")

	halted := e.waitCampaign(c.Name, "halt", func(r campaigns.Run) bool {
		if !r.Progress.Halted {
			return false
		}
		for _, tg := range r.Progress.Rings[1].Targets {
			if tg.State == contract.TargetRunning {
				return false
			}
		}
		return true
	})
	t.Logf("halted in ring 2 %s after the start (the worker was killed %s after it)",
		time.Since(campaignStart).Round(time.Millisecond), killed.Sub(campaignStart).Round(time.Millisecond))
	p := halted.Progress
	assert.Equal(t, contract.PhaseHalted, p.Phase)
	assert.Equal(t, 1, p.Ring, "halted in ring 2")
	for _, svc := range f.services {
		assert.Equal(t, contract.TargetSucceeded, targetStates(p.Rings[0])[svc], "staging %s", svc)
		assert.Equal(t, "hello from v2", f.get(svc, "staging"))
	}
	ring2 := targetStates(p.Rings[1])
	assert.Equal(t, contract.TargetFailed, ring2["svc2"])
	type target struct{ svc, env string }
	var untouched []target
	for _, svc := range f.services {
		switch ring2[svc] {
		case contract.TargetPending:
			untouched = append(untouched, target{svc, "prod-eu"})
		case contract.TargetSucceeded:
			assert.Equal(t, "hello from v2", f.get(svc, "prod-eu"), "%s, started before the halt, finished", svc)
		case contract.TargetFailed:
			require.Equal(t, "svc2", svc)
		default:
			t.Errorf("%s in prod-eu is %s at the halt", svc, ring2[svc])
		}
	}
	// At most parallel-1 rollouts ran beside svc2's, plus those that started
	// as their neighbours finished before it failed: most of ring 2 waits.
	assert.GreaterOrEqual(t, len(untouched), 10, "ring 2's pending rollouts at the halt: %v", untouched)
	for _, tg := range p.Rings[2].Targets {
		assert.Equal(t, contract.TargetPending, tg.State, "ring 3: %s", tg.Service)
		untouched = append(untouched, target{tg.Service, tg.Environment})
	}
	for _, u := range untouched {
		_, err := e.client.DescribeWorkflowExecution(ctx, contract.RolloutWorkflowID(u.svc, u.env), "")
		var nf *serviceerror.NotFound
		assert.True(t, errors.As(err, &nf), "no rollout of %s in %s started: %v", u.svc, u.env, err)
		hist, err := e.deps.Catalog.History(ctx, u.svc, u.env, 0)
		require.NoError(t, err)
		assert.Len(t, hist, 1, "%s in %s: only the seeded deployment", u.svc, u.env)
	}

	// Fix svc2's check by a rollout by hand, then resume.
	_, err = e.rolloutWithin(f.spec("svc2", "prod-eu", f.v1["svc2"], "hello from"), 2*time.Minute)
	require.NoError(t, err)
	require.NoError(t, campaigns.Decide(ctx, e.client, c.Name, contract.UpdateResume, "ana", "svc2's check fixed"))
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var res contract.CampaignResult
	require.NoError(t, e.client.GetWorkflow(wctx, run.GetID(), "").Get(wctx, &res))
	t.Logf("20 services × 3 rings: campaign %s from start to done (with a worker killed and a halt); test %s",
		time.Since(campaignStart).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	assert.Equal(t, 60, res.Succeeded, res.Reason)
	assert.Zero(t, res.Failed, res.Reason)

	// No service rolled out twice: one succeeded v2 deployment per service and
	// environment in the inventory, one Rollout run per target in visibility
	// (svc2 in prod-eu: the failed one, the fix by hand and the retry).
	want := map[string]int{}
	for _, svc := range f.services {
		for _, env := range campaignEnvs {
			assert.Equal(t, "hello from v2", f.get(svc, env), "%s in %s", svc, env)
			assert.Equal(t, 1, f.v2Deployments(svc, env), "%s in %s: v2 rolled out once", svc, env)
			want[contract.RolloutWorkflowID(svc, env)] = 1
		}
	}
	want[contract.RolloutWorkflowID("svc2", "prod-eu")] = 3
	var got map[string]int
	deadline := time.Now().Add(30 * time.Second)
	for got = e.rolloutRuns(); fmt.Sprint(got) != fmt.Sprint(want) && time.Now().Before(deadline); got = e.rolloutRuns() {
		time.Sleep(200 * time.Millisecond) // visibility records closed runs a moment after they close
	}
	assert.Equal(t, want, got, "Rollout runs per rollout ID")
	for _, rs := range res.Rings {
		for _, tg := range rs.Targets {
			want := 1
			if tg.Service == "svc2" && tg.Environment == "prod-eu" {
				want = 2
			}
			assert.Equal(t, want, tg.Attempts, "attempts of %s in %s", tg.Service, tg.Environment)
		}
	}
}
