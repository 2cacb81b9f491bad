package api

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/api/tokens"
)

// TestRegionPathsNeedTheEnvironmentsScope: a rollout to a region is addressed
// as {env} = ENV@REGION; approve and deploy on it need the environment's
// scope, which covers its regions, and no other environment's.
func TestRegionPathsNeedTheEnvironmentsScope(t *testing.T) {
	rt := route{method: "POST", path: "/v1/rollouts/{service}/{env}/approve", scope: tokens.Approve}
	scope := func(s string) tokens.Scope {
		sc, err := tokens.ParseScope(s)
		require.NoError(t, err)
		return sc
	}
	check := func(scopes []tokens.Scope, env string) error {
		r := httptest.NewRequest("POST", "/v1/rollouts/web/"+env+"/approve", nil)
		r.SetPathValue("service", "web")
		r.SetPathValue("env", env)
		return checkRoute(rt, grant{who: "test", scopes: scopes}, r)
	}
	prod := []tokens.Scope{scope("approve:web/prod")}
	assert.NoError(t, check(prod, "prod@eu-west-1"))
	assert.NoError(t, check(prod, "prod"))
	assert.Error(t, check(prod, "staging@eu-west-1"))
	assert.Error(t, check([]tokens.Scope{scope("approve:web/staging")}, "prod@eu-west-1"))
}
