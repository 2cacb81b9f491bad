package api

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/pipelines"
	"github.com/imago/imago/internal/schedules"
	"github.com/imago/imago/internal/spec"
)

// helloBake is a bake spec of examples/hello v1 as a client sends it: the binary
// packaged as is and tested by booting one instance.
func helloBake(t *testing.T) map[string]any {
	return map[string]any{
		"service": "hello", "dir": filepath.Dir(helloBuild(t)), "source": filepath.Base(helloBuild(t)),
		"entrypoint": []string{"./hello"},
		"test":       map[string]any{"checks": []any{map[string]any{"path": "/", "expectBody": "v1"}}},
	}
}

// schedule is GET /v1/schedules/{name}, decoded.
func (e *apiEnv) schedule(name string) schedules.Schedule {
	e.t.Helper()
	r := e.get("/v1/schedules/" + name)
	require.Equal(e.t, http.StatusOK, r.status, "%s", r.body)
	var s schedules.Schedule
	r.json(e.t, &s)
	return s
}

// waitPipeline polls GET /v1/pipelines/{name} until ok holds, for two minutes.
func (e *apiEnv) waitPipeline(name, what string, ok func(pipelines.Run) bool) pipelines.Run {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var run pipelines.Run
	for time.Now().Before(deadline) {
		r := e.get("/v1/pipelines/" + name)
		if r.status == http.StatusOK {
			run = pipelines.Run{}
			r.json(e.t, &run)
			if ok(run) {
				return run
			}
		} else {
			require.Equal(e.t, http.StatusNotFound, r.status, "%s", r.body) // a schedule's run is listed a moment after it starts
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("pipeline %s did not %s within two minutes; last seen %+v", name, what, run)
	return run
}

func pipelineEnded(run pipelines.Run) bool {
	switch run.Progress.Phase {
	case contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseAborted, contract.PhaseSkipped:
		return run.Status != "Running"
	}
	return false
}

// A schedule's life through the API: create (with its next run in its time
// zone), refused twice, listed, paused and unpaused with notes, triggered (its
// run bakes, and describe shows the outcome), backfilled, deleted, then gone.
func TestScheduleThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: helloRoots(t)})
	body := map[string]any{"name": "nightly", "bake": helloBake(t), "cron": "0 3 * * *", "timezone": "Europe/Berlin", "note": "rebuild nightly"}

	e.do("POST", "/v1/schedules", body, "").problem(t, http.StatusUnauthorized)
	p := e.get("/v1/schedules/nightly").problem(t, http.StatusNotFound)
	assert.Equal(t, `no schedule "nightly"; list them with GET /v1/schedules`, p.Detail, "the unauthorized create made nothing")

	r := e.post("/v1/schedules", body)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "/v1/schedules/nightly", r.header.Get("Location"))
	var created schedules.Schedule
	r.json(t, &created)
	assert.Equal(t, "nightly", created.Name)
	assert.Equal(t, "hello", created.Service)
	assert.Equal(t, "cron 0 3 * * * (Europe/Berlin)", created.Spec)
	assert.Equal(t, "skip", created.Overlap)
	assert.Equal(t, "rebuild nightly", created.Note)
	assert.False(t, created.Paused)
	require.NotEmpty(t, created.NextRuns)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	assert.Equal(t, 3, created.NextRuns[0].In(berlin).Hour(), "the next run is at 03:00 in the schedule's zone: %s", created.NextRuns[0])

	p = e.post("/v1/schedules", body).problem(t, http.StatusConflict)
	assert.Equal(t, `schedule "nightly" already exists; see it with GET /v1/schedules/nightly, or delete it first with DELETE /v1/schedules/nightly`, p.Detail)

	deadline := time.Now().Add(30 * time.Second)
	var list ScheduleList
	for time.Now().Before(deadline) { // the list is read from the visibility store, which lags a create
		r = e.get("/v1/schedules")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		list = ScheduleList{}
		r.json(t, &list)
		if len(list.Schedules) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Len(t, list.Schedules, 1)
	assert.Equal(t, "nightly", list.Schedules[0].Name)
	assert.Equal(t, "hello", list.Schedules[0].Service)

	var changed ScheduleChanged
	r = e.post("/v1/schedules/nightly/pause", map[string]any{"note": "change freeze"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &changed)
	assert.Equal(t, "pause", changed.Action)
	assert.Regexp(t, `^api:[0-9a-f]{8}$`, changed.By)
	s := e.schedule("nightly")
	assert.True(t, s.Paused)
	assert.Equal(t, "change freeze", s.Note)

	r = e.post("/v1/schedules/nightly/unpause", nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	changed = ScheduleChanged{}
	r.json(t, &changed)
	assert.Equal(t, "unpaused by "+changed.By, changed.Note, "without a note, the note says who")
	s = e.schedule("nightly")
	assert.False(t, s.Paused)
	assert.Equal(t, changed.Note, s.Note)

	// Trigger: the schedule's pipeline runs now and bakes.
	r = e.post("/v1/schedules/nightly/trigger", nil)
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	changed = ScheduleChanged{}
	r.json(t, &changed)
	assert.Equal(t, ScheduleLinks{Self: "/v1/schedules/nightly", Pipeline: "/v1/pipelines/nightly"}, changed.Links)
	run := e.waitPipeline("nightly", "end", pipelineEnded)
	require.Equal(t, contract.PhaseSucceeded, run.Progress.Phase, "%+v", run.Progress)
	assert.Regexp(t, `^pipeline/nightly-`, run.WorkflowID)
	assert.Equal(t, "schedule", run.Progress.Trigger)
	assert.Regexp(t, `^img-`, run.Progress.ImageID)
	s = e.schedule("nightly")
	assert.Equal(t, 1, s.Actions)
	require.Len(t, s.Recent, 1)
	assert.Equal(t, run.WorkflowID, s.Recent[0].WorkflowID)
	assert.Equal(t, "Succeeded", s.Recent[0].Status)
	assert.Equal(t, run.Progress.ImageID+" baked", s.Recent[0].Outcome)

	// Backfill: bad windows are refused with their field; a window without a tick is accepted.
	p = e.post("/v1/schedules/nightly/backfill", map[string]any{"from": "2026-11-23T00:00:00Z", "to": "2026-11-20T00:00:00Z"}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"to"}, fields(p))
	assert.Contains(t, p.Detail, "to: 2026-11-20T00:00:00Z must be after from (2026-11-23T00:00:00Z)")
	p = e.post("/v1/schedules/nightly/backfill", map[string]any{"from": "yesterday"}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"from", "to"}, fields(p))
	assert.Contains(t, p.Detail, `from: "yesterday": want an RFC 3339 time such as 2026-11-20T00:00:00Z`)
	r = e.post("/v1/schedules/nightly/backfill", map[string]any{"from": "2026-11-20T10:00:00Z", "to": "2026-11-20T11:00:00Z"})
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	changed = ScheduleChanged{}
	r.json(t, &changed)
	require.NotNil(t, changed.From)
	assert.Equal(t, "2026-11-20T10:00:00Z", changed.From.Format(time.RFC3339))

	r = e.do("DELETE", "/v1/schedules/nightly", nil, testToken)
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.Empty(t, r.body)
	for _, call := range []struct{ method, path string }{
		{"GET", "/v1/schedules/nightly"}, {"DELETE", "/v1/schedules/nightly"}, {"POST", "/v1/schedules/nightly/pause"},
		{"POST", "/v1/schedules/nightly/trigger"},
	} {
		p = e.do(call.method, call.path, nil, testToken).problem(t, http.StatusNotFound)
		assert.Equal(t, `no schedule "nightly"; list them with GET /v1/schedules`, p.Detail, "%s %s", call.method, call.path)
	}
	// The run the schedule started is still there.
	assert.Equal(t, run.WorkflowID, e.waitPipeline("nightly", "be found", func(pipelines.Run) bool { return true }).WorkflowID)
}

// An invalid schedule is refused with every problem at its field path in the
// body, worded for the API (fields, not CLI flags), and nothing is created.
func TestInvalidScheduleIsA400WithEveryFieldPath(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: helloRoots(t)})
	stage := e.rolloutBody("img-3f2a1c9d0b7e")["spec"].(map[string]any)
	stage["fleet"] = map[string]any{"size": 50000}
	body := map[string]any{
		"name": "Nightly", "bake": map[string]any{"service": "hello", "source": "v1", "entrypoint": []string{"./hello"}},
		"cron": "0 3 * * *", "every": "1h", "timezone": "Mars/Olympus", "overlap": "sometimes",
		"pipeline": map[string]any{"onBaseChange": true, "stages": []any{map[string]any{"rollout": stage}}},
	}
	p := e.post("/v1/schedules", body).problem(t, http.StatusBadRequest)
	assert.Equal(t, "Invalid request", p.Title)
	assert.ElementsMatch(t, []string{"name", "cron", "timezone", "overlap", "bake.source", "pipeline.onBaseChange",
		"pipeline.stages[0].rollout.image", "pipeline.stages[0].rollout.fleet.size"}, fields(p))
	for _, want := range []string{
		`name: "Nightly" must be 1-40 lowercase letters, digits or '-'`,
		"cron: set cron or every, not both",
		`timezone: "Mars/Olympus" is not an IANA time zone`,
		`overlap: "sometimes": want one of allow-all, buffer-all, buffer-one, cancel-other, skip`,
		`bake.source: "v1" is relative: make it absolute, or set bake.dir`,
		"pipeline.stages[0].rollout.image: is set by the pipeline from its bake or image; leave it out",
		"pipeline.stages[0].rollout.fleet.size: must be between 1 and 10000, got 50000",
	} {
		assert.Contains(t, p.Detail, want)
	}
	assert.NotContains(t, p.Detail, "--", "the API's errors name fields, not the CLI's flags")

	for _, tc := range []struct {
		body   map[string]any
		field  string
		detail string
	}{
		{map[string]any{"name": "nightly", "bake": helloBake(t)}, "cron", `cron: set cron (e.g. "0 3 * * *" or @daily) or every (e.g. 24h)`},
		{map[string]any{"name": "nightly", "bake": helloBake(t), "every": "daily"}, "every", `every: "daily" is not a duration`},
		{map[string]any{"name": "nightly", "cron": "@daily"}, "bake", "bake: is required: the bake spec the schedule rebuilds"},
	} {
		p := e.post("/v1/schedules", tc.body).problem(t, http.StatusBadRequest)
		assert.Equal(t, []string{tc.field}, fields(p), "%v", tc.body)
		assert.Contains(t, p.Detail, tc.detail)
	}
	p = e.post("/v1/schedules", `{"name": "nightly", "cron": "@daily", "bake": {"service": "hello"}, "every_day": true}`).problem(t, http.StatusBadRequest)
	assert.Contains(t, p.Detail, `unknown field "every_day"`)

	e.get("/v1/schedules/nightly").problem(t, http.StatusNotFound)
	var list ScheduleList
	e.get("/v1/schedules").json(t, &list)
	assert.Empty(t, list.Schedules)
}

// Every schedule, pipeline and reaper endpoint needs a token, as the rest of the
// API does; a bad name in the path is a 400 naming path.name.
func TestSchedulePipelineAndReaperEndpointsNeedAToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	n := 0
	for _, rt := range NewServer(Config{}).table {
		if !strings.HasPrefix(rt.path, "/v1/schedules") && !strings.HasPrefix(rt.path, "/v1/pipelines") && !strings.HasPrefix(rt.path, "/v1/reaper") {
			continue
		}
		n++
		path := strings.ReplaceAll(rt.path, "{name}", "nightly")
		p := e.do(rt.method, path, map[string]any{}, "").problem(t, http.StatusUnauthorized)
		assert.Contains(t, p.Detail, "Authorization: Bearer TOKEN", "%s %s", rt.method, path)
		if strings.Contains(rt.path, "{name}") {
			p = e.do(rt.method, strings.ReplaceAll(rt.path, "{name}", "Not_A_Name"), nil, testToken).problem(t, http.StatusBadRequest)
			assert.Equal(t, []string{"path.name"}, fields(p), "%s %s", rt.method, rt.path)
		}
	}
	assert.Equal(t, 13, n, "the schedule, pipeline and reaper routes")
}

func TestDecodeCreateScheduleBuildsThePipeline(t *testing.T) {
	dir := t.TempDir()
	o, err := DecodeCreateSchedule(strings.NewReader(`{"name": "hello", "every": "1h", "overlap": "buffer-one", "always": true,
	  "bake": {"service": "hello", "dir": "`+dir+`", "source": ".", "entrypoint": ["./hello"]},
	  "pipeline": {"stages": [
	    {"rollout": {"service": "hello", "environment": "staging", "listen": "127.0.0.1:9080"}},
	    {"rollout": {"service": "hello", "environment": "prod", "listen": "127.0.0.1:9081"}, "approval": {"required": true}}]}}`), mustRoots(t, dir))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, o.Every)
	assert.Equal(t, "buffer-one", o.Overlap)
	assert.True(t, o.Always)
	require.NotNil(t, o.Pipeline.Bake)
	assert.Equal(t, dir, o.Pipeline.Bake.Source, "the bake's relative paths are resolved against bake.dir")
	assert.Equal(t, "latest", o.Pipeline.Bake.Channel, "the bake is defaulted")
	require.Len(t, o.Pipeline.Stages, 2)
	assert.Equal(t, "prod", o.Pipeline.Stages[1].Rollout.Environment)
	assert.True(t, o.Pipeline.Stages[1].Approval.Required)
	assert.Equal(t, spec.DefaultApprovalTimeout, o.Pipeline.Stages[1].Approval.Timeout, "a gate's timeout is defaulted")
	assert.Equal(t, contract.BlueGreen, o.Pipeline.Stages[0].Rollout.Strategy.Type, "the stages' rollouts are defaulted")
	assert.Equal(t, "pipeline hello: bake → staging → prod (approval)", pipelines.Summary(o.Pipeline))
}

// FuzzDecodeCreateSchedule: any body gives options or a 4xx problem, never a
// panic or a 500.
func FuzzDecodeCreateSchedule(f *testing.F) {
	roots := mustRoots(f, f.TempDir())
	f.Add([]byte(`{"name": "nightly", "bake": {"service": "hello", "source": "/"}, "cron": "0 3 * * *", "timezone": "Europe/Berlin"}`))
	f.Add([]byte(`{"name": "n", "bake": {"service": "hello", "base": {"channel": "latest"}}, "every": "-1h", "pipeline": {"onBaseChange": true, "stages": [{"rollout": {}}]}}`))
	f.Add([]byte(`{"name": "", "every": "1ms", "overlap": "x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := DecodeCreateSchedule(bytes.NewReader(body), roots)
		if err != nil {
			if p := ProblemFor(err); p.Status >= 500 {
				t.Fatalf("a client error became %d: %v", p.Status, err)
			}
		}
	})
}
