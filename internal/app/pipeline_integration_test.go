package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/pipelines"
	"github.com/imago/imago/internal/schedules"
	"github.com/imago/imago/internal/spec"
)

// copiedHelloBake is the hello example's bake with its source copied to a temp
// dir, so a test can change the bake's inputs; it returns the bake and the copy
// of main.go.
func copiedHelloBake(t *testing.T, service, channel string) (spec.Bake, string) {
	b := helloBake(t)
	src, err := os.ReadFile(b.Files[0])
	require.NoError(t, err)
	main := filepath.Join(t.TempDir(), "main.go")
	require.NoError(t, os.WriteFile(main, src, 0o644))
	b.Files = []string{main}
	b.Service, b.Channel = service, channel
	b.Test.Health.Interval = contract.Duration(100 * time.Millisecond)
	require.NoError(t, b.Normalize())
	return b, main
}

// bakePatched patches main.go of bake b (main) and bakes it again: a new
// image, not prev, on its channel.
func (e *env) bakePatched(b spec.Bake, main string, prev contract.BakeResult) contract.BakeResult {
	src, err := os.ReadFile(main)
	require.NoError(e.t, err)
	require.NoError(e.t, os.WriteFile(main, append(src, []byte("\n// CVE fix\n")...), 0o644))
	res, err := e.bake(b)
	require.NoError(e.t, err)
	require.NotEqual(e.t, prev.ImageID, res.ImageID)
	return res
}

// stageSpec is a rollout stage of hello in env, behind its own router.
func (e *env) stageSpec(env string, approval bool) contract.Stage {
	soak := contract.Duration(0)
	r := contract.Rollout{
		Service: "hello", Environment: env, Provider: "local", Fleet: contract.FleetSpec{Size: 2}, Listen: freeAddr(e.t),
		Health: contract.Health{Path: "/healthz", Interval: contract.Duration(100 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
		Checks: []contract.Check{{Path: "/", ExpectBody: "v2"}}, Strategy: contract.Strategy{Type: contract.BlueGreen}, Soak: &soak,
	}
	st := contract.Stage{RolloutFile: "rollout-" + env + ".yaml", Rollout: r}
	if approval {
		st.Approval = contract.ApprovalSpec{Required: true, Timeout: contract.Duration(10 * time.Minute)}
	}
	return st
}

// waitPipeline polls the latest run of pipeline name until ok holds (3 minutes at most).
func (e *env) waitPipeline(name, what string, ok func(pipelines.Run) bool) pipelines.Run {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last pipelines.Run
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = pipelines.Latest(context.Background(), e.client, name)
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("pipeline %s: %s did not happen within 3m; last: %+v (error %v)", name, what, last, lastErr)
	return last
}

// waitScheduleOutcome polls the schedule until one of its recent runs ended with
// an outcome that has prefix, and returns that run.
func (e *env) waitScheduleOutcome(name, prefix string) schedules.Action {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var s schedules.Schedule
	var err error
	for time.Now().Before(deadline) {
		s, err = schedules.Describe(context.Background(), e.client, name)
		require.NoError(e.t, err)
		for _, a := range s.Recent {
			if strings.HasPrefix(a.Outcome, prefix) {
				return a
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("schedule %s: no run ended with %q within 3m; recent: %+v", name, prefix, s.Recent)
	return schedules.Action{}
}

func (e *env) getFrom(addr string) string {
	saved := e.listen
	defer func() { e.listen = saved }()
	e.listen = addr
	return e.get()
}

func (e *env) live(env string) string {
	d, err := e.deps.Catalog.Live(context.Background(), "hello", env)
	require.NoError(e.t, err)
	return d.ImageID
}

// pipelineRunEnd waits for run (one run of a pipeline) to end and returns it
// with its final progress.
func (e *env) pipelineRunEnd(run pipelines.Run) pipelines.Run {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(e.t, e.client.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil), "pipeline run %s", run.WorkflowID)
	v, err := e.client.QueryWorkflow(ctx, run.WorkflowID, run.RunID, contract.QueryProgress)
	require.NoError(e.t, err)
	require.NoError(e.t, v.Get(&run.Progress))
	return run
}

func (e *env) approvePipeline(name string) {
	require.NoError(e.t, pipelines.Decide(context.Background(), e.client, name, contract.UpdateApprove, "ana", "staging looks good"))
}

// The "done when": a schedule rebuilds the example image only when its
// inputs change and rolls it through staging and prod, prod behind an approval.
func TestScheduledPipelineRebuildsOnlyWhenInputsChange(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	b, mainGo := copiedHelloBake(t, "hello", "latest")
	staging, prod := e.stageSpec("staging", false), e.stageSpec("prod", true)
	p := spec.Pipeline{Pipeline: contract.Pipeline{Name: "hello", BakeFile: "bake.yaml", Bake: &b.Bake, Stages: []contract.Stage{staging, prod}}}
	require.NoError(t, p.Validate())

	require.NoError(t, schedules.Create(ctx, e.client, schedules.CreateOptions{
		Name: "hello", Pipeline: p, Every: 2 * time.Second, Overlap: "skip", StartedBy: "integration-test",
	}))
	t.Cleanup(func() { _ = schedules.Delete(context.Background(), e.client, "hello") })

	// Tick 1 builds and rolls out to staging; prod waits for approval.
	first := e.waitPipeline("hello", "prod gate open", func(r pipelines.Run) bool { return r.Progress.Gate == "prod" })
	img1 := first.Progress.ImageID
	require.NotEmpty(t, img1)
	assert.Equal(t, contract.StageSucceeded, first.Progress.Stages[0].State)
	assert.Equal(t, "hello from v2", e.getFrom(staging.Rollout.Listen))
	assert.Equal(t, img1, e.live("staging"))
	byFleet, _ := e.instances()
	assert.Len(t, byFleet, 1, "only staging's fleet runs while prod waits: %v", byFleet)

	e.approvePipeline("hello")
	// This run's end, not the latest run's: the next tick (every 2 s) may start
	// a run that ends at once, skipped, before a poll of the latest sees this one.
	done := e.pipelineRunEnd(first)
	assert.Equal(t, contract.PhaseSucceeded, done.Progress.Phase)
	assert.Equal(t, "hello from v2", e.getFrom(prod.Rollout.Listen))
	assert.Equal(t, img1, e.live("prod"))
	require.NotNil(t, done.Progress.Stages[1].Approval)
	assert.Equal(t, "ana", done.Progress.Stages[1].Approval.By)

	// Later ticks find nothing changed: skipped, with the reason in the schedule's history.
	skipped := e.waitScheduleOutcome("hello", "skipped: inputs unchanged")
	assert.Equal(t, "Succeeded", skipped.Status)
	assert.Contains(t, skipped.Outcome, img1+" is already live in staging, prod")
	imgs, err := e.deps.Catalog.List(ctx, "hello")
	require.NoError(t, err)
	assert.Len(t, imgs, 1, "an unchanged tick builds nothing")

	// A changed input file: the next tick builds a new image and rolls it through again.
	src, err := os.ReadFile(mainGo)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(mainGo, append(src, []byte("\n// a patched dependency\n")...), 0o644))
	second := e.waitPipeline("hello", "a new image at the prod gate", func(r pipelines.Run) bool {
		return r.Progress.Gate == "prod" && r.Progress.ImageID != img1
	})
	img2 := second.Progress.ImageID
	assert.Equal(t, img2, e.live("staging"))
	assert.Equal(t, img1, e.live("prod"), "prod keeps the old image until approved")
	e.approvePipeline("hello")
	e.waitPipeline("hello", "second run succeeded", func(r pipelines.Run) bool {
		return r.Progress.ImageID == img2 && r.Status == "Succeeded"
	})
	assert.Equal(t, img2, e.live("prod"))
	imgs, err = e.deps.Catalog.List(ctx, "hello")
	require.NoError(t, err)
	assert.Len(t, imgs, 2)
	byFleet, _ = e.instances()
	assert.Len(t, byFleet, 2, "one fleet per environment, old fleets decommissioned: %v", byFleet)
}

// A pipeline whose staging rollout fails stops there: prod is never touched.
func TestPipelineStopsAtAFailedStagingRollout(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	b, _ := copiedHelloBake(t, "hello", "latest")
	staging, prod := e.stageSpec("staging", false), e.stageSpec("prod", false)
	staging.Rollout.Checks = []contract.Check{{Path: "/", ExpectBody: "v3"}} // the image serves v2: the smoke check fails
	p := spec.Pipeline{Pipeline: contract.Pipeline{Name: "hello", BakeFile: "bake.yaml", Bake: &b.Bake, Stages: []contract.Stage{staging, prod}}}
	run, err := pipelines.Start(ctx, e.client, p, false, "integration-test")
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.Error(t, err)
	e.recordHistory("pipeline-staging-fails", run.GetID(), run.GetRunID())
	assert.Contains(t, err.Error(), "stage staging failed")
	assert.Contains(t, err.Error(), "prod not touched")

	r, err := pipelines.Latest(ctx, e.client, "hello")
	require.NoError(t, err)
	assert.Equal(t, contract.StageFailed, r.Progress.Stages[0].State)
	assert.Equal(t, contract.StageNotStarted, r.Progress.Stages[1].State)
	_, err = e.client.DescribeWorkflowExecution(ctx, contract.RolloutWorkflowID("hello", "prod"), "")
	assert.Error(t, err, "no rollout to prod was ever started")
	byFleet, routers := e.instances()
	assert.Empty(t, byFleet, "the failed staging fleet is torn down")
	assert.LessOrEqual(t, routers, 1, "at most staging's router; none for prod")
}

// When a base image's channel moves, the pipelines that opted in run and rebuild
// on the new base; the image built on the old base is marked outdated.
func TestBaseChannelMoveStartsOptedInPipelines(t *testing.T) {
	e := newEnv(t)
	e.deps.Activities.Temporal = e.client
	e.startWorker()
	ctx := context.Background()

	base, baseMain := copiedHelloBake(t, "base", "stable")
	app, _ := copiedHelloBake(t, "hello", "latest")
	app.Base = &contract.ImageRef{Service: "base", Channel: "stable"}
	// The image records its base, as a real one carries the base's layers.
	app.Provision = append(app.Provision, contract.ShellSteps(`echo "$IMAGO_BASE_IMAGE" > base-image`)...)
	app.Include = append(app.Include, "base-image")
	p := spec.Pipeline{Pipeline: contract.Pipeline{Name: "hello", BakeFile: "bake.yaml", Bake: &app.Bake, OnBaseChange: true}}
	require.NoError(t, p.Validate())
	require.NoError(t, schedules.Create(ctx, e.client, schedules.CreateOptions{
		Name: "hello", Pipeline: p, Cron: "0 3 * * *", StartedBy: "integration-test", // no tick during the test
	}))
	t.Cleanup(func() { _ = schedules.Delete(context.Background(), e.client, "hello") })
	s, err := schedules.Describe(ctx, e.client, "hello")
	require.NoError(t, err)
	assert.Equal(t, "base/stable", s.WatchBase)

	// The base's first bake moves base/stable: the hello pipeline runs and builds on it.
	b1, err := e.bake(base)
	require.NoError(t, err)
	first := e.waitPipeline("hello", "built on base 1", func(r pipelines.Run) bool { return r.Status == "Succeeded" })
	require.Equal(t, contract.PhaseSucceeded, first.Progress.Phase, "%+v", first.Progress)
	img1, err := e.deps.Catalog.Get(ctx, first.Progress.ImageID)
	require.NoError(t, err)
	assert.Equal(t, b1.ImageID, img1.Parent)

	// A patched base: its channel moves again, and hello is rebuilt on it.
	b2 := e.bakePatched(base, baseMain, b1)
	second := e.waitPipeline("hello", "built on base 2", func(r pipelines.Run) bool {
		return r.Status == "Succeeded" && r.Progress.ImageID != img1.ID
	})
	img2, err := e.deps.Catalog.Get(ctx, second.Progress.ImageID)
	require.NoError(t, err)
	assert.Equal(t, b2.ImageID, img2.Parent)
	img1, err = e.deps.Catalog.Get(ctx, img1.ID)
	require.NoError(t, err)
	assert.NotNil(t, img1.Outdated, "the image built on the old base is outdated")
}
