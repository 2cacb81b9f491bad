package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/imago/imago/internal/contract"
)

func TestWithoutAValidTokenNothingIsDone(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true})
	body := e.rolloutBody(e.importV1())

	for _, tc := range []struct {
		name, header, challenge, detail string
	}{
		{"no header", "", `Bearer realm="imago"`, "Authorization: Bearer TOKEN"},
		{"another scheme", "Basic dXNlcjpwYXNz", `Bearer realm="imago"`, "Authorization: Bearer TOKEN"},
		{"a wrong token", "Bearer " + testToken + "x", `Bearer realm="imago", error="invalid_token"`, "not one this server accepts"},
	} {
		var r response
		if tc.header == "" {
			r = e.do("POST", "/v1/rollouts", body, "")
		} else {
			r = e.do("POST", "/v1/rollouts", body, "", "Authorization", tc.header)
		}
		p := r.problem(t, http.StatusUnauthorized)
		assert.Equal(t, tc.challenge, r.header.Get("WWW-Authenticate"), tc.name)
		assert.Contains(t, p.Detail, tc.detail, tc.name)
		assert.Equal(t, "/v1/rollouts", p.Instance)
	}
	// Reads and decisions are refused the same way.
	for _, path := range []string{"/v1/rollouts", "/v1/images", "/v1/rollouts/hello/test/events"} {
		e.do("GET", path, nil, "").problem(t, http.StatusUnauthorized)
	}
	e.do("POST", "/v1/rollouts/hello/test/abort", nil, "wrong-token-0123456789").problem(t, http.StatusUnauthorized)

	// Nothing was started: Temporal has no such workflow, and the API lists none.
	_, err := e.client.DescribeWorkflowExecution(context.Background(), "rollout/test/hello", "")
	var nf *serviceerror.NotFound
	require.ErrorAs(t, err, &nf)
	var list RolloutList
	r := e.get("/v1/rollouts?service=hello")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &list)
	assert.Empty(t, list.Rollouts)
	assert.Contains(t, string(r.body), `"rollouts": []`, "an empty list is [], not null")
	p := e.get("/v1/rollouts/hello/test").problem(t, http.StatusNotFound)
	assert.Equal(t, "no rollout of hello to test yet; start one with POST /v1/rollouts", p.Detail)

	// The health endpoints and the document need no token.
	for _, path := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		assert.Equal(t, http.StatusOK, e.do("GET", path, nil, "").status, path)
	}
}

func TestBlueGreenRolloutStartedThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true})
	img := e.importV1()

	r := e.post("/v1/rollouts", e.rolloutBody(img))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "/v1/rollouts/hello/test", r.header.Get("Location"))
	var started StartedRollout
	r.json(t, &started)
	assert.Equal(t, "rollout/test/hello", started.WorkflowID)
	assert.NotEmpty(t, started.RunID)
	assert.Equal(t, img, started.Image.ID)
	assert.Equal(t, "blueGreen", started.Strategy)
	assert.Regexp(t, `^api:[0-9a-f]{8}$`, started.StartedBy, "the token's fingerprint, never the token")

	st := e.waitRollout("end", func(st rolloutStatusJSON) bool { return st.Status != "Running" })
	assert.Equal(t, "Succeeded", st.Status, "%+v", st.Progress)
	assert.Equal(t, contract.PhaseSucceeded, st.Progress.Phase)
	assert.Equal(t, img, st.Progress.ImageID)
	assert.Equal(t, started.StartedBy, st.Progress.StartedBy)
	assert.Equal(t, "hello from v1", e.served())

	var list RolloutList
	e.get("/v1/rollouts?service=hello&environment=test&limit=5").json(t, &list)
	require.Len(t, list.Rollouts, 1)
	assert.Equal(t, "Succeeded", list.Rollouts[0].Status)
	assert.Equal(t, img, list.Rollouts[0].Image)
	assert.Equal(t, started.RunID, list.Rollouts[0].RunID)

	// A decision needs a running rollout.
	p := e.post("/v1/rollouts/hello/test/approve", nil).problem(t, http.StatusConflict)
	assert.Contains(t, p.Detail, "rollout/test/hello is not running")

	// Once a second image is live, a rollback after the rollout ended is a new
	// rollout of the previous image, as `imago rollout rollback` starts, with the
	// last rollout's spec: its answer names the strategy it runs (here rolling).
	second, err := e.cat.Import(context.Background(), helloBuild(t), "hello", []string{"./hello", "second"}, nil)
	require.NoError(t, err)
	rolling := func(s map[string]any) { s["strategy"] = map[string]any{"type": "rolling"} }
	require.Equal(t, http.StatusCreated, e.post("/v1/rollouts", e.rolloutBody(second.ID, rolling)).status)
	st = e.waitRollout("roll out the second image", func(st rolloutStatusJSON) bool {
		return st.Status != "Running" && st.Progress.ImageID == second.ID
	})
	require.Equal(t, "Succeeded", st.Status)
	r = e.post("/v1/rollouts/hello/test/rollback", DecisionRequest{Reason: "latency regression"})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var back StartedRollout
	r.json(t, &back)
	assert.Equal(t, "rollback", back.Action)
	assert.Equal(t, img, back.Image.ID, "back to the previous image")
	assert.Equal(t, "rolling", back.Strategy, "the strategy the rollback runs: %s", r.body)
	assert.Equal(t, "/v1/rollouts/hello/test", r.header.Get("Location"))
	st = e.waitRollout("roll back", func(st rolloutStatusJSON) bool {
		return st.Status != "Running" && st.Progress.ImageID == img
	})
	assert.Equal(t, "Succeeded", st.Status)
	assert.Equal(t, "hello from v1", e.served())
}

// The stream follows a rollout of v2 (over v1) through its approval gate:
// progress events with increasing ids, then done. The HTTP server's ReadTimeout
// and WriteTimeout (1 s) are shorter than the rollout's 3 s soak, so the stream
// also proves that it lifts both deadlines.
func TestEventStreamFollowsARolloutApprovedThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, ioTimeout: time.Second})
	first := e.importV1()
	r := e.post("/v1/rollouts", e.rolloutBody(first))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	e.waitRollout("end", func(st rolloutStatusJSON) bool { return st.Status != "Running" })
	img, err := e.cat.Import(context.Background(), helloBuild(t), "hello", []string{"./hello", "second"}, nil)
	require.NoError(t, err)

	body := e.rolloutBody(img.ID, func(s map[string]any) {
		s["approval"] = map[string]any{"required": true, "timeout": "5m"}
		s["soak"] = "3s"
	})
	require.Equal(t, http.StatusCreated, e.post("/v1/rollouts", body).status)
	events := e.stream("/v1/rollouts/hello/test/events")

	lastID := 0
	phases := map[contract.Phase]bool{}
	var done RolloutDone
	approved := false
	for {
		ev, ok := events.next()
		require.True(t, ok, "the stream closed before its done event")
		id, err := strconv.Atoi(ev.id)
		require.NoError(t, err, "every event has an id")
		assert.Greater(t, id, lastID, "ids count up")
		lastID = id
		if ev.event == "done" {
			require.NoError(t, json.Unmarshal(ev.data, &done))
			break
		}
		require.Equal(t, "progress", ev.event)
		var p contract.RolloutProgress
		require.NoError(t, json.Unmarshal(ev.data, &p), "%s", ev.data)
		phases[p.Phase] = true
		if p.Phase == contract.PhaseAwaitingApproval && !approved {
			// One rollout per service and environment: a second start is refused by name.
			pr := e.post("/v1/rollouts", body).problem(t, http.StatusConflict)
			assert.Contains(t, pr.Detail, "rollout/test/hello is already running (run ")
			// Rollback makes no sense before traffic moved: the rollout says why.
			pr = e.post("/v1/rollouts/hello/test/rollback", map[string]string{"reason": "test"}).problem(t, http.StatusConflict)
			assert.Contains(t, pr.Detail, "no traffic has moved yet (the rollout is awaiting-approval); use abort")

			r := e.post("/v1/rollouts/hello/test/approve", map[string]string{"reason": "CHG-1234"})
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			var d Decided
			r.json(t, &d)
			assert.Equal(t, "approve", d.Decision)
			assert.Regexp(t, `^api:[0-9a-f]{8}$`, d.By)
			approved = true
		}
	}
	_, ok := events.next()
	assert.False(t, ok, "the stream closes after done")

	assert.True(t, approved, "the stream showed the approval gate; phases seen: %v", phases)
	assert.True(t, phases[contract.PhaseSoaking], "phases seen: %v", phases)
	assert.Equal(t, "Succeeded", done.Status)
	assert.Equal(t, contract.PhaseSucceeded, done.Phase)
	require.NotNil(t, done.Result)
	assert.Equal(t, img.ID, done.Result.ImageID)
	assert.Equal(t, 1, done.Result.Instances)
	assert.Len(t, done.Result.Decommissioned, 1, "the first rollout's fleet")
	assert.Equal(t, "hello from v1", e.served())

	st := e.rolloutStatus("hello", "test")
	require.Len(t, st.Progress.Approvals, 1)
	assert.Equal(t, "CHG-1234", st.Progress.Approvals[0].Reason)

	// A finished rollout's stream sends its last progress and done at once.
	events = e.stream("/v1/rollouts/hello/test/events")
	ev, ok := events.next()
	require.True(t, ok)
	assert.Equal(t, "progress", ev.event)
	ev, ok = events.next()
	require.True(t, ok)
	assert.Equal(t, "done", ev.event)
	assert.Contains(t, string(ev.data), `"status":"Succeeded"`)
}

func TestAbortAtTheApprovalGateThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true})
	body := e.rolloutBody(e.importV1(), func(s map[string]any) {
		s["approval"] = map[string]any{"required": true, "timeout": "5m"}
	})
	require.Equal(t, http.StatusCreated, e.post("/v1/rollouts", body).status)
	e.waitRollout("reach the approval gate", func(st rolloutStatusJSON) bool {
		return st.Progress.Phase == contract.PhaseAwaitingApproval
	})

	r := e.post("/v1/rollouts/hello/test/abort", map[string]string{"reason": "wrong config"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	st := e.waitRollout("end", func(st rolloutStatusJSON) bool { return st.Status != "Running" })
	assert.Equal(t, "Failed", st.Status)
	assert.Equal(t, contract.PhaseAborted, st.Progress.Phase)
	assert.Regexp(t, `aborted by api:[0-9a-f]{8}: wrong config`, st.Progress.Error)

	p := e.post("/v1/rollouts/hello/test/promote", nil).problem(t, http.StatusConflict)
	assert.Contains(t, p.Detail, "rollout/test/hello is not running")
	p = e.post("/v1/rollouts/nope/test/abort", nil).problem(t, http.StatusNotFound)
	assert.Equal(t, "no rollout of nope to test yet; start one with POST /v1/rollouts", p.Detail)
}

func TestHealthAndReadiness(t *testing.T) {
	up := newEnv(t, envOptions{temporal: true})
	r := up.do("GET", "/healthz", nil, "")
	assert.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"status": "ok"}`, string(r.body))
	r = up.do("GET", "/readyz", nil, "")
	assert.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.JSONEq(t, `{"status": "ready", "temporal": "ok"}`, string(r.body))

	down := newEnv(t, envOptions{}) // its client points where nothing listens
	assert.Equal(t, http.StatusOK, down.do("GET", "/healthz", nil, "").status, "the process is up all the same")
	p := down.do("GET", "/readyz", nil, "").problem(t, http.StatusServiceUnavailable)
	assert.Contains(t, p.Detail, "Temporal does not answer its health check")
	// A request that needs Temporal says it cannot reach it.
	p = down.get("/v1/rollouts").problem(t, http.StatusServiceUnavailable)
	assert.Contains(t, p.Detail, "Temporal cannot be reached: ")
}

// A request that outlives the API's request timeout gets a 504 problem.
func TestRequestsEndAtTheRequestTimeout(t *testing.T) {
	s := NewServer(Config{RequestTimeout: 50 * time.Millisecond, InsecureNoAuth: true})
	h := s.wrap(route{method: "GET", path: "/slow", handle: func(w http.ResponseWriter, r *http.Request) error {
		<-r.Context().Done() // as a Temporal call does when its context ends
		return r.Context().Err()
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
	assert.Equal(t, http.StatusGatewayTimeout, rec.Code)
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Body.String(), "the request took longer than 50ms, the API's limit")
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := e.get("/v1/nothing").problem(t, http.StatusNotFound)
	assert.Equal(t, "no such endpoint: GET /v1/nothing; the API's endpoints are listed in /v1/openapi.json", p.Detail)
	e.do("GET", "/", nil, "").problem(t, http.StatusNotFound)

	r := e.do("DELETE", "/v1/rollouts", nil, testToken)
	p = r.problem(t, http.StatusMethodNotAllowed)
	assert.Equal(t, "GET, HEAD, POST", r.header.Get("Allow"))
	assert.Equal(t, "/v1/rollouts does not answer DELETE; it answers GET, HEAD, POST", p.Detail)
	r = e.do("GET", "/v1/rollouts/hello/test/approve", nil, testToken)
	r.problem(t, http.StatusMethodNotAllowed)
	assert.Equal(t, "POST", r.header.Get("Allow"))

	p = e.get("/v1/rollouts?limit=lots&service=Hello").problem(t, http.StatusBadRequest)
	assert.ElementsMatch(t, []string{"query.limit", "query.service"}, fields(p))
	p = e.get("/v1/rollouts/Hello/test").problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"path.service"}, fields(p))
}

func fields(p Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// A canary whose router analysis sees no traffic (nothing but the smoke check
// reaches the new fleet, and not through the router): with onNoData: pass it
// passes, and GET /v1/rollouts/{service}/{env} shows each measurement as one
// without data, the counts, and what was measured.
func TestRolloutStatusShowsAnAnalysisWithoutTrafficAsNoData(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true})
	img := e.importV1()
	r := e.post("/v1/rollouts", e.rolloutBody(img, func(s map[string]any) {
		s["strategy"] = map[string]any{"type": "canary", "steps": []any{map[string]any{"setWeight": 50}, map[string]any{"analysis": "errors"}}}
		s["analyses"] = map[string]any{"errors": map[string]any{
			"provider": "router", "metric": "errorRate", "max": 0.05, "interval": "200ms", "count": 2, "onNoData": "pass",
		}}
	}))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	st := e.waitRollout("end", func(st rolloutStatusJSON) bool { return st.Status != "Running" })
	require.Equal(t, "Succeeded", st.Status, "%+v", st.Progress)

	raw := e.get("/v1/rollouts/hello/test")
	require.Equal(t, http.StatusOK, raw.status)
	var body struct {
		Progress struct {
			Analyses []map[string]any `json:"analyses"`
		} `json:"progress"`
	}
	raw.json(t, &body)
	require.Len(t, body.Progress.Analyses, 1, "%s", raw.body)
	an := body.Progress.Analyses[0]
	assert.Equal(t, "errors", an["name"])
	assert.Equal(t, "Successful", an["phase"])
	assert.Equal(t, st.Progress.NewFleet, an["fleetId"])
	assert.Equal(t, "pass", an["onNoData"])
	assert.Equal(t, "max 0.05", an["condition"])
	assert.Equal(t, "router: the fleet's share of imago_router_requests_total and imago_router_errors_total, each interval", an["source"])
	assert.Equal(t, "errorRate of fleet "+st.Progress.NewFleet+" met max 0.05 in 2 of 2 measurements (2 of them without data, passed by onNoData: pass)", an["message"])
	assert.Equal(t, map[string]any{"successful": 2.0, "failed": 0.0, "inconclusive": 0.0, "errors": 0.0, "noData": 2.0}, an["counts"])
	ms, _ := an["measurements"].([]any)
	require.Len(t, ms, 2, "%s", raw.body)
	for _, m := range ms {
		m := m.(map[string]any)
		assert.Equal(t, true, m["noData"])
		assert.Equal(t, "Successful", m["phase"])
		assert.NotContains(t, m, "value", "a measurement without data has no value")
		assert.Contains(t, m["message"], "no data, passed by onNoData: pass: no samples yet: fleet "+st.Progress.NewFleet+" received 0 requests in ")
		assert.NotEmpty(t, m["time"])
	}
}
