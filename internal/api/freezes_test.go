package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/freezes"
)

// TestAFreezeThroughTheAPIHoldsARolloutUntilItIsDeleted: over real HTTP with a
// real Temporal server and worker, only admin starts and ends a freeze; bad
// input is a 400 naming the field; a rollout it covers waits in phase frozen
// (its status says why) and succeeds once DELETE /v1/freezes ends it.
func TestAFreezeThroughTheAPIHoldsARolloutUntilItIsDeleted(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: scopedTokens(t)})
	img := e.importV1()

	freeze := FreezeRequest{Environment: "test", Reason: "incident INC-42"}
	assert.Contains(t, e.do("POST", "/v1/freezes", freeze, deployTok).forbidden(t), "this token lacks the scope admin;")
	assert.Contains(t, e.do("DELETE", "/v1/freezes?environment=test", nil, readTok).forbidden(t), "this token lacks the scope admin;")
	for field, body := range map[string]FreezeRequest{
		"reason":      {Environment: "test"},
		"until":       {Environment: "test", Reason: "x", Until: "tomorrow"},
		"environment": {Environment: "Prod!", Reason: "x"},
	} {
		p := e.do("POST", "/v1/freezes", body, testToken).problem(t, http.StatusBadRequest)
		require.Len(t, p.Errors, 1, "%+v", p)
		assert.Equal(t, field, p.Errors[0].Field, "%+v", p)
	}
	var list FreezeList
	e.get("/v1/freezes").json(t, &list)
	assert.Empty(t, list.Freezes, "nothing refused froze anything")

	r := e.do("POST", "/v1/freezes", freeze, testToken)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var f contract.Freeze
	r.json(t, &f)
	assert.Equal(t, "test/*", f.Scope())
	assert.Equal(t, mustTokens(t, testToken)[0].Who, f.By)
	r = e.do("GET", "/v1/freezes", nil, readTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &list)
	require.Len(t, list.Freezes, 1)
	assert.Equal(t, "incident INC-42", list.Freezes[0].Reason)

	r = e.do("POST", "/v1/rollouts", e.rolloutBody(img), deployTok)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	st := e.waitRollout("freeze", func(st rolloutStatusJSON) bool {
		return st.Progress != nil && st.Progress.Phase == contract.PhaseFrozen
	})
	require.NotNil(t, st.Progress.Hold)
	assert.Contains(t, st.Progress.Hold.Why, "test/* frozen by "+f.By)
	assert.Contains(t, st.Progress.Hold.Why, "incident INC-42")
	assert.Empty(t, st.Progress.NewFleet, "nothing provisioned while frozen")

	// DELETE finds the rollouts to wake by their ImagoPhase search attribute:
	// wait until the list (visibility) shows it frozen.
	require.Eventually(t, func() bool {
		var l RolloutList
		e.get("/v1/rollouts?service=hello").json(t, &l)
		return len(l.Rollouts) == 1 && l.Rollouts[0].Phase == contract.PhaseFrozen
	}, time.Minute, 50*time.Millisecond, "the rollout is listed as frozen")
	r = e.do("DELETE", "/v1/freezes?environment=test", nil, testToken)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var ended freezes.Ended
	r.json(t, &ended)
	assert.Equal(t, []string{"rollout/test/hello"}, ended.Signalled)
	st = e.waitRollout("end", func(st rolloutStatusJSON) bool { return st.Status != "Running" })
	assert.Equal(t, "Succeeded", st.Status, "%+v", st.Progress)
	assert.Equal(t, "hello from v1", e.served())
	e.do("DELETE", "/v1/freezes?environment=test", nil, testToken).problem(t, http.StatusNotFound)
}
