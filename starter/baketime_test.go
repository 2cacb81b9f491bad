package main

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/imago/imago/internal/netguard"
)

// While a bake time runs, `imago rollout status` shows the phase bake-time
// and the time left, and so do the web UI's current details; an abort ends it.
func TestRolloutStatusShowsTheBakeTimeLeft(t *testing.T) {
	t.Setenv(netguard.EnvAllow, "127.0.0.1") // the worker may ask the loopback Prometheus
	prom := newPromEndpoint(t)
	e := newImagoEnv(t)
	v1, v2 := e.simImage("hello", "v1"), e.simImage("hello", "v2")
	out, _, err := run(t, "rollout", "start", "-f", e.rolloutSpec(""), "--image", v1, "--wait")
	require.NoError(t, err, out)
	old := regexp.MustCompile(`fleet (fl-[0-9a-f]+)`).FindStringSubmatch(out)
	require.NotNil(t, old, out)
	out, _, err = run(t, "rollout", "start", "-f", e.rolloutSpec(fmt.Sprintf(`analyses:
  errors:
    provider: prometheus
    address: %s
    query: '%s'
    max: 0.05
    interval: 1s
bakeTime: {duration: 1h, analysis: errors}
`, prom.URL, promQuery)), "--image", v2)
	require.NoError(t, err, out)

	deadline := time.Now().Add(time.Minute)
	for {
		out, _, err = run(t, "rollout", "status", "hello", "-e", "dev")
		require.NoError(t, err, out)
		if regexp.MustCompile(`(?m)^Phase:\s+bake-time$`).MatchString(out) {
			break
		}
		require.True(t, time.Now().Before(deadline), "no bake time within a minute:\n%s", out)
		time.Sleep(100 * time.Millisecond)
	}
	assert.Regexp(t, `(?m)^Step:\s+bake time: analysis errors on fl-[0-9a-f]+, every 1s; [0-9hms]+ left of 1h0m0s \(until \d\d:\d\d:\d\d UTC\); a failure switches traffic back to `+old[1]+`$`, out)
	assert.Regexp(t, `(?m)^Bake time:\s+[0-9hms]+ left \(until \d\d:\d\d:\d\d\)$`, out)

	st, _ := statusAnalysis(t)
	val, err := e.client.QueryWorkflow(context.Background(), st.WorkflowID, st.RunID, "__temporal_workflow_metadata")
	require.NoError(t, err)
	var meta sdkpb.WorkflowMetadata
	require.NoError(t, val.Get(&meta))
	assert.Regexp(t, `^\*\*bake-time\*\* — bake time: analysis errors on fl-[0-9a-f]+, every 1s; [0-9hms]+ left of 1h0m0s`, meta.GetCurrentDetails())

	out, _, err = run(t, "rollout", "abort", "hello", "-e", "dev", "--reason", "seen enough")
	require.NoError(t, err, out)
	waitEnded(t, e)
}
