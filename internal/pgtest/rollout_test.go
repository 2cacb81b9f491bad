package pgtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// TestRolloutV1ThenV2OnPostgres rolls hello v1 then v2 through the router with
// the real imago worker on a Temporal server whose store and visibility are
// fresh PostgreSQL databases with the schema temporal-sql-tool would make.
func TestRolloutV1ThenV2OnPostgres(t *testing.T) {
	pg := openPostgres(t)
	store, visibility := temporalDatabases(t, pg)
	ts := startTemporal(t, store, visibility)
	const namespace = "imago-pgtest"
	ts.registerNamespace(t, namespace)

	// The worker as imago-worker runs it: app.OpenDeps, Config.Dial (payloads
	// encrypted with the key under IMAGO_HOME), app.NewWorker.
	ctx := context.Background()
	home := t.TempDir()
	t.Cleanup(func() {
		if err := local.KillAll(home); err != nil {
			t.Errorf("kill the processes of %s: %v", home, err)
		}
	})
	cfg := app.Config{Home: home, TemporalAddress: ts.addr, Namespace: namespace}
	deps, err := app.OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	c, err := cfg.Dial(ctx)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := app.NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	importImage := func(build string) string {
		img, err := deps.Catalog.Import(ctx, filepath.Join(helloBuilds, build), "hello", []string{"./hello"}, nil)
		require.NoError(t, err)
		return img.ID
	}
	v1, v2 := importImage("v1"), importImage("v2")
	listen := freeAddr(t)
	start := func(image, expectBody string, soak contract.Duration) client.WorkflowRun {
		t.Helper()
		r := spec.Rollout{Rollout: contract.Rollout{
			Service: "hello", Environment: "test", Image: contract.ImageRef{ID: image},
			Fleet: contract.FleetSpec{Size: 2}, Listen: listen,
			Health: contract.Health{Interval: contract.Duration(200 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
			Checks: []contract.Check{{Path: "/", ExpectBody: expectBody}},
			Soak:   &soak,
		}}
		run, err := rollouts.Start(ctx, c, r, rollouts.StartOptions{StartedBy: "pgtest"})
		require.NoError(t, err)
		return run
	}
	result := func(run client.WorkflowRun) contract.RolloutResult {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		var res contract.RolloutResult
		require.NoError(t, run.Get(rctx, &res), "rollout %s", run.GetID())
		return res
	}

	res1 := result(start(v1, "v1", contract.Duration(time.Second)))
	assert.Equal(t, "hello from v1", get(t, listen))

	// v2, with Temporal restarted while the old fleet soaks: the rollout, its
	// timer and the worker carry on from what PostgreSQL kept.
	run := start(v2, "v2", contract.Duration(3*time.Second))
	pollUntil(t, "the v2 rollout soaks", func() bool {
		st, err := rollouts.Get(ctx, c, "hello", "test")
		return err == nil && st.Progress != nil && st.Progress.Phase == contract.PhaseSoaking
	})
	assert.Equal(t, "hello from v2", get(t, listen))
	ts.restart(t)
	res2 := result(run)
	assert.Equal(t, v2, res2.ImageID)
	assert.Equal(t, []string{res1.FleetID}, res2.Decommissioned)
	for range 10 {
		require.Equal(t, "hello from v2", get(t, listen))
	}

	// The old fleet is gone: only v2's instances and the router are alive.
	procs, err := deps.Local.Processes()
	require.NoError(t, err)
	byFleet, routers := map[string]int{}, 0
	for _, p := range procs {
		if p.Router != "" {
			routers++
			continue
		}
		byFleet[p.FleetID]++
	}
	assert.Equal(t, map[string]int{res2.FleetID: 2}, byFleet, "only v2's two instances may be alive")
	assert.Equal(t, 1, routers)
	fleets, err := deps.Provider.ListFleets(ctx, provider.Filter{})
	require.NoError(t, err)
	require.Len(t, fleets, 1)
	assert.Equal(t, res2.FleetID, fleets[0].ID)

	// What `imago rollout status` and `imago rollout list` show, read back from
	// PostgreSQL (visibility with imago's search attributes).
	st, err := rollouts.Get(ctx, c, "hello", "test")
	require.NoError(t, err)
	assert.Equal(t, "Succeeded", st.Status)
	var list []rollouts.Summary
	pollUntil(t, "both rollouts are listed", func() bool {
		list, err = rollouts.List(ctx, c, rollouts.ListOptions{Service: "hello"})
		return err == nil && len(list) == 2 && list[0].Phase == contract.PhaseSucceeded && list[1].Phase == contract.PhaseSucceeded
	})
	assert.Equal(t, v2, list[0].Image)
	assert.Equal(t, v1, list[1].Image)

	// And they are in the databases a pg_dump backs up, with payloads encrypted:
	// the spec (and its listen address) is not readable there without the key.
	storeDB, err := pg.open(store.DatabaseName)
	require.NoError(t, err)
	defer storeDB.Close()
	var n int
	require.NoError(t, storeDB.QueryRow("SELECT count(*) FROM current_executions WHERE workflow_id = $1", "rollout/test/hello").Scan(&n))
	assert.Equal(t, 1, n, "rollout/test/hello in %s.current_executions", store.DatabaseName)
	inHistory := func(s string) int {
		var n int
		require.NoError(t, storeDB.QueryRow("SELECT count(*) FROM history_node WHERE position($1::bytea IN data) > 0", s).Scan(&n))
		return n
	}
	assert.NotZero(t, inHistory(v2), "history rows holding the ImagoImage search attribute %s (indexed, so not encrypted)", v2)
	assert.Zero(t, inHistory(listen), "history rows holding the spec's listen address %s in plain text", listen)
	visDB, err := pg.open(visibility.DatabaseName)
	require.NoError(t, err)
	defer visDB.Close()
	require.NoError(t, visDB.QueryRow("SELECT count(*) FROM executions_visibility WHERE workflow_id = $1 AND workflow_type_name = 'Rollout'", "rollout/test/hello").Scan(&n))
	assert.Equal(t, 2, n, "rollouts in %s.executions_visibility", visibility.DatabaseName)
}

// get asks the router for / and returns the body.
func get(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "router answered %s", body)
	return strings.TrimSpace(string(body))
}

// pollUntil polls ok for up to 30 s.
func pollUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
