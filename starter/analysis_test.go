package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/rollouts"
)

// promEndpoint is a Prometheus-compatible HTTP API on loopback: each instant
// query answers the next value (0.001, 0.002, … 0.040, then 0.001 again: all
// below max 0.05) in a vector of one series, or,
// while empty is set, an empty vector (a fleet without traffic yet).
type promEndpoint struct {
	*httptest.Server
	n     atomic.Int64
	empty atomic.Bool
}

func newPromEndpoint(t *testing.T) *promEndpoint {
	p := &promEndpoint{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if p.empty.Load() {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
			return
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"%g"]}]}}`,
			time.Now().Unix(), float64((p.n.Add(1)-1)%40+1)/1000)
	}))
	t.Cleanup(p.Close)
	return p
}

const promQuery = `sum(rate(imago_router_errors_total{fleet="{{fleet}}"}[1m])) / sum(rate(imago_router_requests_total{fleet="{{fleet}}"}[1m]))`

// canaryWith is the YAML of a canary whose one analysis, errors, asks prom.
func canaryWith(prom *promEndpoint, extra string) string {
	return fmt.Sprintf(`strategy: {type: canary, steps: [{setWeight: 50}, {analysis: errors}]}
analyses:
  errors:
    provider: prometheus
    address: %s
    query: '%s'
    max: 0.05
    interval: 100ms
%s`, prom.URL, promQuery, extra)
}

// What a person sees of an analysis: `imago rollout status` shows every
// measurement's time, value and verdict and the query as run, once; -o json
// carries the same.
func TestRolloutStatusShowsEveryAnalysisMeasurement(t *testing.T) {
	t.Setenv(netguard.EnvAllow, "127.0.0.1") // the worker may ask the loopback Prometheus
	prom := newPromEndpoint(t)
	e := newImagoEnv(t)
	v1 := e.simImage("hello", "v1")

	out, _, err := run(t, "rollout", "start", "-f", e.rolloutSpec(canaryWith(prom, "    metric: errorRate\n    count: 3\n")), "--image", v1, "--wait")
	require.NoError(t, err, out)

	out, _, err = run(t, "rollout", "status", "hello", "-e", "dev")
	require.NoError(t, err, out)
	fleet := regexp.MustCompile(`(?m)^New fleet:\s+(fl-[0-9a-f]+) `).FindStringSubmatch(out)
	require.NotNil(t, fleet, out)
	query := strings.ReplaceAll(promQuery, "{{fleet}}", fleet[1])
	assert.Contains(t, out, "\nAnalyses:\n  errors of "+fleet[1]+": Successful — errorRate of fleet "+fleet[1]+" met max 0.05 in 3 of 3 measurements\n")
	assert.Contains(t, out, "\n    measures: prometheus "+prom.URL+" (instant query); passes at max 0.05; no data counts as inconclusive\n")
	assert.Contains(t, out, "\n    query:    "+query+"\n")
	assert.Equal(t, 1, strings.Count(out, "imago_router_errors_total"), "the query is shown once:\n%s", out)
	assert.Contains(t, out, "\n    3 measurements: 3 successful\n")
	assert.Regexp(t, `\n    TIME\s+VALUE\s+VERDICT\s+MEASUREMENT\n`, out)
	for _, v := range []string{"0.001", "0.002", "0.003"} {
		assert.Regexp(t, `\n    \d\d:\d\d:\d\d\s+`+regexp.QuoteMeta(v)+`\s+Successful\s+`+regexp.QuoteMeta(v)+` <= max 0.05\n`, out)
	}
	assert.NotContains(t, out, "({})")

	st, an := statusAnalysis(t)
	assert.Equal(t, query, an.Query)
	assert.Equal(t, "prometheus "+prom.URL+" (instant query)", an.Source)
	require.NotNil(t, an.Counts)
	assert.Equal(t, 3, an.Counts.Successful)
	var values []float64
	for _, m := range an.Measurements {
		require.NotNil(t, m.Value, "%+v", m)
		values = append(values, *m.Value)
		assert.Equal(t, "Successful", m.Phase)
		assert.False(t, m.Time.IsZero())
	}
	assert.Equal(t, []float64{0.001, 0.002, 0.003}, values)

	// The Temporal web UI's current details show them as a table.
	val, err := e.client.QueryWorkflow(context.Background(), st.WorkflowID, st.RunID, "__temporal_workflow_metadata")
	require.NoError(t, err)
	var meta sdkpb.WorkflowMetadata
	require.NoError(t, val.Get(&meta))
	details := meta.GetCurrentDetails()
	assert.Contains(t, details, "**Analysis errors** of "+fleet[1]+": Successful — errorRate of fleet "+fleet[1]+" met max 0.05 in 3 of 3 measurements")
	assert.Contains(t, details, "```promql\n"+query+"\n```")
	assert.Regexp(t, `\| \d\d:\d\d:\d\d \| 0\.002 \| Successful \| 0\.002 <= max 0\.05 \|`, details)
}

// A fleet without traffic yet (Prometheus answers an empty vector) is "no
// data", never a silent pass: by default the rollout waits for a person, with
// advice; onNoData: fail rolls back; onNoData: pass goes on, saying so.
func TestAnAnalysisWithoutDataDoesWhatOnNoDataSays(t *testing.T) {
	t.Setenv(netguard.EnvAllow, "127.0.0.1")
	prom := newPromEndpoint(t)
	prom.empty.Store(true)
	e := newImagoEnv(t)
	v1 := e.simImage("hello", "v1")
	ctx := context.Background()

	// Default (inconclusive): the rollout pauses for a person.
	out, _, err := run(t, "rollout", "start", "-f", e.rolloutSpec(canaryWith(prom, "")), "--image", v1)
	require.NoError(t, err, out)
	deadline := time.Now().Add(time.Minute)
	var st rollouts.Status
	for {
		st, err = rollouts.Get(ctx, e.client, "hello", "dev")
		require.NoError(t, err)
		if st.Progress != nil && st.Progress.Phase == contract.PhasePaused {
			break
		}
		require.True(t, time.Now().Before(deadline), "the rollout did not pause for a person within a minute: %+v", st.Progress)
		time.Sleep(50 * time.Millisecond)
	}
	fleet := st.Progress.NewFleet
	out, _, err = run(t, "rollout", "status", "hello", "-e", "dev")
	require.NoError(t, err, out)
	assert.Contains(t, out, "  errors of "+fleet+": Inconclusive — the query's value of fleet "+fleet+
		" had no data in 1 of 1 measurements (inconclusiveLimit 0): no samples yet: the query returned an empty vector; is traffic reaching the fleet, "+
		"and does the query select its series (metric names and labels as the README's Analysis section shows)? imago rollout status shows the query as run")
	assert.Regexp(t, `\n    \d\d:\d\d:\d\d\s+-\s+Inconclusive \(no data\)\s+no data: no samples yet: the query returned an empty vector\n`, out)
	assert.Contains(t, out, "    1 measurement: 1 inconclusive (1 without data)\n")
	assert.Regexp(t, `(?m)^Waiting for:\s+inconclusive analysis errors`, out)
	out, _, err = run(t, "rollout", "abort", "hello", "-e", "dev", "--reason", "no traffic yet")
	require.NoError(t, err, out)
	waitEnded(t, e)

	// onNoData: fail rolls back, saying there was no data.
	out, _, err = run(t, "rollout", "start", "-f", e.rolloutSpec(canaryWith(prom, "    onNoData: fail\n")), "--image", v1, "--wait")
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "rolled back automatically: analysis errors failed: the query's value of fleet ")
	assert.Contains(t, err.Error(), " had no data in 1 of 1 measurements, and onNoData is fail: no samples yet: the query returned an empty vector; is traffic reaching the fleet")
	assert.NotContains(t, err.Error(), "imago_router_errors_total", "the message names the analysis, not its query")

	// onNoData: pass goes on, and says how many measurements had no data.
	out, _, err = run(t, "rollout", "start", "-f", e.rolloutSpec(canaryWith(prom, "    onNoData: pass\n    count: 2\n")), "--image", v1, "--wait")
	require.NoError(t, err, out)
	out, _, err = run(t, "rollout", "status", "hello", "-e", "dev")
	require.NoError(t, err, out)
	assert.Regexp(t, `met max 0.05 in 2 of 2 measurements \(2 of them without data, passed by onNoData: pass\)\n`, out)
	assert.Regexp(t, `\n    \d\d:\d\d:\d\d\s+-\s+Successful \(no data\)\s+no data, passed by onNoData: pass: no samples yet`, out)
}

// statusAnalysis runs `imago rollout status hello -e dev -o json` and returns
// the status and its one analysis.
func statusAnalysis(t *testing.T) (rollouts.Status, contract.AnalysisRun) {
	t.Helper()
	out, _, err := run(t, "rollout", "status", "hello", "-e", "dev", "-o", "json")
	require.NoError(t, err, out)
	var st rollouts.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.NotNil(t, st.Progress, out)
	require.Len(t, st.Progress.Analyses, 1, out)
	return st, st.Progress.Analyses[0]
}

// waitEnded polls until no rollout of hello to dev runs, for a minute.
func waitEnded(t *testing.T, e *imagoEnv) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		running, err := rollouts.Running(context.Background(), e.client, "hello", "dev")
		require.NoError(t, err)
		if !running {
			return
		}
		require.True(t, time.Now().Before(deadline), "the rollout did not end within a minute")
		time.Sleep(50 * time.Millisecond)
	}
}

// While an analysis runs, `imago rollout status` shows the measurements taken
// so far, read from its activity's heartbeat (the workflow learns them at the
// end): a long analysis is not a black box until it ends.
func TestRolloutStatusShowsARunningAnalysisMeasurementsSoFar(t *testing.T) {
	t.Setenv(netguard.EnvAllow, "127.0.0.1")
	prom := newPromEndpoint(t)
	e := newImagoEnv(t)
	v1 := e.simImage("hello", "v1")
	out, _, err := run(t, "rollout", "start", "-f", e.rolloutSpec(canaryWith(prom, "    metric: errorRate\n    count: 1000\n")), "--image", v1)
	require.NoError(t, err, out)

	// The SDK sends a heartbeat at most every 8 s here (80% of the 10 s heartbeat timeout).
	deadline := time.Now().Add(time.Minute)
	running := regexp.MustCompile(`\n  errors of (fl-[0-9a-f]+): Running\n(?s:.*)\n    (\d+) measurements: (\d+) successful(?:; the latest 10 shown)?\n    TIME\s+VALUE\s+VERDICT\s+MEASUREMENT\n    \d\d:\d\d:\d\d\s+0\.\d+\s+Successful\s+`)
	for {
		out, _, err = run(t, "rollout", "status", "hello", "-e", "dev")
		require.NoError(t, err, out)
		if running.MatchString(out) {
			break
		}
		require.True(t, time.Now().Before(deadline), "no measurement of the running analysis shown within a minute:\n%s", out)
		time.Sleep(100 * time.Millisecond)
	}
	assert.Regexp(t, `(?m)^Status:\s+Running$`, out)

	_, an := statusAnalysis(t)
	require.Equal(t, contract.AnalysisRunning, an.Phase, "1000 measurements take 100 s")
	require.NotNil(t, an.Counts)
	assert.Positive(t, an.Counts.Successful)
	require.NotEmpty(t, an.Measurements)
	assert.LessOrEqual(t, len(an.Measurements), 10)
	assert.NotNil(t, an.Measurements[0].Value)

	out, _, err = run(t, "rollout", "abort", "hello", "-e", "dev", "--reason", "seen enough")
	require.NoError(t, err, out)
	waitEnded(t, e)
}
