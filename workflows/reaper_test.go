package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

// The Reaper with mocked activities: dry run, apply, and a fleet the provider
// refuses to terminate. The real sweep runs in internal/app.
func TestReaperWithMockedActivities(t *testing.T) {
	var a *activities.Activities
	found := contract.FindOrphansResult{Provider: "local", Routed: 2, Young: 1, Checked: 5,
		Orphans: []contract.Orphan{{FleetID: "fl-a"}, {FleetID: "fl-b"}}}
	run := func(in contract.ReaperInput) (contract.ReaperResult, []string, time.Duration) {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterActivity(&activities.Activities{})
		var grace time.Duration
		env.OnActivity(a.FindOrphans, mock.Anything, mock.Anything).Return(
			func(_ context.Context, q contract.FindOrphansInput) (contract.FindOrphansResult, error) {
				grace = q.Grace
				return found, nil
			})
		var terminated []string
		env.OnActivity(a.Terminate, mock.Anything, mock.Anything).Return(func(_ context.Context, in contract.TerminateInput) error {
			terminated = append(terminated, in.FleetID)
			if in.FleetID == "fl-b" {
				return temporal.NewNonRetryableApplicationError("fleet fl-b receives traffic", contract.ErrProvider, nil)
			}
			return nil
		}).Maybe()
		env.ExecuteWorkflow(Reaper, in)
		require.NoError(t, env.GetWorkflowError())
		var res contract.ReaperResult
		require.NoError(t, env.GetWorkflowResult(&res))
		return res, terminated, grace
	}

	res, terminated, grace := run(contract.ReaperInput{})
	assert.True(t, res.DryRun)
	assert.Empty(t, terminated, "a dry run terminates nothing")
	assert.Equal(t, contract.DefaultReaperGrace, grace)
	assert.Equal(t, "dry run: would terminate 2 leaked fleets [fl-a fl-b]; kept 2 routed, 0 owned by running workflows, 1 younger than 1h0m0s", res.Summary)

	res, terminated, grace = run(contract.ReaperInput{Apply: true, Grace: 10 * time.Minute})
	assert.Equal(t, 10*time.Minute, grace)
	assert.Equal(t, []string{"fl-a", "fl-b"}, terminated)
	assert.Equal(t, []string{"fl-a"}, res.Terminated)
	assert.Equal(t, map[string]string{"fl-b": "fleet fl-b receives traffic"}, res.Failed)
	assert.Contains(t, res.Summary, "terminated 1 leaked fleets [fl-a]; 1 not terminated (fl-b: fleet fl-b receives traffic)")
}
