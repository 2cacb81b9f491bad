package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/imago/imago/internal/contract"
)

// Tokens with one scope each, and one with scopes on other services and environments.
const (
	readTok    = "reader-0123456789abcdef"
	deployTok  = "deployer-0123456789abcdef"
	approveTok = "approver-0123456789abcdef"
	bakeTok    = "baker-0123456789abcdef"
	elsewhere  = "elsewhere-0123456789abcdef"
)

// scopedTokens adds these tokens to a test's Config, beside its admin testToken.
func scopedTokens(t *testing.T) func(*Config) {
	return func(c *Config) {
		c.Tokens = append(c.Tokens, mustTokens(t, readTok, deployTok+" deploy:hello/test", approveTok+" approve:*/test",
			bakeTok+" bake:hello", elsewhere+" deploy:hello/prod,approve:hello/prod,bake:web")...)
	}
}

// forbidden checks a 403 problem and returns its detail.
func (r response) forbidden(t *testing.T) string {
	t.Helper()
	p := r.problem(t, http.StatusForbidden)
	assert.Equal(t, "https://imago.dev/problems/forbidden", p.Type)
	return p.Detail
}

// For each scope, over real HTTP with a real Temporal server and worker, a call
// it allows succeeds and one it does not is refused (403, naming the missing
// scope) with nothing started.
func TestEachScopeAllowsItsCallsAndRefusesOthers(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: func(c *Config) { scopedTokens(t)(c); helloRoots(t)(c) }})
	ctx := context.Background()
	img := e.importV1()
	gated := e.rolloutBody(img, func(s map[string]any) { s["approval"] = map[string]any{"required": true, "timeout": "5m"} })

	// read: every token reads; a token with only read changes nothing.
	r := e.do("GET", "/v1/images?service=hello", nil, readTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	d := e.do("POST", "/v1/rollouts", gated, readTok).forbidden(t)
	assert.Regexp(t, `^this token lacks any deploy scope, and POST /v1/rollouts needs deploy:SERVICE/ENV on what it acts on; it has read \(api:[0-9a-f]{8}\)`, d)

	// deploy: on its service and environment only.
	d = e.do("POST", "/v1/rollouts", gated, elsewhere).forbidden(t)
	assert.Contains(t, d, "this token lacks the scope deploy:hello/test; it has deploy:hello/prod, approve:hello/prod, bake:web (api:")
	_, err := e.client.DescribeWorkflowExecution(ctx, "rollout/test/hello", "")
	var nf *serviceerror.NotFound
	require.ErrorAs(t, err, &nf, "a refused start starts nothing")
	r = e.do("POST", "/v1/rollouts", gated, deployTok)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	e.waitRollout("wait for approval", func(st rolloutStatusJSON) bool { return st.Progress.Phase == contract.PhaseAwaitingApproval })

	// approve: the deployer cannot approve nor promote (which releases the gate too).
	for _, d := range []string{"approve", "promote"} {
		assert.Contains(t, e.do("POST", "/v1/rollouts/hello/test/"+d, nil, deployTok).forbidden(t), "this token lacks the scope approve:hello/test; it has deploy:hello/test")
	}
	assert.Contains(t, e.do("POST", "/v1/rollouts/hello/test/approve", nil, elsewhere).forbidden(t), "lacks the scope approve:hello/test")
	assert.Contains(t, e.do("POST", "/v1/rollouts/hello/test/abort", nil, approveTok).forbidden(t), "lacks the scope deploy:hello/test; it has approve:*/test")
	r = e.do("POST", "/v1/rollouts/hello/test/approve", DecisionRequest{Reason: "CHG-1"}, approveTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	st := e.waitRollout("end", func(st rolloutStatusJSON) bool { return st.Status != "Running" })
	assert.Equal(t, "Succeeded", st.Status, "%+v", st.Progress)
	assert.Equal(t, mustTokens(t, deployTok)[0].Who, st.Progress.StartedBy, "the rollout names the token that started it")
	require.Len(t, st.Progress.Approvals, 1)
	assert.Equal(t, mustTokens(t, approveTok)[0].Who, st.Progress.Approvals[0].Decision.By, "and the one that approved it")

	// bake: on its service only; a bake, inline in a rollout or a pipeline, needs it too.
	bake := map[string]any{"spec": helloBake(t)}
	assert.Contains(t, e.do("POST", "/v1/bakes", bake, deployTok).forbidden(t), "lacks any bake scope, and POST /v1/bakes needs bake:SERVICE")
	assert.Contains(t, e.do("POST", "/v1/bakes", bake, elsewhere).forbidden(t), "lacks the scope bake:hello;")
	withBake := e.rolloutBody("", func(s map[string]any) { s["image"] = map[string]any{"bake": "bake.yaml"} })
	withBake["bake"] = helloBake(t)
	assert.Contains(t, e.do("POST", "/v1/rollouts", withBake, deployTok).forbidden(t), "lacks the scope bake:hello;")
	stage := e.rolloutBody("")["spec"].(map[string]any)
	delete(stage, "image")
	prod := e.rolloutBody("", func(s map[string]any) { s["environment"] = "prod" })["spec"].(map[string]any)
	delete(prod, "image")
	pipeline := func(source string, stages ...any) map[string]any {
		p := map[string]any{"name": "hello", "stages": stages}
		if source == "bake" {
			p["bake"] = helloBake(t)
		} else {
			p["image"] = map[string]any{"id": img}
		}
		return map[string]any{"pipeline": p}
	}
	assert.Contains(t, e.do("POST", "/v1/pipelines", pipeline("bake", map[string]any{"rollout": stage}), deployTok).forbidden(t),
		"lacks the scope bake:hello;")
	assert.Contains(t, e.do("POST", "/v1/pipelines", pipeline("image", map[string]any{"rollout": stage}, map[string]any{"rollout": prod}), deployTok).forbidden(t),
		"lacks the scope deploy:hello/prod;", "each stage's environment")
	e.get("/v1/bakes/hello/latest").problem(t, http.StatusNotFound)
	e.get("/v1/pipelines/hello").problem(t, http.StatusNotFound)
	r = e.do("POST", "/v1/bakes", bake, bakeTok)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var started StartedBake
	r.json(t, &started)
	require.Equal(t, "Succeeded", e.waitBake(started.RunID).Status)

	// Channel moves are a baker's, on the image's service; a cascading revoke an admin's.
	assert.Contains(t, e.do("POST", "/v1/images/"+img+"/promote", PromoteRequest{Channel: "stable"}, elsewhere).forbidden(t), "lacks the scope bake:hello;")
	r = e.do("POST", "/v1/images/"+img+"/promote", PromoteRequest{Channel: "stable"}, bakeTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var moved contract.ChannelEntry
	r.json(t, &moved)
	assert.Equal(t, mustTokens(t, bakeTok)[0].Who, moved.By)
	assert.Contains(t, e.do("POST", "/v1/images/"+img+"/revoke", RevokeRequest{Reason: "x", Cascade: true}, bakeTok).forbidden(t), "lacks the scope admin;")
	got, err := e.cat.Get(ctx, img)
	require.NoError(t, err)
	assert.Nil(t, got.Revoked, "a refused revoke revokes nothing")

	// admin: schedules and the reaper's apply; a dry run reads.
	schedule := map[string]any{"name": "nightly", "bake": helloBake(t), "cron": "0 3 * * *", "paused": true}
	assert.Contains(t, e.do("POST", "/v1/schedules", schedule, bakeTok).forbidden(t), "this token lacks the scope admin; it has bake:hello")
	e.get("/v1/schedules/nightly").problem(t, http.StatusNotFound)
	r = e.do("POST", "/v1/schedules", schedule, testToken)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Contains(t, e.do("DELETE", "/v1/schedules/nightly", nil, deployTok).forbidden(t), "lacks the scope admin;")
	assert.Equal(t, http.StatusNoContent, e.do("DELETE", "/v1/schedules/nightly", nil, testToken).status)
	assert.Contains(t, e.do("POST", "/v1/reaper", ReaperRequest{Apply: true}, readTok).forbidden(t), "lacks the scope admin;")
	r = e.do("POST", "/v1/reaper", ReaperRequest{}, readTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var res contract.ReaperResult
	r.json(t, &res)
	assert.True(t, res.DryRun)
	assert.Equal(t, "hello from v1", e.served(), "nothing refused touched the fleet")
}

// A browser's requests: a page on another origin is refused (403) and a body
// type a page can send without a preflight is refused (415), before any token
// or Temporal is looked at; the CLI's and curl's requests (no Origin) pass.
func TestBrowserRequestsFromOtherOriginsAndNonJSONBodiesAreRefused(t *testing.T) {
	teapot := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	e := newEnv(t, envOptions{config: func(c *Config) {
		c.Origins = []string{"https://ui.example.com"}
		c.Extra = map[string]http.Handler{"/codec/": teapot}
	}})
	body := e.rolloutBody("img-000000000000")

	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/json-patch+json"} {
		p := e.do("POST", "/v1/rollouts", body, testToken, "Content-Type", ct).problem(t, http.StatusUnsupportedMediaType)
		assert.Equal(t, "https://imago.dev/problems/unsupported-media-type", p.Type)
		assert.Contains(t, p.Detail, "POST needs the header Content-Type: application/json, even without a body", ct)
	}
	e.do("POST", "/v1/rollouts/hello/test/abort", nil, testToken, "Content-Type", "").problem(t, http.StatusUnsupportedMediaType)
	e.do("DELETE", "/v1/schedules/nightly", nil, testToken, "Content-Type", "text/plain").problem(t, http.StatusUnsupportedMediaType)
	// JSON with parameters is JSON: this one reaches the catalog, which knows no such image.
	e.do("POST", "/v1/rollouts", body, testToken, "Content-Type", "application/json; charset=utf-8").problem(t, http.StatusNotFound)

	for _, hdr := range [][]string{
		{"Origin", "https://evil.example"},
		{"Origin", "null"},
		{"Origin", "https://ui.example.com.evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
	} {
		for _, req := range []struct{ method, path string }{{"GET", "/v1/images"}, {"POST", "/v1/rollouts"}, {"GET", "/healthz"}} {
			var b any
			if req.method == "POST" {
				b = body
			}
			p := e.do(req.method, req.path, b, testToken, hdr...).problem(t, http.StatusForbidden)
			assert.Equal(t, "https://imago.dev/problems/cross-origin", p.Type, "%v %v", hdr, req)
		}
	}
	p := e.do("POST", "/v1/rollouts", body, testToken, "Origin", "https://evil.example", "Content-Type", "text/plain").problem(t, http.StatusForbidden)
	assert.Equal(t, `a web page at "https://evil.example" sent this request, and the server's IMAGO_UI_ORIGIN does not allow that origin; add it there to allow it`, p.Detail)

	// The allowed origin, and a browser's own navigation, pass.
	assert.Equal(t, http.StatusOK, e.do("GET", "/v1/images", nil, testToken, "Origin", "https://ui.example.com").status)
	e.do("POST", "/v1/rollouts", body, testToken, "Origin", "https://ui.example.com", "Sec-Fetch-Site", "cross-site").problem(t, http.StatusNotFound)
	for _, site := range []string{"same-origin", "none"} {
		assert.Equal(t, http.StatusOK, e.do("GET", "/v1/images", nil, testToken, "Sec-Fetch-Site", site).status, site)
	}
	// The codec server brings its own CORS: the API's checks leave it alone.
	assert.Equal(t, http.StatusTeapot, e.do("OPTIONS", "/codec/decode", nil, "", "Origin", "https://evil.example").status)
	assert.Equal(t, http.StatusTeapot, e.do("POST", "/codec/decode", "{}", "", "Content-Type", "text/plain").status)
}

// Without tokens (--insecure-no-auth) the API answers only requests for a
// loopback Host: a page whose own name was re-pointed at 127.0.0.1 (DNS
// rebinding) is refused, on every path; a cross-site text/plain POST is 415.
func TestInsecureNoAuthServesOnlyLoopbackHosts(t *testing.T) {
	teapot := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	e := newEnv(t, envOptions{config: func(c *Config) {
		c.Tokens, c.InsecureNoAuth = nil, true
		c.Extra = map[string]http.Handler{"/codec/": teapot}
	}})
	port := e.url[strings.LastIndex(e.url, ":")+1:]
	body := e.rolloutBody("img-000000000000")

	for _, host := range []string{"rebind.example:" + port, "rebind.example", "127.0.0.1.nip.io:" + port, "10.0.0.1:" + port, "localhost.:" + port} {
		for _, req := range []struct{ method, path string }{{"GET", "/v1/images"}, {"POST", "/v1/rollouts"}, {"GET", "/healthz"}, {"POST", "/codec/decode"}} {
			var b any
			if req.method == "POST" {
				b = body
			}
			p := e.do(req.method, req.path, b, "", "Host", host).problem(t, http.StatusForbidden)
			assert.Equal(t, "https://imago.dev/problems/host-not-loopback", p.Type, "%s %v", host, req)
			assert.Contains(t, p.Detail, "this server answers only requests for a loopback host (127.0.0.1, ::1 or localhost), and this one is for", host)
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "[::1]:" + port, "127.0.0.2"} {
		r := e.do("GET", "/v1/images", nil, "", "Host", host)
		assert.Equal(t, http.StatusOK, r.status, "%s: %s", host, r.body)
	}
	// What a page can send anywhere without a preflight: refused before anything starts
	// (this API's Temporal client reaches nothing, so anything started would be a 503).
	e.do("POST", "/v1/rollouts", body, "", "Content-Type", "text/plain").problem(t, http.StatusUnsupportedMediaType)
	e.do("POST", "/v1/rollouts", body, "", "Content-Type", "text/plain", "Origin", "https://evil.example").problem(t, http.StatusForbidden)
	// Anyone on this host is admin: the request passes every check and reaches the catalog.
	p := e.do("POST", "/v1/rollouts", body, "").problem(t, http.StatusNotFound)
	assert.Contains(t, p.Detail, "image img-000000000000: not found in the catalog")
}
