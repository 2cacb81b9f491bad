package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provenance"
)

// GET /v1/images/{id}/provenance: the chain with the read scope, 401 without a
// token, 404 for an unknown image; Temporal being unreachable leaves the
// approvals out with a note, not an error.
func TestImageProvenanceThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{config: scopedTokens(t)})
	ctx := context.Background()
	v1 := e.importV1()
	img, err := e.cat.Get(ctx, v1)
	require.NoError(t, err)
	st, err := provenance.NewStatement(provenance.Build{ImageID: v1, Service: "hello", ArchiveDigest: img.Digest, Builder: "imago-local",
		WorkflowID: "bake/hello/latest", RunID: "run-1", Worker: "1@host", VariableNames: []string{"GREETING"}})
	require.NoError(t, err)
	payload, err := provenance.Marshal(st)
	require.NoError(t, err)
	env, err := provenance.Unsigned(payload)
	require.NoError(t, err)
	require.NoError(t, e.cat.PutProvenance(ctx, v1, env))
	now := time.Now().UTC()
	_, err = e.cat.RecordDeployment(ctx, contract.Deployment{Service: "hello", Environment: "test", ImageID: v1, FleetID: "f-1",
		RolloutID: contract.RolloutWorkflowID("hello", "test"), RunID: "run-9", StartedBy: "ann", Action: contract.ActionRollout,
		Outcome: contract.OutcomeSucceeded, Started: now, Finished: now})
	require.NoError(t, err)

	r := e.do("GET", "/v1/images/"+v1+"/provenance", nil, readTok)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var ch struct {
		Image      contract.Image
		Provenance struct {
			Signed         bool
			BakeWorkflowID string   `json:"bakeWorkflowId"`
			BakeRunID      string   `json:"bakeRunId"`
			VariableNames  []string `json:"variableNames"`
		}
		Rollouts []struct{ StartedBy, RunID string }
		Live     []struct{ Environment, FleetID string }
		Notes    []string
	}
	r.json(t, &ch)
	assert.Equal(t, v1, ch.Image.ID)
	assert.False(t, ch.Provenance.Signed)
	assert.Equal(t, "bake/hello/latest", ch.Provenance.BakeWorkflowID)
	assert.Equal(t, "run-1", ch.Provenance.BakeRunID)
	assert.Equal(t, []string{"GREETING"}, ch.Provenance.VariableNames)
	require.Len(t, ch.Rollouts, 1)
	assert.Equal(t, "ann", ch.Rollouts[0].StartedBy)
	require.Len(t, ch.Live, 1)
	assert.Equal(t, "f-1", ch.Live[0].FleetID)
	require.NotEmpty(t, ch.Notes)
	assert.Contains(t, ch.Notes[len(ch.Notes)-1], "approvals and analysis verdicts left out")

	e.do("GET", "/v1/images/"+v1+"/provenance", nil, "").problem(t, http.StatusUnauthorized)
	e.get("/v1/images/img-000000000000/provenance").problem(t, http.StatusNotFound)
}
