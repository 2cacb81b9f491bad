package app

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// helloBake loads examples/hello/bake.yaml: the real example, built from source by
// the in-process imago-local Packer builder.
func helloBake(t *testing.T) spec.Bake {
	_, file, _, _ := runtime.Caller(0)
	b, err := spec.LoadBake(filepath.Join(filepath.Dir(file), "..", "..", "examples", "hello", "bake.yaml"))
	require.NoError(t, err)
	require.NoError(t, b.Normalize())
	return b
}

func (e *env) bake(b spec.Bake) (contract.BakeResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := bakes.Start(ctx, e.client, b, "integration-test")
	require.NoError(e.t, err)
	e.last = run
	var res contract.BakeResult
	err = run.Get(ctx, &res)
	return res, err
}

func TestBakeBuildsTestsPublishesThenHitsTheCache(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()

	first, err := e.bake(helloBake(t))
	require.NoError(t, err)
	e.recordHistory("bake-build-test-publish", e.last.GetID(), e.last.GetRunID())
	assert.False(t, first.Cached)
	assert.True(t, first.Tested)
	img, err := e.deps.Catalog.Get(ctx, first.ImageID)
	require.NoError(t, err)
	assert.Equal(t, "imago-local", img.Builder)
	assert.Equal(t, first.InputDigest, img.InputDigest)
	assert.Equal(t, map[string]string{"team": "platform"}, img.Labels)
	latest, err := e.deps.Catalog.Channel(ctx, "hello", "latest")
	require.NoError(t, err)
	assert.Equal(t, first.ImageID, latest.ImageID)
	byFleet, _ := e.instances()
	assert.Empty(t, byFleet, "the image test's instance must be terminated")

	second, err := e.bake(helloBake(t))
	require.NoError(t, err)
	e.recordHistory("bake-cache-hit", e.last.GetID(), e.last.GetRunID())
	assert.True(t, second.Cached)
	assert.Equal(t, first.ImageID, second.ImageID)
	imgs, err := e.deps.Catalog.List(ctx, "hello")
	require.NoError(t, err)
	assert.Len(t, imgs, 1)

	// The baked image serves v2 through a rollout of the latest channel.
	_, err = e.rollout(e.spec("", func(r *spec.Rollout) {
		r.Image = contract.ImageRef{Channel: "latest"}
		r.Checks = []contract.Check{{Path: "/", ExpectBody: "v2"}}
	}))
	require.NoError(t, err)
	assert.Equal(t, "hello from v2", e.get())

	// Once revoked, a rollout refuses it, naming the reason; nothing is provisioned.
	_, err = e.deps.Catalog.Revoke(ctx, first.ImageID, catalog.RevokeOptions{Reason: "CVE-2026-0001 in libfoo", By: "security"})
	require.NoError(t, err)
	before := e.fleetIDs()
	_, err = e.rollout(e.spec(first.ImageID))
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "is revoked: CVE-2026-0001 in libfoo")
	assert.Equal(t, before, e.fleetIDs())
}

func TestBakeFailingItsImageTestPublishesNothing(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	b := helloBake(t)
	b.Test.Checks = []contract.Check{{Path: "/", ExpectStatus: 200, ExpectBody: "v3"}}
	_, err := e.bake(b)
	require.Error(t, err)
	msg := rollouts.Reason(err)
	assert.Contains(t, msg, "bake of hello failed while testing the image")
	assert.Contains(t, msg, `want a body containing "v3", got "hello from v2"`)
	imgs, err := e.deps.Catalog.List(context.Background(), "hello")
	require.NoError(t, err)
	assert.Empty(t, imgs)
	byFleet, _ := e.instances()
	assert.Empty(t, byFleet)
}

// A worker that crashed after its build finished but before it reported leaves a
// finished artifact; the retried build adopts it, and the catalog ends with one image.
func TestBakeAdoptsABuildThatFinishedBeforeACrash(t *testing.T) {
	e := newEnv(t)
	b := helloBake(t)
	var ts testsuite.WorkflowTestSuite
	aenv := ts.NewTestActivityEnvironment()
	aenv.RegisterActivity(e.deps.Activities)
	val, err := aenv.ExecuteActivity(e.deps.Activities.BakeDigest, b)
	require.NoError(t, err)
	var dig contract.BakeDigestResult
	require.NoError(t, val.Get(&dig))
	val, err = aenv.ExecuteActivity(e.deps.Activities.BakeBuild, contract.BakeBuildInput{Spec: b.Bake, InputDigest: dig.InputDigest})
	require.NoError(t, err)
	var crashed contract.BakeBuildResult
	require.NoError(t, val.Get(&crashed))
	archive, err := os.Stat(crashed.ArchivePath)
	require.NoError(t, err)

	e.startWorker()
	res, err := e.bake(b)
	require.NoError(t, err)
	assert.Equal(t, crashed.Image.ID, res.ImageID, "the retried build must adopt the finished artifact")
	after, err := os.Stat(crashed.ArchivePath)
	require.NoError(t, err)
	assert.Equal(t, archive.ModTime(), after.ModTime(), "the artifact must not be rebuilt")
	imgs, err := e.deps.Catalog.List(context.Background(), "hello")
	require.NoError(t, err)
	assert.Len(t, imgs, 1)
}

func TestRolloutWithABakeSpecBakesFirst(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	b := helloBake(t)
	r := e.spec("", func(r *spec.Rollout) {
		r.Image = contract.ImageRef{Bake: "examples/hello/bake.yaml"}
		r.Checks = []contract.Check{{Path: "/", ExpectBody: "v2"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "integration-test", Bake: &b})
	require.NoError(t, err)
	var res contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res))
	e.recordHistory("rollout-with-bake", run.GetID(), run.GetRunID())
	e.recordHistory("bake-child-of-rollout", b.WorkflowID(), "")
	latest, err := e.deps.Catalog.Channel(ctx, "hello", "latest")
	require.NoError(t, err)
	assert.Equal(t, latest.ImageID, res.ImageID)
	assert.Equal(t, "hello from v2", e.get())
}
