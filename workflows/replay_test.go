package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays real histories recorded from the integration
// tests (`make record-histories` refreshes them): a change to workflow code that
// would break running workflows fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories; run: make record-histories")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Rollout, workflow.RegisterOptions{Name: "Rollout"})
			r.RegisterWorkflowWithOptions(Bake, workflow.RegisterOptions{Name: "Bake"})
			r.RegisterWorkflowWithOptions(Pipeline, workflow.RegisterOptions{Name: "Pipeline"})
			r.RegisterWorkflowWithOptions(Reaper, workflow.RegisterOptions{Name: "Reaper"})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
