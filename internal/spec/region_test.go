package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// TestRolloutTargetRegionAndRole: target.region names a region (a deployment
// of its own: its workflow ID and place name it); target.role is an IAM role
// ARN on aws only, and refused there until the aws driver assumes it; each problem names its field and line.
func TestRolloutTargetRegionAndRole(t *testing.T) {
	base := "service: api\nenvironment: prod\nimage: {id: img-0123456789ab}\nlisten: 127.0.0.1:9080\n"
	r, err := ParseRollout([]byte(base + "target: {region: eu-west-1}\n"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, "eu-west-1", r.Region())
	assert.Equal(t, "prod@eu-west-1", r.Place())
	assert.Equal(t, "rollout/prod@eu-west-1/api", r.WorkflowID())

	// No target: the deployment and its ID are the environment's, as before.
	r, err = ParseRollout([]byte(base))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, "rollout/prod/api", r.WorkflowID())
	assert.Equal(t, "prod", r.Place())

	for _, c := range []struct{ yaml, want string }{
		{"target: {region: EU_West}\n", `target.region: line 5: "EU_West" is not a region`},
		{"target: {}\n", `target: line 5: names nothing`},
		{"target: {region: eu-west-1, role: arn:aws:iam::123456789012:role/deployer}\n", `target.role: line 5: is an AWS account role: the local provider assumes none`},
		{"target: {region: eu-west-1, zone: a}\n", `target.zone: line 5: unknown field`},
	} {
		r, _ := ParseRollout([]byte(base + c.yaml))
		err := r.Normalize()
		require.Error(t, err, c.yaml)
		assert.True(t, IsInvalid(err))
		assert.Contains(t, err.Error(), c.want, c.yaml)
	}

	aws := "service: api\nenvironment: prod\nprovider: aws\nimage: {id: img-0123456789ab}\n"
	r, _ = ParseRollout([]byte(aws + "target: {region: eu-west-1, role: arn:aws:iam::123456789012:role/deployer}\n"))
	assert.ErrorContains(t, r.Normalize(), "target.role: line 5: assuming an account role is not supported yet")
	r, _ = ParseRollout([]byte(aws + "target: {region: us-east-1}\n"))
	assert.ErrorContains(t, r.Normalize(), "target.region: line 5: the aws provider deploys to its worker's region")
	r, _ = ParseRollout([]byte(aws + "target: {role: deployer}\n"))
	err = r.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `target.role: line 5: "deployer" is not an IAM role ARN`)
}

// TestCampaignRingRegions: rings address regions declared in environments.yaml
// beside the campaign; a region no ring environment declares, a malformed
// one, a place already in another ring, and a missing environments file are
// refused with the field and line.
func TestCampaignRingRegions(t *testing.T) {
	t.Setenv(EnvironmentsEnvVar, "")
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	campaign := write("campaign.yaml", `name: regions
services: [api, web]
image: {channel: stable}
rings:
  - {environments: [staging]}
  - {environments: [prod], regions: [eu-west-1]}
  - {environments: [prod], regions: [us-east-1, ap-south-1], parallel: 2}
`)
	_, err := LoadCampaign(campaign)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "declare the environments' regions in environments.yaml")

	write("environments.yaml", "environments:\n  - {name: staging}\n  - {name: prod, regions: [eu-west-1, us-east-1, ap-south-1]}\n")
	c, err := LoadCampaign(campaign)
	require.NoError(t, err)
	assert.Equal(t, []string{"prod@us-east-1", "prod@ap-south-1"}, c.Rings[2].Places("prod"))
	assert.Equal(t, []string{"staging"}, c.Rings[0].Places("staging"))

	// A region prod does not declare.
	write("environments.yaml", "environments:\n  - {name: prod, regions: [eu-west-1, us-east-1]}\n")
	_, err = LoadCampaign(campaign)
	require.Error(t, err)
	assert.True(t, IsInvalid(err), "%v", err)
	assert.Contains(t, err.Error(), `rings[2].regions[1]: line 7: no environment of the ring ([prod]) declares region "ap-south-1"`)

	// $IMAGO_ENVIRONMENTS names another file.
	other := write("other.yaml", "environments:\n  - {name: prod, regions: [eu-west-1, us-east-1, ap-south-1]}\n")
	t.Setenv(EnvironmentsEnvVar, other)
	_, err = LoadCampaign(campaign)
	require.NoError(t, err)

	// Problems of the campaign and of the environments file, with lines.
	bad := write("bad.yaml", `name: regions
services: [api]
image: {channel: stable}
rings:
  - {environments: [prod], regions: [eu-west-1, eu-west-1]}
  - {environments: [prod], regions: [eu-west-1, Mars]}
`)
	_, err = LoadCampaign(bad)
	require.Error(t, err)
	for _, want := range []string{
		`rings[0].regions[1]: line 5: "eu-west-1" is already regions[0]`,
		`rings[1].environments[0]: line 6: prod@eu-west-1 is already in rings[0]`,
		`rings[1].regions[1]: line 6: "Mars" is not a region`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = ParseEnvironments([]byte("environments:\n  - {name: prod, regions: [eu-west-1, eu-west-1]}\n  - {name: prod}\n  - {name: Prod, zones: [a]}\n"))
	require.Error(t, err)
	for _, want := range []string{
		`environments[0].regions[1]: line 2: "eu-west-1" is already regions[0]`,
		`environments[1].name: line 3: "prod" is already environments[0]`,
		`environments[2].name: line 4: "Prod" is not an environment name`,
		`environments[2].zones: line 4: unknown field`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = ParseEnvironments([]byte("environments: []\n"))
	assert.ErrorContains(t, err, "environments: line 1: list at least one environment")
	assert.Equal(t, []string{"eu-west-1"}, contract.Environments{Environments: []contract.EnvironmentDecl{{Name: "prod", Regions: []string{"eu-west-1"}}}}.Regions("prod"))
}

// TestPipelineStagesInTwoRegionsOfOneEnvironment: two regions of prod are two
// stages (two deployments); the same region twice is refused.
func TestPipelineStagesInTwoRegionsOfOneEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600))
	}
	for _, r := range []string{"eu-west-1", "us-east-1"} {
		write(r+".yaml", "service: hello\nenvironment: prod\nlisten: 127.0.0.1:9080\ntarget: {region: "+r+"}\n")
	}
	write("p.yaml", "name: hello\nimage: {channel: stable}\nstages:\n  - rollout: eu-west-1.yaml\n  - rollout: us-east-1.yaml\n")
	p, err := LoadPipeline(filepath.Join(dir, "p.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "prod@us-east-1", p.Stages[1].Rollout.Place())
	write("p.yaml", "name: hello\nimage: {channel: stable}\nstages:\n  - rollout: eu-west-1.yaml\n  - rollout: eu-west-1.yaml\n")
	_, err = LoadPipeline(filepath.Join(dir, "p.yaml"))
	assert.ErrorContains(t, err, `"prod@eu-west-1" is already stage 0`)
}
