package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

// The ImageLifecycle sweep with mocked activities: a dry run changes nothing,
// apply carries out each decision and reports one the activity refuses. The
// decisions themselves are tested on a real catalog (catalog, activities).
func TestImageLifecycleWithMockedActivities(t *testing.T) {
	var a *activities.Activities
	plan := []contract.LifecycleDecision{
		{ImageID: "img-live", Action: contract.LifecycleKeep, Why: "live in prod"},
		{ImageID: "img-a", Action: contract.LifecycleDeprecate, Why: "older than 720h0m0s"},
		{ImageID: "img-b", Action: contract.LifecycleDelete, Why: "older than 2160h0m0s"},
		{ImageID: "img-c", Action: contract.LifecycleDelete, Why: "older than 2160h0m0s"},
	}
	run := func(in contract.LifecycleInput) (contract.LifecycleResult, []string) {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterActivity(&activities.Activities{})
		env.OnActivity(a.PlanLifecycle, mock.Anything).Return(plan, nil)
		var applied []string
		env.OnActivity(a.ApplyLifecycle, mock.Anything, mock.Anything).Return(func(_ context.Context, in contract.ApplyLifecycleInput) error {
			applied = append(applied, in.Decision.Action+" "+in.Decision.ImageID)
			if in.Decision.ImageID == "img-c" {
				return temporal.NewNonRetryableApplicationError("image img-c is no longer to delete: keep now (on channel stable)", contract.ErrProvider, nil)
			}
			return nil
		}).Maybe()
		env.ExecuteWorkflow(ImageLifecycle, in)
		require.NoError(t, env.GetWorkflowError())
		var res contract.LifecycleResult
		require.NoError(t, env.GetWorkflowResult(&res))
		return res, applied
	}

	res, applied := run(contract.LifecycleInput{})
	assert.True(t, res.DryRun)
	assert.Empty(t, applied, "a dry run changes nothing")
	assert.Equal(t, plan, res.Decisions)
	assert.Equal(t, "dry run: would deprecate 1 [img-a], delete 2 [img-b img-c]; kept 1", res.Summary)

	res, applied = run(contract.LifecycleInput{Apply: true})
	assert.Equal(t, []string{"deprecate img-a", "delete img-b", "delete img-c"}, applied)
	assert.Equal(t, []string{"img-a"}, res.Deprecated)
	assert.Equal(t, []string{"img-b"}, res.Deleted)
	assert.Equal(t, "deprecated 1 [img-a], deleted 1 [img-b]; kept 1; 1 not done (img-c: image img-c is no longer to delete: keep now (on channel stable))", res.Summary)
}
