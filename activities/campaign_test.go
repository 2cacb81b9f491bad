package activities

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

func TestCampaignSpecIsTheLastSpecWithTheImageAndOverride(t *testing.T) {
	last := spec.Rollout{Service: "api", Environment: "prod", Image: contract.ImageRef{ID: "img-000000000001"},
		Fleet: spec.Fleet{Size: 3}, Listen: "127.0.0.1:9080", Checks: []contract.Check{{Path: "/", ExpectBody: "ok"}}}
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
