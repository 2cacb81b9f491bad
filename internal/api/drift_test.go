package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/drift"
)

// TestDriftThroughTheAPI: over real HTTP with a real Temporal server and
// worker, a check needs read and finds a fresh rollout as the inventory says;
// repair needs deploy on the whole selection; bad names are a 400 naming the
// field.
func TestDriftThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: scopedTokens(t)})
	img := e.importV1()
	r := e.do("POST", "/v1/rollouts", e.rolloutBody(img), deployTok)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	e.waitRollout("success", func(st rolloutStatusJSON) bool { return st.Status == "Succeeded" })

	r = e.do("POST", "/v1/drift", DriftRequest{Service: "hello", Environment: "test"}, readTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var res drift.Result
	r.json(t, &res)
	require.Len(t, res.Targets, 1)
	got := res.Targets[0]
	assert.Equal(t, img, got.LiveImage)
	assert.NotEmpty(t, got.LiveFleet)
	assert.False(t, got.Drifted(), "%+v", got.Items)
	assert.Equal(t, "checked 1 targets on local: no drift", res.Summary)

	assert.Contains(t, e.do("POST", "/v1/drift", DriftRequest{Service: "hello", Environment: "test", Repair: true}, readTok).forbidden(t),
		"this token lacks the scope deploy:hello/test;")
	assert.Contains(t, e.do("POST", "/v1/drift", DriftRequest{Repair: true}, deployTok).forbidden(t),
		"this token lacks the scope deploy;", "repairing everything needs deploy on everything")
	r = e.do("POST", "/v1/drift", DriftRequest{Service: "hello", Environment: "test", Repair: true}, deployTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &res)
	assert.Empty(t, res.Repairs, "nothing drifted, nothing to repair")

	p := e.do("POST", "/v1/drift", DriftRequest{Environment: "Prod!"}, readTok).problem(t, http.StatusBadRequest)
	require.Len(t, p.Errors, 1, "%+v", p)
	assert.Equal(t, "environment", p.Errors[0].Field)
}
