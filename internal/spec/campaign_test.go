package spec

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

func TestExampleCampaignLoads(t *testing.T) {
	c, err := LoadCampaign("../../examples/campaign/campaign.yaml")
	require.NoError(t, err)
	assert.Equal(t, "stable-2026-12", c.Name)
	assert.Equal(t, []string{"hello", "hello-api", "hello-web"}, c.Services)
	require.Len(t, c.Rings, 2)
	assert.Equal(t, 2, c.Rings[0].Parallel)
	assert.Equal(t, contract.Duration(DefaultApprovalTimeout), c.Rings[0].Approval.Timeout, "the default timeout")
	assert.True(t, c.Rings[1].Approval.Required)
	assert.Equal(t, contract.Duration(time.Hour), c.Rings[1].BakeTime)
	require.NotNil(t, c.Override)
	require.NotNil(t, c.Override.Soak)
	assert.Equal(t, 10*time.Minute, c.Override.Soak.D())
}

func TestCampaignReportsEveryProblemWithItsPathAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`name: Bad_Name
services: [api, api, Web]
image: {}
rings:
  - {environments: [staging], parallel: -1}
  - {environments: [staging, prod], regions: [EU]}
  - {environments: []}
errorBudget: {maxFailed: -1, maxFailedPercent: 150}
override: {fleet: {size: 0}, listen: ":80"}
`), 0o600))
	_, err := LoadCampaign(path)
	require.Error(t, err)
	require.True(t, IsInvalid(err), "%v", err)
	for _, want := range []string{
		`name: line 1: "Bad_Name" must be`,
		`services[1]: line 2: "api" is already services[0]`,
		`services[2]: line 2: "Web" is not a service name`,
		`image.channel: line 3: is required`,
		`rings[0].parallel: line 5: must not be negative`,
		`rings[1].regions[0]: line 6: "EU" is not a region`,
		`rings[2].environments: line 7: list at least one environment`,
		`errorBudget.maxFailed: line 8: must not be negative`,
		`errorBudget.maxFailedPercent: line 8: 150 is not a percent`,
		`override.listen: line 9: unknown field`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestApplyOverrideReplacesWholeFields(t *testing.T) {
	r := Rollout{Rollout: contract.Rollout{Service: "api", Environment: "prod", Fleet: contract.FleetSpec{Size: 2}, Listen: "127.0.0.1:9080",
		Checks: []contract.Check{{Path: "/"}}, Strategy: contract.Strategy{Type: contract.Canary}}}
	size := contract.Duration(time.Minute)
	ApplyOverride(&r, &contract.CampaignOverride{Fleet: &contract.CampaignFleet{Size: 5}, Soak: &size,
		Strategy: &contract.Strategy{Type: contract.BlueGreen}})
	assert.Equal(t, 5, r.Fleet.Size)
	assert.Equal(t, contract.BlueGreen, r.Strategy.Type)
	assert.Equal(t, []contract.Check{{Path: "/"}}, r.Checks, "fields the override leaves out stay")
	assert.Equal(t, time.Minute, r.SoakDuration())
}

func TestCampaignSelectsByBaseOrListsServicesNotBoth(t *testing.T) {
	c, err := ParseCampaign([]byte("name: base\nselect: {base: {service: base-os, channel: stable}}\nimage: {channel: stable}\nrings: [{environments: [prod]}]\n"))
	require.NoError(t, err)
	require.NoError(t, c.Normalize())
	assert.Equal(t, "base-os", c.Select.Base.Service)

	c, _ = ParseCampaign([]byte("name: base\nservices: [api]\nselect: {base: {service: base-os, channel: Stable}}\nimage: {channel: stable}\nrings: [{environments: [prod]}]\n"))
	err = c.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "select: line 3: set services or select, not both")
	c, _ = ParseCampaign([]byte("name: base\nselect: {base: {service: base-os, channel: Stable}}\nimage: {channel: stable}\nrings: [{environments: [prod]}]\n"))
	err = c.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `select.base.channel: line 2: "Stable" is not a channel name`)
}

func TestCampaignSelectsByLabels(t *testing.T) {
	c, err := ParseCampaign([]byte("name: pay\nselect: {labels: {team: payments}}\nimage: {channel: stable}\nrings: [{environments: [prod]}]\n"))
	require.NoError(t, err)
	require.NoError(t, c.Normalize())
	assert.Equal(t, map[string]string{"team": "payments"}, c.Select.Labels)
	assert.Equal(t, "services labeled {team: payments}", c.Select.String())

	c, _ = ParseCampaign([]byte("name: pay\nselect:\n  labels: {team: \"\"}\nimage: {channel: stable}\nrings: [{environments: [prod]}]\n"))
	err = c.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `select.labels: line 3: label "team": "": keys and values must not be empty`)

	c, _ = ParseCampaign([]byte("name: pay\nselect: {}\nimage: {channel: stable}\nrings: [{environments: [prod]}]\n"))
	err = c.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "select: line 2: needs base")
}
