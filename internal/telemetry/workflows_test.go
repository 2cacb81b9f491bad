package telemetry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/telemetry"
	"github.com/imago/imago/workflows"
)

// The outcomes a real run rarely reaches in a test (cached bakes, aborted and
// rolled-back rollouts), through the workflow test environment with mocked
// activities, the metrics interceptor and the real Prometheus endpoint. (The test
// environment's metrics carry no namespace or workflow_type tags; a real worker's
// do, see TestARealRolloutIsObservable.)

func metricsEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, string) {
	noOTLPEnv(t)
	tel, err := telemetry.Start(context.Background(), telemetry.Options{MetricsListen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { tel.Close(context.Background()) })
	var s testsuite.WorkflowTestSuite
	s.SetMetricsHandler(tel.MetricsHandler())
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{telemetry.WorkflowMetrics()}})
	env.RegisterActivity(&activities.Activities{})
	return env, tel.MetricsAddr()
}

func TestACachedBakeCountsAsCached(t *testing.T) {
	env, addr := metricsEnv(t)
	var a *activities.Activities
	env.OnActivity(a.BakeDigest, mock.Anything, mock.Anything).Return(contract.BakeDigestResult{InputDigest: "sha256:abc"}, nil)
	env.OnActivity(a.FindCached, mock.Anything, mock.Anything).Return(contract.FindCachedResult{Found: true, Image: contract.Image{ID: "img-cached00000"}}, nil)
	env.OnActivity(a.MoveChannel, mock.Anything, mock.Anything).Return(contract.ChannelEntry{}, nil)

	env.ExecuteWorkflow(workflows.Bake, contract.BakeInput{Spec: contract.Bake{Service: "hello", Builder: contract.BuilderLocal, Channel: "latest"}})

	require.NoError(t, env.GetWorkflowError())
	m := scrape(t, addr)
	require.Equal(t, 1.0, value(t, m, "imago_bakes_total", map[string]string{"service": "hello", "outcome": "cached"}))
	require.Equal(t, uint64(1), histogram(t, m, "imago_phase_duration_seconds", map[string]string{"phase": "digest"}).GetSampleCount())
}

// rolloutMocks makes every activity of a rollout succeed; analysis fails.
func rolloutMocks(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.OnActivity(a.CheckSpec, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.ResolveImage, mock.Anything, mock.Anything).Return(contract.ResolveImageResult{ImageID: "img-000000000002", Service: "hello"}, nil)
	env.OnActivity(a.ReadRoute, mock.Anything, mock.Anything).Return(contract.Route{Backends: []contract.Backend{{FleetID: "fl-old", Weight: 100, Targets: []string{"127.0.0.1:2000"}}}}, nil)
	env.OnActivity(a.Provision, mock.Anything, mock.Anything).Return(contract.Fleet{ID: "fl-new", Instances: []contract.Instance{{ID: "fl-new-0", Address: "127.0.0.1:3000"}}}, nil)
	env.OnActivity(a.WaitHealthy, mock.Anything, mock.Anything).Return(contract.WaitHealthyResult{Healthy: 1}, nil)
	env.OnActivity(a.RunChecks, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.SetRoute, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.RunAnalysis, mock.Anything, mock.Anything).Return(contract.AnalysisResult{Phase: "Failed", Message: "errorRate 0.3 > 0.05"}, nil).Maybe()
	env.OnActivity(a.Terminate, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.TerminateByToken, mock.Anything, mock.Anything).Return([]string{"fl-new"}, nil).Maybe()
	env.OnActivity(a.RecordDeployment, mock.Anything, mock.Anything).Return(contract.Deployment{}, nil)
}

func rolloutSpec(t *testing.T, mutate func(*spec.Rollout)) spec.Rollout {
	r := spec.Rollout{Rollout: contract.Rollout{Service: "hello", Environment: "prod", Image: contract.ImageRef{ID: "img-000000000002"}, Listen: "127.0.0.1:9080"}}
	mutate(&r)
	require.NoError(t, r.Normalize())
	return r
}

func TestRolloutOutcomesAbortedAndRolledBack(t *testing.T) {
	for _, tc := range []struct {
		outcome string
		spec    func(*spec.Rollout)
		phases  []string // phases that were timed
	}{
		{"aborted", func(r *spec.Rollout) {
			r.Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(time.Minute)}
		},
			[]string{"resolving", "provisioning", "waiting-healthy", "awaiting-approval"}},
		{"rolled_back", func(r *spec.Rollout) {
			ten := 10
			r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: &ten}, {Analysis: "errors"}}}
			max := 0.05
			r.Analyses = map[string]contract.Analysis{"errors": {Provider: "router", Metric: "errorRate", Max: &max, Interval: contract.Duration(time.Second), Count: 1}}
		}, []string{"canary", "analyzing", "rolling-back"}},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			env, addr := metricsEnv(t)
			rolloutMocks(env)

			env.ExecuteWorkflow(workflows.Rollout, contract.RolloutInput{Spec: rolloutSpec(t, tc.spec).Rollout})

			require.Error(t, env.GetWorkflowError())
			m := scrape(t, addr)
			require.Equal(t, 1.0, value(t, m, "imago_rollouts_total", map[string]string{"service": "hello", "environment": "prod", "outcome": tc.outcome}))
			require.Len(t, m["imago_rollouts_total"].GetMetric(), 1, "one rollout, one outcome")
			for _, p := range tc.phases {
				h := histogram(t, m, "imago_phase_duration_seconds", map[string]string{"phase": p})
				require.Equal(t, uint64(1), h.GetSampleCount(), "phase %s", p)
			}
			if tc.outcome == "aborted" {
				h := histogram(t, m, "imago_phase_duration_seconds", map[string]string{"phase": "awaiting-approval"})
				require.InDelta(t, time.Minute.Seconds(), h.GetSampleSum(), 1, "the gate waited its timeout, in workflow time")
			}
			for _, l := range m["imago_rollouts_total"].GetMetric()[0].GetLabel() {
				require.NotContains(t, []string{"activity_type", "worker_type", "client_name"}, l.GetName(), "SDK-only tags stay off imago's metrics: %v", fmt.Sprint(l))
			}
		})
	}
}

// A drift check's result sets imago_drift_instances per service and environment
// it compared (a skipped one keeps its last value).
func TestADriftCheckSetsTheDriftGauge(t *testing.T) {
	env, addr := metricsEnv(t)
	var a *activities.Activities
	env.OnActivity(a.DetectDrift, mock.Anything, mock.Anything).Return(contract.DriftReport{Targets: []contract.DriftTarget{
		{Service: "hello", Environment: "prod", Instances: 2, Items: []contract.DriftItem{{Kind: contract.DriftMissingInstance}, {Kind: contract.DriftMissingInstance}}},
		{Service: "hello", Environment: "staging"},
		{Service: "web", Environment: "prod", Skipped: "a rollout of it is running"},
	}, Instances: 2}, nil)

	env.ExecuteWorkflow(workflows.Drift, contract.DriftInput{})

	require.NoError(t, env.GetWorkflowError())
	m := scrape(t, addr)
	require.Equal(t, 2.0, value(t, m, "imago_drift_instances", map[string]string{"service": "hello", "environment": "prod"}))
	require.Equal(t, 0.0, value(t, m, "imago_drift_instances", map[string]string{"service": "hello", "environment": "staging"}))
	for _, metric := range m["imago_drift_instances"].GetMetric() {
		for _, l := range metric.GetLabel() {
			require.NotEqual(t, "web", l.GetValue(), "a skipped target sets no value")
		}
	}
}
