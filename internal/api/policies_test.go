package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// TestPoliciesThroughTheAPI: over real HTTP, only admin sets and deletes an
// environment's policy, any token reads it, no token is a 401; bad input is a
// 400 naming the field and sets nothing; a policy set is read back, listed,
// replaced and deleted (then a 404).
func TestPoliciesThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{config: scopedTokens(t)})
	body := PolicyRequest{RequireSBOM: true, DenyPackages: []string{"libssl3@<3.0.7"}, MaxAge: "90d"}
	for _, tok := range []string{deployTok, bakeTok, readTok} {
		assert.Contains(t, e.do("PUT", "/v1/policies/prod", body, tok).forbidden(t), "this token lacks the scope admin;")
		assert.Contains(t, e.do("DELETE", "/v1/policies/prod", nil, tok).forbidden(t), "this token lacks the scope admin;")
	}
	e.do("PUT", "/v1/policies/prod", body, "").problem(t, http.StatusUnauthorized)
	e.do("GET", "/v1/policies", nil, "").problem(t, http.StatusUnauthorized)
	for field, bad := range map[string]PolicyRequest{
		"requireProvenance": {},
		"maxAge":            {RequireSBOM: true, MaxAge: "three months"},
		"denyPackages[1]":   {DenyPackages: []string{"libssl3", "openssl@<"}},
		"provenanceKey":     {RequireProvenance: true, ProvenanceKey: "not a PEM key"},
	} {
		p := e.do("PUT", "/v1/policies/prod", bad, testToken).problem(t, http.StatusBadRequest)
		require.Len(t, p.Errors, 1, "%+v", p)
		assert.Equal(t, field, p.Errors[0].Field, "%+v", p)
	}
	p := e.do("PUT", "/v1/policies/Prod!", body, testToken).problem(t, http.StatusBadRequest)
	require.Len(t, p.Errors, 1, "%+v", p)
	assert.Equal(t, "path.env", p.Errors[0].Field)
	var list PolicyList
	e.do("GET", "/v1/policies", nil, readTok).json(t, &list)
	assert.Empty(t, list.Policies, "nothing refused set a policy")
	e.do("GET", "/v1/policies/prod", nil, readTok).problem(t, http.StatusNotFound)

	r := e.do("PUT", "/v1/policies/prod", body, testToken)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var pol contract.Policy
	r.json(t, &pol)
	assert.Equal(t, "prod", pol.Environment)
	assert.Equal(t, int64(1), pol.Seq)
	assert.Equal(t, contract.Duration(90*24*time.Hour), pol.MaxAge)
	r = e.do("GET", "/v1/policies/prod", nil, readTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &pol)
	assert.Equal(t, []string{"libssl3@<3.0.7"}, pol.DenyPackages)
	assert.True(t, pol.RequireSBOM)

	r = e.do("PUT", "/v1/policies/prod", PolicyRequest{MaxAge: "30d"}, testToken)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	e.do("GET", "/v1/policies", nil, readTok).json(t, &list)
	require.Len(t, list.Policies, 1)
	assert.Equal(t, int64(2), list.Policies[0].Seq)
	assert.False(t, list.Policies[0].RequireSBOM, "a set replaces the policy")

	r = e.do("DELETE", "/v1/policies/prod", nil, testToken)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &pol)
	assert.True(t, pol.Deleted)
	e.do("GET", "/v1/policies/prod", nil, readTok).problem(t, http.StatusNotFound)
	e.do("DELETE", "/v1/policies/prod", nil, testToken).problem(t, http.StatusNotFound)
}
