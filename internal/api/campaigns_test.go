package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
)

// validated sends a request, wants status want, and checks the answer
// against openapi.json.
func (e *apiEnv) validated() func(what, method, path string, body any, token string, want int) response {
	v := openAPIValidator(e.t)
	return func(what, method, path string, body any, token string, want int) response {
		t := e.t
		t.Helper()
		r := e.do(method, path, body, token)
		require.Equal(t, want, r.status, "%s: %s", what, r.body)
		req := httptest.NewRequest(method, e.url+path, nil)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp := &http.Response{StatusCode: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)), Request: req}
		ok, errs := v.ValidateHttpResponse(req, resp)
		assert.True(t, ok, "%s (%s %s, %d) does not match openapi.json:%s\nbody: %s", what, method, path, r.status, validationErrors(errs), r.body)
		return r
	}
}

// A campaign through the API, with a real Temporal server and worker: a bad
// spec is refused with its field paths, a token without deploy on the ring's
// environment gets 403, and a campaign over hello, whose stable channel names
// the image live in test, ends done with that rollout unchanged; a resume
// after it ended is refused (409); one over a channel hello does not have
// fails at once, saying so. Every answer matches openapi.json.
func TestCampaignThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: scopedTokens(t)})
	check := e.validated()
	p := check("no such campaign", "GET", "/v1/campaigns/c1", nil, testToken, http.StatusNotFound).problem(t, http.StatusNotFound)
	assert.Equal(t, `no campaign "c1"; start one with POST /v1/campaigns`, p.Detail)

	bad := map[string]any{"name": "c1", "services": []any{"hello"}, "image": map[string]any{"channel": "stable"},
		"rings": []any{map[string]any{"environments": []any{"test"}, "parallel": -1}}}
	p = check("a bad campaign", "POST", "/v1/campaigns", bad, testToken, http.StatusBadRequest).problem(t, http.StatusBadRequest)
	require.Len(t, p.Errors, 1)
	assert.Equal(t, "rings[0].parallel", p.Errors[0].Field)

	img := e.importV1()
	check("a rollout", "POST", "/v1/rollouts", e.rolloutBody(img), testToken, http.StatusCreated)
	e.waitRollout("succeed", func(st rolloutStatusJSON) bool { return st.Progress.Phase == contract.PhaseSucceeded })
	check("a channel move", "POST", "/v1/images/"+img+"/promote", map[string]any{"channel": "stable"}, testToken, http.StatusOK)

	body := map[string]any{"name": "c1", "services": []any{"hello"}, "image": map[string]any{"channel": "stable"},
		"rings": []any{map[string]any{"environments": []any{"test"}}}, "errorBudget": map[string]any{"maxFailed": 1}}
	assert.Contains(t, check("no deploy on test", "POST", "/v1/campaigns", body, elsewhere, http.StatusForbidden).forbidden(t),
		"this token lacks the scope deploy:hello/test")
	r := check("a started campaign", "POST", "/v1/campaigns", body, deployTok, http.StatusCreated)
	assert.Equal(t, "/v1/campaigns/c1", r.header.Get("Location"))
	var started StartedCampaign
	r.json(t, &started)
	assert.Equal(t, "campaign/c1", started.WorkflowID)
	assert.Equal(t, "campaign c1: 1 services, channel stable: test", started.Summary)

	var run campaigns.Run
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		run = campaigns.Run{}
		check("a campaign", "GET", "/v1/campaigns/c1", nil, readTok, http.StatusOK).json(t, &run)
		if _, ended := run.Progress.Phase.Outcome(); ended {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, contract.PhaseSucceeded, run.Progress.Phase, "%+v", run.Progress)
	require.Len(t, run.Progress.Rings, 1)
	require.Len(t, run.Progress.Rings[0].Targets, 1)
	assert.Equal(t, contract.TargetUnchanged, run.Progress.Rings[0].Targets[0].State, "img is live in test already")

	assert.Contains(t, check("resume without approve", "POST", "/v1/campaigns/c1/resume", nil, deployTok, http.StatusForbidden).forbidden(t),
		"approve")
	// A channel the service does not have fails the campaign before anything starts.
	body["name"], body["image"] = "c2", map[string]any{"channel": "nope"}
	check("a campaign over a missing channel", "POST", "/v1/campaigns", body, deployTok, http.StatusCreated)
	deadline = time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		run = campaigns.Run{}
		check("a failed campaign", "GET", "/v1/campaigns/c2", nil, readTok, http.StatusOK).json(t, &run)
		if _, ended := run.Progress.Phase.Outcome(); ended {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, contract.PhaseFailed, run.Progress.Phase, "%+v", run.Progress)
	assert.Contains(t, run.Progress.Error, "campaign c2 failed while resolving its images: service hello, channel nope:")

	p = check("resume after the end", "POST", "/v1/campaigns/c1/resume", map[string]any{"reason": "go"}, approveTok, http.StatusConflict).problem(t, http.StatusConflict)
	assert.Contains(t, p.Detail, "resume refused")
}
