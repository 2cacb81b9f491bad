package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// A cascading revoke with a campaign through the API: a campaign without
// cascade, or a bad one, is refused before anything is revoked (its fields
// under campaign.); a good one revokes the base and what was built on it and
// starts cascade-ID, which rebuilds api on base/stable: imported, api has no
// bake spec, so its bake fails and spends the budget. Every answer matches
// openapi.json.
func TestRevokeCascadeStartsARebuildCampaignThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true})
	check := e.validated()
	ctx := context.Background()
	const base1, api1, base2 = "img-000000000c01", "img-000000000a01", "img-000000000c02"
	for _, img := range []contract.Image{
		{ID: base1, Service: "base", Builder: "import", Entrypoint: []string{"./base"}},
		{ID: api1, Service: "api", Builder: "import", Entrypoint: []string{"./api"}, Parent: base1},
		{ID: base2, Service: "base", Builder: "import", Entrypoint: []string{"./base", "-v2"}},
	} {
		_, err := e.cat.Publish(ctx, img)
		require.NoError(t, err)
	}
	for _, id := range []string{base1, base2} {
		_, err := e.cat.MoveChannel(ctx, "base", "stable", id, catalog.MoveOptions{By: "alice"})
		require.NoError(t, err)
	}
	path := "/v1/images/" + base1 + "/revoke"
	rings := []any{map[string]any{"environments": []any{"staging"}}}

	p := check("a campaign without cascade", "POST", path, map[string]any{"reason": "CVE", "campaign": map[string]any{"rings": rings}}, testToken, http.StatusBadRequest).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"campaign"}, fields(p))
	bad := map[string]any{"rings": []any{map[string]any{"environments": []any{"staging"}, "parallel": -1}}}
	p = check("a bad campaign", "POST", path, map[string]any{"reason": "CVE", "cascade": true, "campaign": bad}, testToken, http.StatusBadRequest).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"campaign.rings[0].parallel"}, fields(p))
	img, err := e.cat.Get(ctx, base1)
	require.NoError(t, err)
	assert.Nil(t, img.Revoked, "a refused revoke revokes nothing")

	var revoked Revoked
	check("a cascade", "POST", path, map[string]any{"reason": "CVE", "cascade": true,
		"campaign": map[string]any{"rings": rings, "errorBudget": map[string]any{"maxFailed": 1}}}, testToken, http.StatusOK).json(t, &revoked)
	assert.Equal(t, []string{base1, api1}, revoked.Revoked)
	assert.Equal(t, "cascade-"+base1, revoked.Campaign, revoked.NoCampaign)

	var run campaigns.Run
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && !run.Progress.Halted {
		run = campaigns.Run{}
		check("the cascade's campaign", "GET", "/v1/campaigns/"+revoked.Campaign, nil, testToken, http.StatusOK).json(t, &run)
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, contract.PhaseHalted, run.Progress.Phase, "%+v", run.Progress)
	require.Len(t, run.Progress.Bakes, 1)
	assert.Equal(t, "api", run.Progress.Bakes[0].Service)
	assert.Equal(t, contract.TargetFailed, run.Progress.Bakes[0].State)
	assert.Contains(t, run.Progress.Bakes[0].Error, "no image of api built on base/stable has a bake spec")
	check("abort", "POST", "/v1/campaigns/"+revoked.Campaign+"/abort", map[string]any{"reason": "test over"}, testToken, http.StatusOK)
}
