package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// seedInventory records deployments of hello to dev and prod in the catalog
// under a fresh IMAGO_HOME, as finished rollouts would.
func seedInventory(t *testing.T) {
	t.Helper()
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // status reads the catalog only
	ctx := context.Background()
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	defer cat.Close()
	for _, id := range []string{"img-v1", "img-v2", "img-v3"} {
		_, err := cat.Publish(ctx, contract.Image{ID: id, Service: "hello", Builder: "test"})
		require.NoError(t, err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, d := range []contract.Deployment{
		{Environment: "prod", ImageID: "img-v1", RunID: "run-1", StartedBy: "alice", Strategy: "blueGreen", Outcome: contract.OutcomeSucceeded},
		{Environment: "prod", ImageID: "img-v2", RunID: "run-2", StartedBy: "bob", Strategy: "canary", Outcome: contract.OutcomeSucceeded},
		{Environment: "prod", ImageID: "img-v3", RunID: "run-3", StartedBy: "carol", Strategy: "canary", Outcome: contract.OutcomeFailed, Reason: "health timeout after 60s"},
		{Environment: "dev", ImageID: "img-v3", RunID: "run-4", StartedBy: "carol", Strategy: "blueGreen", Outcome: contract.OutcomeSucceeded},
	} {
		d.Service = "hello"
		d.RolloutID = "rollout/" + d.Environment + "/hello"
		d.Started = t0.Add(time.Duration(i) * time.Hour)
		d.Finished = d.Started.Add(10 * time.Minute)
		_, err := cat.RecordDeployment(ctx, d)
		require.NoError(t, err)
	}
}

func TestStatusShowsLiveImagePerEnvironment(t *testing.T) {
	seedInventory(t)
	out, code, err := run(t, "status", "hello")
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.GreaterOrEqual(t, len(lines), 3, out)
	assert.Regexp(t, `^ENVIRONMENT\s+IMAGE\s+SINCE\s+ROLLOUT\s+RUN\s+STARTED BY\s+STRATEGY$`, lines[0])
	assert.Regexp(t, `^dev\s+img-v3\s+2026-03-01 \d\d:10:00\s+rollout/dev/hello\s+run-4\s+carol\s+blueGreen$`, lines[1])
	assert.Regexp(t, `^prod\s+img-v2\s+2026-03-01 \d\d:10:00\s+rollout/prod/hello\s+run-2\s+bob\s+canary$`, lines[2])
	assert.Regexp(t, `\nprod: img-v2 serves, live since 2026-03-01 \d\d:10:00 \(run run-2\); the last rollout \(run run-3\), of img-v3, failed at 2026-03-01 \d\d:10:00: health timeout after 60s\n`, out,
		"a newer failed rollout is pointed out, apart from what serves")
	assert.NotContains(t, out, "TIME", "no history without --history")

	out, code, err = run(t, "status", "hello", "-e", "prod", "--history", "2")
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.NotContains(t, out, "dev ")
	assert.Contains(t, out, "prod: the last 2 deployments of hello")
	hist := out[strings.Index(out, "TIME"):]
	lines = strings.Split(strings.TrimSpace(hist), "\n")
	require.Len(t, lines, 3, out)
	assert.Regexp(t, `^TIME\s+ACTION\s+IMAGE\s+OUTCOME\s+BY\s+REASON$`, lines[0])
	assert.Regexp(t, `^2026-03-01 \d\d:10:00\s+rollout\s+img-v3\s+failed\s+carol\s+health timeout after 60s$`, lines[1])
	assert.Regexp(t, `^2026-03-01 \d\d:10:00\s+rollout\s+img-v2\s+succeeded\s+bob\s+-$`, lines[2])
}

// A re-rollout of the serving image that was rolled back: the image still serves
// (from the fleet of its earlier run), and the line about the last rollout says
// that it was the same image, so it does not read as if that image were gone.
func TestStatusSaysWhatServesApartFromARolledBackReRolloutOfIt(t *testing.T) {
	seedInventory(t)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	started := time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	_, err = cat.RecordDeployment(ctx, contract.Deployment{
		Service: "hello", Environment: "dev", ImageID: "img-v3", RolloutID: "rollout/dev/hello", RunID: "run-5",
		StartedBy: "dave", Strategy: "canary", Outcome: contract.OutcomeRolledBack, Reason: "rolled back by dave: latency regression",
		Started: started, Finished: started.Add(10 * time.Minute),
	})
	require.NoError(t, err)
	require.NoError(t, cat.Close())

	out, code, err := run(t, "status", "hello", "-e", "dev")
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Regexp(t, `^dev\s+img-v3\s+2026-03-01 \d\d:10:00\s+rollout/dev/hello\s+run-4\s+carol\s+blueGreen$`, lines[1], "run-4's fleet still serves")
	assert.Regexp(t, `^dev: img-v3 serves, live since 2026-03-01 \d\d:10:00 \(run run-4\); the last rollout \(run run-5\), of img-v3 again, was rolled back at 2026-03-01 \d\d:10:00: rolled back by dave: latency regression$`, lines[2])
	assert.NotContains(t, out, "the last deployment, of img-v3, rolled-back")
}

func TestStatusJSON(t *testing.T) {
	seedInventory(t)
	out, code, err := run(t, "status", "hello", "-o", "json", "--history", "5")
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	var st serviceStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	assert.Equal(t, "hello", st.Service)
	require.Len(t, st.Environments, 2)
	dev, prod := st.Environments[0], st.Environments[1]
	assert.Equal(t, "dev", dev.Environment)
	require.NotNil(t, dev.Live)
	assert.Equal(t, "img-v3", dev.Live.ImageID)
	assert.Nil(t, dev.Last, "the newest deployment is the live one")
	assert.Len(t, dev.History, 1)

	assert.Equal(t, "prod", prod.Environment)
	require.NotNil(t, prod.Live)
	assert.Equal(t, "img-v2", prod.Live.ImageID)
	assert.Equal(t, "run-2", prod.Live.RunID)
	assert.Equal(t, "img-v1", prod.Live.Previous)
	assert.Equal(t, time.Date(2026, 3, 1, 13, 10, 0, 0, time.UTC), prod.Live.Finished)
	require.NotNil(t, prod.Last)
	assert.Equal(t, contract.OutcomeFailed, prod.Last.Outcome)
	require.Len(t, prod.History, 3)
	assert.Equal(t, []int64{3, 2, 1}, []int64{prod.History[0].Seq, prod.History[1].Seq, prod.History[2].Seq})
	for _, key := range []string{`"imageId": "img-v2"`, `"rolloutId": "rollout/prod/hello"`, `"startedBy": "bob"`, `"strategy": "canary"`, `"outcome": "succeeded"`, `"action": "rollout"`} {
		assert.Contains(t, out, key)
	}

	// Without --history there is no history key.
	out, _, err = run(t, "status", "hello", "-e", "dev", "-o", "json")
	require.NoError(t, err)
	assert.NotContains(t, out, `"history"`)
	assert.Contains(t, out, `"live": {`)
}

func TestStatusOfAServiceNeverDeployedSaysHowToDeploy(t *testing.T) {
	seedInventory(t)
	_, code, err := run(t, "status", "nope")
	require.Error(t, err)
	assert.Equal(t, 1, code)
	assert.Contains(t, err.Error(), "nope has never been deployed")
	assert.Contains(t, err.Error(), "deploy it with: imago rollout start -f FILE")

	_, code, err = run(t, "status", "hello", "-e", "staging")
	require.Error(t, err)
	assert.Equal(t, 1, code)
	assert.Contains(t, err.Error(), "hello has never been deployed to staging (it is deployed to dev, prod); deploy it with: imago rollout start -f FILE")

	// Bad input is a usage error.
	for _, a := range [][]string{
		{"status"},
		{"status", "hello", "--history", "-1"},
		{"status", "hello", "-o", "yaml"},
		{"status", "hello", "-e", "no/such"},
	} {
		_, code, err := run(t, a...)
		require.Error(t, err, "%v", a)
		assert.Equal(t, 2, code, "%v: %v", a, err)
	}
}
