package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// campaignFleet is six services built from examples/hello, each deployed with
// v1 to staging and prod behind its own router, and its stable channel on v2.
type campaignFleet struct {
	e        *env
	services []string
	listen   map[string]string // service/env → the router's address
	v1, v2   map[string]string // service → image
}

func newCampaignFleet(e *env, n int) *campaignFleet {
	ctx := context.Background()
	f := importCampaignServices(e, n)
	// The first deployments, all at once: real rollouts, which record their specs.
	var runs []client.WorkflowRun
	for _, svc := range f.services {
		for _, env := range []string{"staging", "prod"} {
			f.listen[svc+"/"+env] = freeAddr(e.t)
			run, err := rollouts.Start(ctx, e.client, f.spec(svc, env, f.v1[svc], "hello from"), rollouts.StartOptions{StartedBy: "integration-test"})
			require.NoError(e.t, err)
			runs = append(runs, run)
		}
	}
	for _, run := range runs {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		require.NoError(e.t, run.Get(wctx, nil), run.GetID())
		cancel()
	}
	return f
}

// importCampaignServices imports v1 and v2 of examples/hello as services
// svc1..svcN and points each one's stable channel at its v2; nothing is
// deployed yet. Each build is packed once and published under every name.
func importCampaignServices(e *env, n int) *campaignFleet {
	ctx := context.Background()
	f := &campaignFleet{e: e, listen: map[string]string{}, v1: map[string]string{}, v2: map[string]string{}}
	archives := map[string][]byte{}
	for _, build := range []string{"v1", "v2"} {
		a, err := image.Pack(filepath.Join(helloBuilds, build))
		require.NoError(e.t, err)
		archives[build] = a
	}
	for i := 1; i <= n; i++ {
		svc := fmt.Sprintf("svc%d", i)
		f.services = append(f.services, svc)
		for build, m := range map[string]map[string]string{"v1": f.v1, "v2": f.v2} {
			img, err := e.deps.Catalog.PublishArchive(ctx, archives[build], contract.Image{Service: svc, Entrypoint: []string{"./hello"}, Builder: "import"})
			require.NoError(e.t, err)
			m[svc] = img.ID
		}
		_, err := e.deps.Catalog.MoveChannel(ctx, svc, "stable", f.v2[svc], catalog.MoveOptions{By: "integration-test"})
		require.NoError(e.t, err)
	}
	return f
}

// spec is the rollout spec of svc in env: one instance, a smoke check that
// wants body in /, no soak.
func (f *campaignFleet) spec(svc, env, img, body string) spec.Rollout {
	soak := contract.Duration(0)
	r := spec.Rollout{Rollout: contract.Rollout{
		Service: svc, Environment: env, Provider: "local", Image: contract.ImageRef{ID: img},
		Fleet: contract.FleetSpec{Size: 1}, Listen: f.listen[svc+"/"+env],
		Health: contract.Health{Interval: contract.Duration(100 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
		Checks: []contract.Check{{Path: "/", ExpectBody: body}}, Soak: &soak,
	}}
	require.NoError(f.e.t, r.Normalize())
	return r
}

// get is what svc's router in env answers on /.
func (f *campaignFleet) get(svc, env string) string {
	resp, err := http.Get("http://" + f.listen[svc+"/"+env] + "/")
	require.NoError(f.e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.e.t, err)
	return strings.TrimSpace(string(b))
}

// waitCampaign polls campaign name until ok holds (4 minutes at most).
func (e *env) waitCampaign(name, what string, ok func(campaigns.Run) bool) campaigns.Run {
	e.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	var last campaigns.Run
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = campaigns.Latest(context.Background(), e.client, name)
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("campaign %s: %s did not happen within 4m; last: %+v (error %v)", name, what, last.Progress, lastErr)
	return last
}

func targetStates(rs contract.RingStatus) map[string]contract.TargetState {
	out := map[string]contract.TargetState{}
	for _, t := range rs.Targets {
		out[t.Service] = t.State
	}
	return out
}

// The test, on six services: svc3's prod spec wants "v1" on /, so
// rolling v2 there fails its smoke check; with an error budget of 1 the
// campaign halts in ring 2, the rest of ring 2 untouched. A fixed spec
// (rolled out by hand) and resume finish it, with no rollout done twice.
func TestCampaignHaltsOnItsErrorBudgetAndResumeFinishesIt(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	f := newCampaignFleet(e, 6)
	// svc3's last prod deployment wants "v1": v2 will fail its smoke check there.
	_, err := e.rolloutWithin(f.spec("svc3", "prod", f.v1["svc3"], "v1"), 2*time.Minute)
	require.NoError(t, err)

	c := contract.CampaignSpec{Name: "stable-rollout", Services: f.services, Image: contract.CampaignImage{Channel: "stable"},
		Rings: []contract.Ring{
			{Environments: []string{"staging"}, Parallel: 3},
			{Environments: []string{"prod"}, Parallel: 2},
		},
		ErrorBudget: contract.ErrorBudget{MaxFailed: 1},
	}
	run, err := campaigns.Start(ctx, e.client, c, "integration-test")
	require.NoError(t, err)
	_, err = campaigns.Start(ctx, e.client, c, "someone-else")
	var running *campaigns.AlreadyRunningError
	require.ErrorAs(t, err, &running)

	halted := e.waitCampaign(c.Name, "halt", func(r campaigns.Run) bool {
		return r.Progress.Halted && targetStates(r.Progress.Rings[1])["svc4"] != contract.TargetRunning
	})
	p := halted.Progress
	assert.Equal(t, contract.PhaseHalted, p.Phase)
	assert.Equal(t, 1, p.Ring, "halted in ring 2")
	for _, svc := range f.services {
		assert.Equal(t, contract.TargetSucceeded, targetStates(p.Rings[0])[svc], "staging %s", svc)
	}
	prod := targetStates(p.Rings[1])
	assert.Equal(t, contract.TargetFailed, prod["svc3"])
	assert.Equal(t, contract.TargetSucceeded, prod["svc4"], "running beside svc3, it finished on its own")
	assert.Equal(t, contract.TargetPending, prod["svc5"])
	assert.Equal(t, contract.TargetPending, prod["svc6"])
	for _, svc := range []string{"svc5", "svc6"} {
		assert.Equal(t, "hello from v1", f.get(svc, "prod"), "%s in prod is untouched", svc)
		d, err := e.deps.Catalog.Live(ctx, svc, "prod")
		require.NoError(t, err)
		assert.Equal(t, f.v1[svc], d.ImageID)
	}
	assert.Equal(t, "hello from v1", f.get("svc3", "prod"), "the failed rollout left v1 serving")
	for _, svc := range f.services {
		assert.Equal(t, "hello from v2", f.get(svc, "staging"))
	}
	// The child rollouts are the usual ones: imago rollout status shows them.
	st, err := rollouts.Get(ctx, e.client, "svc3", "prod")
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseFailed, st.Progress.Phase)

	// resume before the fix would fail again; fix svc3's spec by a rollout by hand, then resume.
	_, err = e.rolloutWithin(f.spec("svc3", "prod", f.v1["svc3"], "hello from"), 2*time.Minute)
	require.NoError(t, err)
	require.NoError(t, campaigns.Decide(ctx, e.client, c.Name, contract.UpdateResume, "ana", "svc3's check fixed"))
	err = campaigns.Decide(ctx, e.client, c.Name, contract.UpdateResume, "ana", "twice")
	assert.ErrorContains(t, err, "not halted")

	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var res contract.CampaignResult
	require.NoError(t, e.client.GetWorkflow(wctx, run.GetID(), "").Get(wctx, &res))
	assert.Equal(t, 12, res.Succeeded)
	assert.Equal(t, 0, res.Failed)
	for _, svc := range f.services {
		for _, env := range []string{"staging", "prod"} {
			assert.Equal(t, "hello from v2", f.get(svc, env), "%s in %s", svc, env)
			hist, err := e.deps.Catalog.History(ctx, svc, env, 0)
			require.NoError(t, err)
			var v2 int
			for _, d := range hist {
				if d.ImageID == f.v2[svc] && d.Outcome == contract.OutcomeSucceeded {
					v2++
				}
			}
			assert.Equal(t, 1, v2, "%s in %s: v2 rolled out once", svc, env)
			// The inventory keeps the spec deployed, image and all.
			var recorded spec.Rollout
			require.NoError(t, json.Unmarshal(hist[0].Spec, &recorded))
			assert.Equal(t, f.v2[svc], recorded.Image.ID)
			assert.Equal(t, f.listen[svc+"/"+env], recorded.Listen)
		}
	}
	done, err := campaigns.Latest(ctx, e.client, c.Name)
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseSucceeded, done.Progress.Phase)
	require.Len(t, done.Progress.Resumes, 1)
	assert.Equal(t, "ana", done.Progress.Resumes[0].By)
}
