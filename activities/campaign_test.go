package activities

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

func TestCampaignSpecIsTheLastSpecWithTheImageAndOverride(t *testing.T) {
	last := spec.Rollout{Rollout: contract.Rollout{Service: "api", Environment: "prod", Image: contract.ImageRef{ID: "img-000000000001"},
		Fleet: contract.FleetSpec{Size: 3}, Listen: "127.0.0.1:9080", Checks: []contract.Check{{Path: "/", ExpectBody: "ok"}}}}
	require.NoError(t, last.Normalize())
	b, err := json.Marshal(last)
	require.NoError(t, err)
	d := contract.Deployment{Service: "api", Environment: "prod", ImageID: "img-000000000001", Seq: 4, Spec: b}

	r, err := CampaignSpec(d, contract.CampaignRolloutSpecInput{Service: "api", Environment: "prod", ImageID: "img-000000000002",
		Override: &contract.CampaignOverride{Fleet: &contract.CampaignFleet{Size: 5}}})
	require.NoError(t, err)
	assert.Equal(t, "img-000000000002", r.Image.ID)
	assert.Equal(t, 5, r.Fleet.Size)
	assert.Equal(t, "127.0.0.1:9080", r.Listen)
	assert.Equal(t, "ok", r.Checks[0].ExpectBody)

	_, err = CampaignSpec(d, contract.CampaignRolloutSpecInput{Service: "api", Environment: "prod", ImageID: "img-000000000002",
		Override: &contract.CampaignOverride{Fleet: &contract.CampaignFleet{Size: 50000}}})
	assert.ErrorContains(t, err, "with the campaign's override")

	d.Spec = nil
	_, err = CampaignSpec(d, contract.CampaignRolloutSpecInput{Service: "api", Environment: "prod", ImageID: "img-000000000002"})
	assert.ErrorContains(t, err, "the inventory has no rollout spec of api in prod (deployment 4")
}

// select: {base: base-os/stable} picks the services with an image built on
// any image that channel named, through grandchildren too, and each rolls
// what its own channel names; where it is deployed comes from the inventory.
func TestCampaignPlanSelectsTheServicesBuiltOnABase(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "mem://")
	require.NoError(t, err)
	defer cat.Close()
	publish := func(id, svc, parent string) {
		_, err := cat.Publish(ctx, contract.Image{ID: id, Service: svc, Parent: parent, Builder: "test"})
		require.NoError(t, err)
	}
	move := func(svc, ch, id string) {
		_, err := cat.MoveChannel(ctx, svc, ch, id, catalog.MoveOptions{By: "test"})
		require.NoError(t, err)
	}
	publish("img-base1", "base-os", "")
	publish("img-base2", "base-os", "")
	publish("img-other", "other-os", "")
	move("base-os", "stable", "img-base1")
	move("base-os", "stable", "img-base2")
	publish("img-api1", "api", "img-base1")
	publish("img-mid", "runtime", "img-base2")
	publish("img-web1", "web", "img-mid") // a grandchild
	publish("img-batch", "batch", "img-other")
	for svc, id := range map[string]string{"api": "img-api1", "runtime": "img-mid", "web": "img-web1"} {
		move(svc, "stable", id)
	}
	_, err = cat.RecordDeployment(ctx, contract.Deployment{Service: "api", Environment: "prod", ImageID: "img-api1", Outcome: contract.OutcomeSucceeded})
	require.NoError(t, err)

	a := &Activities{Catalog: cat}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.CampaignPlan, contract.CampaignPlanInput{
		Select: &contract.CampaignSelect{Base: &contract.ImageRef{Service: "base-os", Channel: "stable"}},
		Image:  contract.CampaignImage{Channel: "stable"}, Environments: []string{"staging", "prod"}})
	require.NoError(t, err)
	var out contract.CampaignPlanResult
	require.NoError(t, val.Get(&out))
	assert.Equal(t, []string{"api", "runtime", "web"}, out.Services)
	assert.Equal(t, map[string]string{"api": "img-api1", "runtime": "img-mid", "web": "img-web1"}, out.Images)
	assert.Equal(t, map[string][]string{"api": {"prod"}}, out.Deployed)

	_, err = env.ExecuteActivity(a.CampaignPlan, contract.CampaignPlanInput{
		Select: &contract.CampaignSelect{Base: &contract.ImageRef{Service: "nothing", Channel: "stable"}}, Image: contract.CampaignImage{Channel: "stable"}})
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	assert.True(t, app.NonRetryable())
	assert.Contains(t, app.Message(), "select: base channel nothing/stable")
}

// select: {labels: {team: payments}} picks the services whose newest image
// carries every label; with a base too, those built on it as well.
func TestCampaignPlanSelectsTheServicesByLabel(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "mem://")
	require.NoError(t, err)
	defer cat.Close()
	publish := func(id, svc, parent string, labels map[string]string) {
		_, err := cat.Publish(ctx, contract.Image{ID: id, Service: svc, Parent: parent, Builder: "test", Labels: labels})
		require.NoError(t, err)
	}
	payments := map[string]string{"team": "payments", "tier": "1"}
	publish("img-base1", "base-os", "", nil)
	_, err = cat.MoveChannel(ctx, "base-os", "stable", "img-base1", catalog.MoveOptions{By: "test"})
	require.NoError(t, err)
	publish("img-api1", "api", "img-base1", payments)
	publish("img-ledger1", "ledger", "", payments)
	publish("img-web1", "web", "img-base1", map[string]string{"team": "payments"}) // no tier
	publish("img-old1", "moved", "", payments)
	publish("img-old2", "moved", "", map[string]string{"team": "search"}) // its newest image moved team
	for _, svc := range []string{"api", "ledger", "web", "moved"} {
		img, err := cat.List(ctx, svc)
		require.NoError(t, err)
		_, err = cat.MoveChannel(ctx, svc, "stable", img[0].ID, catalog.MoveOptions{By: "test"})
		require.NoError(t, err)
	}

	a := &Activities{Catalog: cat}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	plan := func(sel contract.CampaignSelect) ([]string, error) {
		val, err := env.ExecuteActivity(a.CampaignPlan, contract.CampaignPlanInput{Select: &sel, Image: contract.CampaignImage{Channel: "stable"}})
		if err != nil {
			return nil, err
		}
		var out contract.CampaignPlanResult
		require.NoError(t, val.Get(&out))
		return out.Services, nil
	}
	svcs, err := plan(contract.CampaignSelect{Labels: payments})
	require.NoError(t, err)
	assert.Equal(t, []string{"api", "ledger"}, svcs)
	svcs, err = plan(contract.CampaignSelect{Labels: map[string]string{"team": "payments"}, Base: &contract.ImageRef{Service: "base-os", Channel: "stable"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"api", "web"}, svcs)

	_, err = plan(contract.CampaignSelect{Labels: map[string]string{"team": "nobody"}})
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	assert.True(t, app.NonRetryable())
	assert.Contains(t, app.Message(), "select: no services labeled {team: nobody}")
}
