package api

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// A bake started through the API builds, tests and publishes an image, moves its
// channel, and a second bake of the same inputs is a cache hit.
func TestBakeThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{temporal: true, config: helloRoots(t)})
	p := e.get("/v1/bakes/hello/latest").problem(t, http.StatusNotFound)
	assert.Equal(t, "no bake of hello to channel latest yet; start one with POST /v1/bakes", p.Detail)

	// The hello binary built by TestMain, packaged as is (no provisioning) and
	// tested by booting one instance.
	bake := map[string]any{"spec": map[string]any{
		"service": "hello", "dir": filepath.Dir(helloBuild(t)), "source": filepath.Base(helloBuild(t)),
		"entrypoint": []string{"./hello"},
		"test":       map[string]any{"checks": []any{map[string]any{"path": "/", "expectBody": "v1"}}},
	}}
	for i, wantCached := range []bool{false, true} {
		r := e.post("/v1/bakes", bake)
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		assert.Equal(t, "/v1/bakes/hello/latest", r.header.Get("Location"))
		var started StartedBake
		r.json(t, &started)
		assert.Equal(t, "bake/hello/latest", started.WorkflowID)
		assert.Equal(t, "imago-local", started.Builder)

		st := e.waitBake(started.RunID)
		require.Equal(t, "Succeeded", st.Status, "bake %d: %+v", i+1, st)
		require.NotNil(t, st.Result)
		assert.Equal(t, wantCached, st.Result.Cached, "bake %d", i+1)
		assert.Equal(t, !wantCached, st.Result.Tested, "bake %d", i+1)
		require.NotNil(t, st.Progress)
		assert.Equal(t, contract.PhaseSucceeded, st.Progress.Phase)

		var detail ImageDetail
		e.get("/v1/images/"+st.Result.ImageID).json(t, &detail)
		assert.Equal(t, []string{"latest"}, detail.Channels)
		assert.Equal(t, "imago-local", detail.Image.Builder)
	}
}

// waitBake polls GET /v1/bakes/hello/latest until run runID ended, for two minutes.
func (e *apiEnv) waitBake(runID string) BakeStatus {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var st BakeStatus
	for time.Now().Before(deadline) {
		r := e.get("/v1/bakes/hello/latest")
		require.Equal(e.t, http.StatusOK, r.status, "%s", r.body)
		st = BakeStatus{}
		r.json(e.t, &st)
		if st.RunID == runID && st.Status != "Running" {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("the bake did not end within two minutes; last status %+v", st)
	return st
}
