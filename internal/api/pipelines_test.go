package api

import (
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/pipelines"
	"github.com/imago/imago/internal/schedules"
)

// A pipeline started through the API bakes, waits at its stage's approval gate,
// rolls out once approved and ends succeeded, all seen through GET; a second
// start while it runs and decisions once it ended are refused (409). At the gate
// only a token with approve on the gate's environment approves, and only one with
// deploy on the stages' aborts (403 otherwise). The reaper then keeps the fleet
// that serves.
func TestPipelineThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: func(c *Config) { scopedTokens(t)(c); helloRoots(t)(c) }})
	p := e.get("/v1/pipelines/hello").problem(t, http.StatusNotFound)
	assert.Equal(t, `no run of pipeline "hello" yet; start one with POST /v1/pipelines, or run its schedule with POST /v1/schedules/hello/trigger`, p.Detail)
	e.post("/v1/pipelines/hello/approve", nil).problem(t, http.StatusNotFound)

	stage := e.rolloutBody("")["spec"].(map[string]any)
	delete(stage, "image") // the pipeline sets it
	body := map[string]any{"pipeline": map[string]any{
		"name": "hello", "bake": helloBake(t),
		"stages": []any{map[string]any{"rollout": stage, "approval": map[string]any{"required": true, "timeout": "5m"}}},
	}}
	r := e.post("/v1/pipelines", body)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "/v1/pipelines/hello", r.header.Get("Location"))
	var started StartedPipeline
	r.json(t, &started)
	assert.Equal(t, "pipeline/hello", started.WorkflowID)
	assert.Equal(t, "hello", started.Service)
	assert.Equal(t, "pipeline hello: bake → test (approval)", started.Summary)
	assert.Regexp(t, `^api:[0-9a-f]{8}$`, started.StartedBy)

	p = e.post("/v1/pipelines", body).problem(t, http.StatusConflict)
	assert.Equal(t, "pipeline/hello is already running (run "+started.RunID+
		"); follow it with GET /v1/pipelines/hello, or stop it at its gate with POST /v1/pipelines/hello/abort", p.Detail)

	r = e.get("/v1/pipelines/hello")
	require.Equal(t, http.StatusOK, r.status, "the run just started is found at once: %s", r.body)
	var first pipelines.Run
	r.json(t, &first)
	assert.Equal(t, started.RunID, first.RunID)

	run := e.waitPipeline("hello", "wait for approval", func(run pipelines.Run) bool {
		return run.Progress.Phase == contract.PhaseAwaitingApproval || pipelineEnded(run)
	})
	require.Equal(t, contract.PhaseAwaitingApproval, run.Progress.Phase, "%+v", run.Progress)
	assert.Equal(t, started.RunID, run.RunID)
	assert.Equal(t, "test", run.Progress.Gate)
	assert.Equal(t, "manual", run.Progress.Trigger)
	assert.Regexp(t, `^img-`, run.Progress.ImageID, "baked before the gate")
	require.Len(t, run.Progress.Stages, 1)
	assert.Equal(t, contract.StageWaiting, run.Progress.Stages[0].State)

	assert.Contains(t, e.do("POST", "/v1/pipelines/hello/approve", nil, elsewhere).forbidden(t), "this token lacks the scope approve:hello/test;")
	assert.Contains(t, e.do("POST", "/v1/pipelines/hello/abort", nil, elsewhere).forbidden(t), "this token lacks the scope deploy:hello/test;")
	assert.Contains(t, e.do("POST", "/v1/pipelines/hello/approve", nil, deployTok).forbidden(t), "this token lacks any approve scope")
	r = e.do("POST", "/v1/pipelines/hello/approve", map[string]any{"reason": "bake looks good"}, approveTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var decided Decided
	r.json(t, &decided)
	assert.Equal(t, Decided{WorkflowID: "pipeline/hello", Decision: "approve", By: mustTokens(t, approveTok)[0].Who, Reason: "bake looks good",
		Links: Links{Self: "/v1/pipelines/hello"}}, decided)

	run = e.waitPipeline("hello", "end", pipelineEnded)
	require.Equal(t, contract.PhaseSucceeded, run.Progress.Phase, "%+v", run.Progress)
	assert.Equal(t, "Succeeded", run.Status)
	st := run.Progress.Stages[0]
	assert.Equal(t, contract.StageSucceeded, st.State)
	assert.Equal(t, "rollout/test/hello", st.RolloutID)
	require.NotNil(t, st.Approval)
	assert.Equal(t, "bake looks good", st.Approval.Reason)
	assert.Equal(t, "hello from v1", e.served(), "the stage's rollout serves the baked image")

	for _, d := range []string{"approve", "abort"} {
		p = e.post("/v1/pipelines/hello/"+d, nil).problem(t, http.StatusConflict)
		assert.Equal(t, "pipeline/hello is not running: its latest run ("+run.RunID+") succeeded; "+d+" applies to a running pipeline", p.Detail)
	}

	// The reaper, applying, with no grace to speak of, keeps the routed fleet.
	r = e.post("/v1/reaper", map[string]any{"apply": true, "grace": "1ms"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var res contract.ReaperResult
	r.json(t, &res)
	assert.False(t, res.DryRun)
	assert.Equal(t, "local", res.Found.Provider)
	assert.Equal(t, 1, res.Found.Routed, "%+v", res.Found)
	assert.Contains(t, res.Summary, "kept 1 routed")
	assert.Equal(t, "hello from v1", e.served(), "the live fleet still serves")

	p = e.post("/v1/reaper", map[string]any{"grace": "-1h"}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"grace"}, fields(p))
	assert.Contains(t, p.Detail, "grace: must be positive, e.g. 1h")
}

// An invalid pipeline is refused with every problem at its path in the body.
func TestInvalidPipelineIsA400WithEveryFieldPath(t *testing.T) {
	e := newEnv(t, envOptions{})
	stage := e.rolloutBody("img-3f2a1c9d0b7e")["spec"].(map[string]any)
	other := map[string]any{"service": "web", "environment": "test", "listen": "127.0.0.1:9090"}
	p := e.post("/v1/pipelines", map[string]any{"pipeline": map[string]any{
		"name": "Hello", "bake": map[string]any{"service": "hello", "source": "/nonexistent/src", "entrypoint": []string{"./hello"}},
		"image":  map[string]any{"channel": "stable"},
		"stages": []any{map[string]any{"rollout": stage, "approval": map[string]any{"required": true, "timeout": "-1h"}}, map[string]any{"rollout": other}},
	}}).problem(t, http.StatusBadRequest)
	assert.ElementsMatch(t, []string{"pipeline.name", "pipeline.image", "pipeline.bake.source", "pipeline.stages[0].rollout.image",
		"pipeline.stages[0].approval.timeout", "pipeline.stages[1].rollout.service", "pipeline.stages[1].rollout.environment"}, fields(p))
	for _, want := range []string{
		`pipeline.name: "Hello" must be 1-40 lowercase letters`,
		"pipeline.image: set bake or image, not both",
		"pipeline.bake.source: /nonexistent/src is outside IMAGO_BAKE_ROOTS (unset: the API bakes nothing from disk; set IMAGO_BAKE_ROOTS=/srv/imago/src)",
		`pipeline.stages[1].rollout.service: "web" differs from the bake's service "hello"`,
		`pipeline.stages[1].rollout.environment: "test" is already stage 0`,
	} {
		assert.Contains(t, p.Detail, want)
	}

	p = e.post("/v1/pipelines", map[string]any{"pipeline": map[string]any{"name": "hello"}}).problem(t, http.StatusBadRequest)
	assert.ElementsMatch(t, []string{"pipeline.bake", "pipeline.stages"}, fields(p))
	p = e.post("/v1/pipelines", map[string]any{"pipeline": map[string]any{"name": "hello", "image": map[string]any{"bake": "bake.yaml"}}}).problem(t, http.StatusBadRequest)
	assert.Contains(t, p.Detail, "pipeline.image.bake: is not used here: send the bake spec inline as pipeline.bake")
	p = e.post("/v1/pipelines", `{"pipeline": {"name": "hello", "stages": [{"rolloutFile": "rollout.yaml"}]}}`).problem(t, http.StatusBadRequest)
	assert.Contains(t, p.Detail, `unknown field "rolloutFile"`, "the server reads no spec files")
}

// The schedule, pipeline and reaper schemas name exactly the JSON fields of the
// types the API reads and writes.
func TestOpenAPISchemasMatchTheScheduleAndPipelineTypes(t *testing.T) {
	doc := readOpenAPI(t)
	for name, v := range map[string]any{
		"CreateScheduleRequest": CreateScheduleRequest{}, "SchedulePipeline": SchedulePipeline{}, "PipelineStage": PipelineStage{},
		"PipelineRequest": PipelineRequest{}, "StartPipelineRequest": StartPipelineRequest{}, "ScheduleNoteRequest": ScheduleNoteRequest{},
		"BackfillRequest": BackfillRequest{}, "ReaperRequest": ReaperRequest{},
		"Schedule": schedules.Schedule{}, "ScheduleAction": schedules.Action{}, "ScheduleList": ScheduleList{},
		"ScheduleChanged": ScheduleChanged{}, "ScheduleLinks": ScheduleLinks{},
		"StartedPipeline": StartedPipeline{}, "PipelineRun": pipelines.Run{}, "PipelineProgress": contract.PipelineProgress{},
		"StageStatus": contract.StageStatus{}, "PipelineDecision": contract.Decision{},
		"ReaperResult": contract.ReaperResult{}, "ReaperFindings": contract.FindOrphansResult{}, "Orphan": contract.Orphan{},
		"ReaperStarted": ReaperStarted{},
	} {
		schema, ok := doc.Comps.Schemas[name]
		if !assert.True(t, ok, "schema %s is documented", name) {
			continue
		}
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		assert.ElementsMatch(t, jsonFields(reflect.TypeOf(v)), props, "schema %s has the fields of %T", name, v)
	}
	for path, ops := range doc.Paths {
		if strings.HasPrefix(path, "/v1/schedules") || strings.HasPrefix(path, "/v1/pipelines") || path == "/v1/reaper" {
			for method, op := range ops {
				assert.Contains(t, op.Responses, "500", "%s %s", method, path)
			}
		}
	}
}

// FuzzDecodeStartPipeline: any body gives a pipeline or a 4xx problem, never a
// panic or a 500.
func FuzzDecodeStartPipeline(f *testing.F) {
	roots := mustRoots(f, f.TempDir())
	f.Add([]byte(`{"pipeline": {"name": "hello", "image": {"channel": "stable"}, "stages": [{"rollout": {"service": "hello", "environment": "prod", "listen": "127.0.0.1:9080"}, "approval": {"required": true, "timeout": "1h"}}]}}`))
	f.Add([]byte(`{"pipeline": {"name": "hello", "bake": {"service": "hello", "source": "/"}, "onBaseChange": true, "stages": [{"rollout": {"image": {"bake": "x"}}}]}, "always": true}`))
	f.Add([]byte(`{"pipeline": {"name": "x", "image": {"bake": "b"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _, err := DecodeStartPipeline(bytes.NewReader(body), roots)
		if err != nil {
			if p := ProblemFor(err); p.Status >= 500 {
				t.Fatalf("a client error became %d: %v", p.Status, err)
			}
		}
	})
}

// A pipeline decision needs its scope on the environment whose gate waits, or,
// with none waiting (a gate may open before the decision lands), on every stage's.
func TestPipelineDecisionsNeedTheirScopeOnTheStagesEnvironments(t *testing.T) {
	p := contract.PipelineProgress{Service: "hello", Stages: []contract.StageStatus{{Environment: "staging"}, {Environment: "prod"}}}
	assert.Equal(t, "deploy:hello/staging, deploy:hello/prod", tokens.Scopes(pipelineNeeds(p, contract.UpdateAbort)).String())
	assert.Equal(t, "approve:hello/staging, approve:hello/prod", tokens.Scopes(pipelineNeeds(p, contract.UpdateApprove)).String())
	p.Gate = "prod"
	assert.Equal(t, "approve:hello/prod", tokens.Scopes(pipelineNeeds(p, contract.UpdateApprove)).String())
	assert.Equal(t, "deploy:hello/staging, deploy:hello/prod", tokens.Scopes(pipelineNeeds(p, contract.UpdateAbort)).String())
}
