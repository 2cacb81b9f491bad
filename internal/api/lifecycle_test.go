package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// TestLifecycleRulesThroughTheAPI: over real HTTP, only admin sets a rule; bad
// input is a 400 naming the field and sets nothing; a rule set is listed.
func TestLifecycleRulesThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{config: scopedTokens(t)})
	body := LifecycleRequest{KeepLast: 3, DeprecateAfter: "30d", DeleteAfter: "90d"}
	assert.Contains(t, e.do("PUT", "/v1/lifecycle/hello", body, deployTok).forbidden(t), "this token lacks the scope admin;")
	assert.Contains(t, e.do("PUT", "/v1/lifecycle/hello", body, bakeTok).forbidden(t), "this token lacks the scope admin;")
	for _, c := range []struct {
		field string
		bad   LifecycleRequest
	}{
		{"keepLast", LifecycleRequest{KeepLast: -1, DeprecateAfter: "30d"}},
		{"deprecateAfter", LifecycleRequest{KeepLast: 3, DeprecateAfter: "a month"}},
		{"deprecateAfter", LifecycleRequest{KeepLast: 3, DeprecateAfter: "-1h"}},
		{"deleteAfter", LifecycleRequest{KeepLast: 3, DeprecateAfter: "90d", DeleteAfter: "30d"}},
		{"deleteAfter", LifecycleRequest{KeepLast: 3, DeleteAfter: "-2h"}},
	} {
		p := e.do("PUT", "/v1/lifecycle/hello", c.bad, testToken).problem(t, http.StatusBadRequest)
		require.Len(t, p.Errors, 1, "%+v", p)
		assert.Equal(t, c.field, p.Errors[0].Field, "%+v", p)
	}
	var list LifecycleList
	e.get("/v1/lifecycle").json(t, &list)
	assert.Empty(t, list.Rules, "nothing refused set a rule")

	r := e.do("PUT", "/v1/lifecycle/hello", body, testToken)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var rule contract.LifecycleRule
	r.json(t, &rule)
	assert.Equal(t, "hello", rule.Service)
	assert.Equal(t, int64(1), rule.Seq)
	assert.Equal(t, contract.Duration(90*24*time.Hour), rule.DeleteAfter)
	e.get("/v1/lifecycle").json(t, &list)
	require.Len(t, list.Rules, 1)
	assert.Equal(t, 3, list.Rules[0].KeepLast)
	assert.Equal(t, contract.Duration(30*24*time.Hour), list.Rules[0].DeprecateAfter)
}
