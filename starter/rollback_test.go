package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/api"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// rollbackEnv is an imagoEnv with the HTTP API served beside the CLI, both on
// the same Temporal server and catalog.
type rollbackEnv struct {
	*imagoEnv
	api *httptest.Server
}

func newRollbackEnv(t *testing.T) *rollbackEnv {
	e := newImagoEnv(t)
	srv := httptest.NewServer(api.NewServer(api.Config{Client: e.client, Catalog: e.deps.Catalog, InsecureNoAuth: true}))
	t.Cleanup(srv.Close)
	return &rollbackEnv{imagoEnv: e, api: srv}
}

// rollout rolls img out with the CLI and waits for it to succeed.
func (e *rollbackEnv) rollout(img string) {
	e.t.Helper()
	out, _, err := run(e.t, "rollout", "start", "-f", e.rolloutSpec(""), "--image", img, "--wait")
	require.NoError(e.t, err, out)
}

// served is what the router of hello in dev answers on "/".
func (e *rollbackEnv) served() string {
	e.t.Helper()
	resp, err := http.Get("http://" + e.listen + "/")
	require.NoError(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return string(body)
}

// postRollback is POST /v1/rollouts/hello/dev/rollback: its status and body.
func (e *rollbackEnv) postRollback() (int, string) {
	e.t.Helper()
	resp, err := http.Post(e.api.URL+"/v1/rollouts/hello/dev/rollback", "application/json", strings.NewReader(`{"reason":"latency regression"}`))
	require.NoError(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, string(body)
}

// latestRun is the run ID of the newest rollout of hello to dev.
func (e *rollbackEnv) latestRun() string {
	e.t.Helper()
	st, err := rollouts.Get(context.Background(), e.client, "hello", "dev")
	require.NoError(e.t, err)
	return st.RunID
}

// waitEnded polls the newest rollout of hello to dev until it has ended, and
// returns its status.
func (e *rollbackEnv) waitEnded() rollouts.Status {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := rollouts.Get(context.Background(), e.client, "hello", "dev")
		if err == nil && st.Status != "Running" {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the rollout of hello to dev did not end within 90s (last: %+v, %v)", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// activities lists the activities a run scheduled, in order.
func (e *rollbackEnv) activities(runID string) []string {
	e.t.Helper()
	var out []string
	it := e.client.GetWorkflowHistory(context.Background(), contract.RolloutWorkflowID("hello", "dev"), runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			out = append(out, a.GetActivityType().GetName())
		}
	}
	return out
}

// After decommission, a rollback through the CLI and one through the API are
// the same rollout: it finds the previous deployable image itself (its history
// has the PreviousImage activity), says from which image to which in `rollout
// status`, and serves it.
func TestRollbackAfterDecommissionIsTheSameRolloutThroughTheCLIAndTheAPI(t *testing.T) {
	e := newRollbackEnv(t)
	v1, v2 := e.simImage("hello", "v1"), e.simImage("hello", "v2")
	e.rollout(v1)
	e.rollout(v2)
	require.Contains(t, e.served(), "v2")
	fromTo := fmt.Sprintf("from %s to %s (the previous deployable image)", v2, v1)

	out, _, err := run(t, "rollout", "rollback", "hello", "-e", "dev", "--reason", "latency regression", "--wait")
	require.NoError(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("rolling dev/hello back to %s: started rollout/dev/hello", v1))
	assert.Contains(t, e.served(), "v1")
	cliRun := e.latestRun()
	status, _, err := run(t, "rollout", "status", "hello", "-e", "dev")
	require.NoError(t, err, status)
	assert.Contains(t, status, "Rollback:")
	assert.Contains(t, status, fromTo, status)
	assert.Contains(t, status, "Succeeded")
	assert.Contains(t, status, fmt.Sprintf("rolling back from %s to %s, the previous deployable image", v2, v1), "the event")

	e.rollout(v2)
	require.Contains(t, e.served(), "v2")
	code, body := e.postRollback()
	require.Equal(t, http.StatusCreated, code, body)
	var started api.StartedRollout
	require.NoError(t, json.Unmarshal([]byte(body), &started))
	assert.Equal(t, "rollback", started.Action)
	assert.Equal(t, v1, started.Image.ID)
	assert.Equal(t, "blueGreen", started.Strategy, "the last rollout's strategy")
	st := e.waitEnded()
	assert.Equal(t, "Succeeded", st.Status)
	assert.Contains(t, e.served(), "v1")
	apiStatus, _, err := run(t, "rollout", "status", "hello", "-e", "dev")
	require.NoError(t, err, apiStatus)
	assert.Contains(t, apiStatus, fromTo, apiStatus)
	require.NotNil(t, st.Progress)
	assert.Equal(t, "rollback", st.Progress.Action)
	assert.Equal(t, v2, st.Progress.RollbackFrom)
	assert.Equal(t, v1, st.Progress.ImageID)

	// Both runs did the same: the same activities, the image found by the workflow.
	cli, viaAPI := e.activities(cliRun), e.activities(st.RunID)
	assert.Contains(t, cli, "PreviousImage")
	assert.Equal(t, cli, viaAPI, "the CLI's and the API's rollbacks run the same steps")
}

// With nothing deployable but the live image, a rollback is refused, through
// the CLI and the API alike, and nothing is started. A revoked previous image
// is skipped: the rollback goes to the newest deployable image before it.
func TestRollbackRefusesWithoutAPreviousImageAndSkipsARevokedOne(t *testing.T) {
	e := newRollbackEnv(t)
	v1, v2, v3 := e.simImage("hello", "v1"), e.simImage("hello", "v2"), e.simImage("hello", "v3")
	e.rollout(v1)
	before := e.latestRun()

	want := fmt.Sprintf("no previous deployable image of hello in dev (live: %s)", v1)
	out, code, err := run(t, "rollout", "rollback", "hello", "-e", "dev")
	require.Error(t, err)
	assert.Equal(t, 1, code)
	assert.Contains(t, err.Error(), want)
	status, body := e.postRollback()
	assert.Equal(t, http.StatusConflict, status, body)
	assert.Contains(t, body, want)
	assert.Equal(t, before, e.latestRun(), "nothing was started; %s", out)
	assert.Contains(t, e.served(), "v1")

	e.rollout(v2)
	e.rollout(v3)
	out, _, err = run(t, "image", "revoke", v2, "--reason", "CVE-2026-1234")
	require.NoError(t, err, out)
	out, _, err = run(t, "rollout", "rollback", "hello", "-e", "dev", "--wait")
	require.NoError(t, err, out)
	assert.Contains(t, out, "back to "+v1, "v2 is revoked: skipped")
	assert.Contains(t, e.served(), "v1")
	st := e.waitEnded()
	require.NotNil(t, st.Progress)
	assert.Equal(t, v3, st.Progress.RollbackFrom)
	assert.Equal(t, v1, st.Progress.ImageID)
}
