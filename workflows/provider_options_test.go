package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
)

// What a provider whose load balancer checks instances and drains them (aws)
// needs from the workflows: the spec's health check in the provision request,
// and a Terminate that may outlast the longest deregistration delay (3600 s)
// while it heartbeats.
func TestProviderGetsTheSpecsHealthCheckAndTimeToDrain(t *testing.T) {
	var a *activities.Activities
	type terminateOptions struct{ startToClose, heartbeat time.Duration }
	checkTerminate := func(t *testing.T, got []terminateOptions) {
		t.Helper()
		require.NotEmpty(t, got, "no Terminate ran")
		for _, o := range got {
			assert.Greater(t, o.startToClose, time.Hour, "Terminate's start-to-close timeout must outlast a 3600 s deregistration delay")
			assert.Greater(t, o.heartbeat, time.Duration(0), "a long Terminate must heartbeat, so a dead worker is noticed")
			assert.LessOrEqual(t, o.heartbeat, 5*time.Minute)
		}
	}
	capture := func(env *testsuite.TestWorkflowEnvironment, into *[]terminateOptions) {
		env.OnActivity(a.Terminate, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ contract.TerminateInput) error {
			info := activity.GetInfo(ctx)
			*into = append(*into, terminateOptions{info.StartToCloseTimeout, info.HeartbeatTimeout})
			return nil
		})
	}

	t.Run("rollout", func(t *testing.T) {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterActivity(&activities.Activities{})
		env.OnActivity(a.CheckSpec, mock.Anything, mock.Anything).Return(nil)
		env.OnActivity(a.ResolveImage, mock.Anything, mock.Anything).Return(
			func(_ context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
				return contract.ResolveImageResult{ImageID: in.Ref.ID, Service: in.Service}, nil
			})
		env.OnActivity(a.ReadRoute, mock.Anything, mock.Anything).Return(oldRoute, nil)
		var health *contract.HealthCheck
		env.OnActivity(a.Provision, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
			health = req.Health
			return newFleet(req), nil
		})
		env.OnActivity(a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{Healthy: 3}, nil)
		env.OnActivity(a.RunChecks, mock.Anything, mock.Anything).Return(nil)
		env.OnActivity(a.SetRoute, mock.Anything, mock.Anything).Return(nil)
		env.OnActivity(a.RecordDeployment, mock.Anything, mock.Anything).Return(contract.Deployment{}, nil).Maybe()
		var got []terminateOptions
		capture(env, &got)

		sp := testSpec()
		sp.Health.Path, sp.Health.Interval = "/ready", 7e9
		env.ExecuteWorkflow(Rollout, contract.RolloutInput{Spec: sp})
		require.NoError(t, env.GetWorkflowError())
		assert.Equal(t, &contract.HealthCheck{Path: "/ready", Interval: 7 * time.Second}, health, "the provision request's health check")
		checkTerminate(t, got)
	})

	t.Run("reaper", func(t *testing.T) {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterActivity(&activities.Activities{})
		env.OnActivity(a.FindOrphans, mock.Anything, mock.Anything).Return(
			contract.FindOrphansResult{Provider: "aws", Orphans: []contract.Orphan{{FleetID: "imago-000000000001"}}}, nil)
		var got []terminateOptions
		capture(env, &got)
		env.ExecuteWorkflow(Reaper, contract.ReaperInput{Apply: true})
		require.NoError(t, env.GetWorkflowError())
		checkTerminate(t, got)
	})
}
