package app

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/pipelines"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/spec"
)

// With a real worker, catalog, local provider and router: an environment's
// policy refuses, in the rollout's resolve step and before anything is
// provisioned (no fleet, the route unchanged), an image with a denied package,
// an image without an SBOM, one older than the maximum age and an imported one
// without signed provenance, each with the rule and the image named; an image
// that complies rolls out.
func TestPolicyRefusesBeforeProvisioning(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()
	cat := e.deps.Catalog
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	live, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	refused := func(p contract.Policy, imageID string, want ...string) {
		t.Helper()
		p.Environment = "test"
		_, err := cat.SetPolicy(ctx, p)
		require.NoError(t, err)
		_, err = e.rollout(e.spec(imageID))
		require.Error(t, err, "policy %+v refuses image %s", p, imageID)
		for _, w := range want {
			assert.Contains(t, err.Error(), w)
		}
		byFleet, routers := e.instances()
		assert.Equal(t, map[string]int{live.FleetID: 3}, byFleet, "nothing was provisioned")
		assert.Equal(t, 1, routers)
		assert.Equal(t, "hello from v1", e.get(), "the route is unchanged")
	}

	// The example's binary is module github.com/imago/imago, built (devel).
	refused(contract.Policy{RequireSBOM: true, DenyPackages: []string{"github.com/imago/imago"}}, v2,
		"policy of test#1 refuses image "+v2+": --deny-package github.com/imago/imago: the image has github.com/imago/imago (devel)",
		"imago policy show test")

	cloud, err := cat.Publish(ctx, contract.Image{ID: "img-cloud0000001", Service: "hello", Builder: "amazon-ebs", Artifacts: map[string]string{"eu-west-1": "ami-0123"}})
	require.NoError(t, err)
	refused(contract.Policy{RequireSBOM: true}, cloud.ID,
		"policy of test#2 refuses image img-cloud0000001: --require-sbom: image img-cloud0000001 has no SBOM: it has no local archive (builder amazon-ebs)")

	archive, err := image.Pack(filepath.Join(helloBuilds, "v2slow"))
	require.NoError(t, err)
	created := time.Now().Add(-200 * 24 * time.Hour).UTC()
	old, err := cat.PublishArchive(ctx, archive, contract.Image{Service: "hello", Entrypoint: []string{"./hello"}, Builder: "import", Created: created})
	require.NoError(t, err)
	refused(contract.Policy{MaxAge: contract.Duration(90 * 24 * time.Hour)}, old.ID,
		"policy of test#3 refuses image "+old.ID+": --max-age 90d: image "+old.ID+" was created "+created.Format(time.RFC3339)+", 200 days ago")

	refused(contract.Policy{RequireProvenance: true}, v2,
		"policy of test#4 refuses image "+v2+": --require-provenance: image "+v2+" has no provenance: only bakes write it (builder import)")

	_, err = cat.SetPolicy(ctx, contract.Policy{Environment: "test", RequireSBOM: true, MaxAge: contract.Duration(90 * 24 * time.Hour),
		DenyPackages: []string{"golang.org/x/net@<v0.23.0", "github.com/imago/imago@v1.0.0"}})
	require.NoError(t, err)
	_, err = e.rollout(e.spec(v2))
	require.NoError(t, err, "an image the policy accepts rolls out")
	assert.Equal(t, "hello from v2", e.get())
}

// A pipeline's stages are rollouts, so each honours its environment's policy:
// staging (no policy) goes live, prod's policy refuses the image before prod
// provisions anything, and the pipeline fails saying so.
func TestPipelineHonoursThePolicyOfEachStage(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v2 := e.importImage("v2")
	_, err := e.deps.Catalog.SetPolicy(ctx, contract.Policy{Environment: "prod", DenyPackages: []string{"github.com/imago/imago"}})
	require.NoError(t, err)
	staging, prod := e.stageSpec("staging", false), e.stageSpec("prod", false)
	p := spec.Pipeline{Pipeline: contract.Pipeline{Name: "hello", Image: &contract.ImageRef{ID: v2}, Stages: []contract.Stage{staging, prod}}}
	run, err := pipelines.Start(ctx, e.client, p, false, "integration-test")
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.Error(t, err, "prod's policy fails the pipeline")
	last, lerr := pipelines.Latest(ctx, e.client, "hello")
	require.NoError(t, lerr)
	assert.Contains(t, err.Error()+" "+fmt.Sprint(last.Progress), "policy of prod#1 refuses image "+v2+": --deny-package github.com/imago/imago")
	assert.Equal(t, v2, e.live("staging"))
	_, err = e.deps.Catalog.Live(ctx, "hello", "prod")
	assert.Error(t, err, "nothing went live in prod")
	fleets, err := e.deps.Provider.ListFleets(ctx, provider.Filter{})
	require.NoError(t, err)
	for _, f := range fleets {
		assert.NotEqual(t, "prod", f.Environment, "prod provisioned nothing: %+v", f)
	}
}
