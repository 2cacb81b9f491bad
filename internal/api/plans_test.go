package api

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/plan"
)

// POST /v1/plans, with a read-only token beside a real Temporal server and
// worker, answers the plan of a canary (its approval listed) and starts
// nothing: no workflow, no router, nothing written to the catalog. A body
// POST /v1/rollouts refuses is refused alike.
func TestPlanThroughTheAPIStartsNothing(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: scopedTokens(t)})
	ctx := context.Background()
	img := e.importV1()
	canary := e.rolloutBody(img, func(s map[string]any) {
		s["strategy"] = map[string]any{"type": "canary", "steps": []any{
			map[string]any{"setWeight": 25}, map[string]any{"pause": map[string]any{"duration": "2m"}}, map[string]any{"pause": map[string]any{}}}}
	})
	imagesBefore, err := e.cat.List(ctx, "hello")
	require.NoError(t, err)

	r := e.do("POST", "/v1/plans", canary, readTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var p plan.Plan
	r.json(t, &p)
	assert.Equal(t, "canary", p.Strategy)
	assert.Equal(t, img, p.Image)
	assert.Equal(t, contract.PhaseSucceeded, p.Outcome)
	require.Len(t, p.Approvals, 1)
	assert.Equal(t, "pause 3/3", p.Approvals[0].Gate)
	assert.GreaterOrEqual(t, p.Duration.D().Minutes(), 2.0, "the 2m pause at least")
	assert.Nil(t, p.Live, "nothing is live in test yet")

	// What POST /v1/rollouts refuses, POST /v1/plans refuses the same way.
	bad := e.rolloutBody(img, func(s map[string]any) { s["fleet"] = map[string]any{"size": 0}; s["soak"] = "forever" })
	planned := e.do("POST", "/v1/plans", bad, readTok).problem(t, http.StatusBadRequest)
	started := e.post("/v1/rollouts", bad).problem(t, http.StatusBadRequest)
	assert.Equal(t, fields(started), fields(planned))
	assert.Equal(t, started.Errors, planned.Errors)
	unknown := e.rolloutBody("img-000000000bad")
	assert.Equal(t, e.post("/v1/rollouts", unknown).problem(t, http.StatusNotFound).Detail,
		e.do("POST", "/v1/plans", unknown, readTok).problem(t, http.StatusNotFound).Detail)

	// No token, no plan.
	e.do("POST", "/v1/plans", canary, "").problem(t, http.StatusUnauthorized)

	_, err = e.client.DescribeWorkflowExecution(ctx, "rollout/test/hello", "")
	var nf *serviceerror.NotFound
	assert.ErrorAs(t, err, &nf, "no rollout workflow was started")
	_, err = e.cat.Live(ctx, "hello", "test")
	assert.ErrorIs(t, err, catalog.ErrNotFound, "no deployment recorded")
	ts, err := e.cat.Timings(ctx, "hello", "test")
	require.NoError(t, err)
	assert.Empty(t, ts)
	imagesAfter, err := e.cat.List(ctx, "hello")
	require.NoError(t, err)
	assert.Equal(t, imagesBefore, imagesAfter)
	if c, err := net.Dial("tcp", e.listen); err == nil {
		c.Close()
		t.Errorf("a router serves on %s: something was started", e.listen)
	}
}
