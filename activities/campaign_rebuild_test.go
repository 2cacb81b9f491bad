package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// A rebuild's plan: each service built on base-os/stable gets the bake spec
// that built its image (kept at publish), on base-os/stable when it was built
// on the base directly, at the level of that image below the base; a
// grandchild pinned to its parent's image ID follows the parent's channel; a
// service whose image has no bake spec cannot be rebuilt, saying why.
func TestCampaignPlanOfARebuildHasEachServicesBakeSpecOnTheBase(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "mem://")
	require.NoError(t, err)
	defer cat.Close()
	a := &Activities{Catalog: cat}
	publish := func(id, svc, parent string, b *contract.Bake) {
		img := contract.Image{ID: id, Service: svc, Parent: parent, Builder: "test"}
		var in contract.PublishImageInput
		in.Image, in.Spec = img, b
		_, err := a.PublishImage(ctx, in)
		require.NoError(t, err)
	}
	publish("img-base1", "base-os", "", nil)
	_, err = cat.MoveChannel(ctx, "base-os", "stable", "img-base1", catalog.MoveOptions{By: "test"})
	require.NoError(t, err)
	publish("img-api1", "api", "img-base1", &contract.Bake{Service: "api", Channel: "stable", Force: true, Base: &contract.ImageRef{ID: "img-base1"}})
	publish("img-mid", "runtime", "img-base1", &contract.Bake{Service: "runtime", Channel: "lts", Base: &contract.ImageRef{Service: "base-os", Channel: "latest"}})
	publish("img-web1", "web", "img-mid", &contract.Bake{Service: "web", Channel: "stable", Base: &contract.ImageRef{ID: "img-mid"}})
	publish("img-old1", "legacy", "img-base1", nil)

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.CampaignPlan, contract.CampaignPlanInput{Rebuild: true,
		Select: &contract.CampaignSelect{Base: &contract.ImageRef{Service: "base-os", Channel: "stable"}}, Environments: []string{"prod"}})
	require.NoError(t, err)
	var out contract.CampaignPlanResult
	require.NoError(t, val.Get(&out))
	assert.Empty(t, out.Images, "a rebuild's images are its bakes'")
	require.Len(t, out.Bakes, 4)
	byService := map[string]contract.CampaignBakePlan{}
	var order []string
	for _, b := range out.Bakes {
		byService[b.Service] = b
		order = append(order, b.Service)
	}
	assert.Equal(t, []string{"legacy", "api", "runtime", "web"}, order, "level order")
	assert.Contains(t, byService["legacy"].Error, "no image of legacy built on base-os/stable has a bake spec")
	assert.Nil(t, byService["legacy"].Spec)
	onBase := &contract.ImageRef{Service: "base-os", Channel: "stable"}
	assert.Equal(t, 1, byService["api"].Level)
	assert.Equal(t, onBase, byService["api"].Spec.Base)
	assert.False(t, byService["api"].Spec.Force, "a rebuild is cache aware")
	assert.Equal(t, onBase, byService["runtime"].Spec.Base)
	assert.Equal(t, 2, byService["web"].Level)
	assert.Equal(t, &contract.ImageRef{Service: "runtime", Channel: "lts"}, byService["web"].Spec.Base)
}
