package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/workflows"
)

// A sweep that outlasts the API's wait goes on: the API answers 202 with its
// workflow, and refuses a second sweep with the same token while it runs (409).
// No worker runs here, so the sweep waits for one, deterministically.
func TestReaperThatOutlastsTheWaitIsA202(t *testing.T) {
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	_, err := c.OperatorService().AddSearchAttributes(context.Background(), &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(NewServer(Config{Client: c, Tokens: mustTokens(t, testToken+" admin"), RequestTimeout: 2 * time.Second}))
	t.Cleanup(srv.Close)
	e := &apiEnv{t: t, url: srv.URL, client: c}

	r := e.post("/v1/reaper", map[string]any{"grace": "2h"})
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	var started ReaperStarted
	r.json(t, &started)
	assert.Regexp(t, `^reaper/api:[0-9a-f]{8}$`, started.WorkflowID)
	assert.NotEmpty(t, started.RunID)
	assert.Equal(t, "the sweep is still running after 1.5s; it goes on, and its result is in the Temporal UI (workflow "+started.WorkflowID+")", started.Detail)
	desc, err := c.DescribeWorkflowExecution(context.Background(), started.WorkflowID, started.RunID)
	require.NoError(t, err)
	assert.Nil(t, desc.GetWorkflowExecutionInfo().GetCloseTime(), "the sweep goes on")

	p := e.post("/v1/reaper", nil).problem(t, http.StatusConflict)
	assert.Equal(t, "a sweep started with this token is running ("+started.WorkflowID+", run "+started.RunID+"); wait for it, then sweep again", p.Detail)
}
