package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
)

// imago campaign start refuses, before contacting anything, rings whose
// regions no environments.yaml declares (none beside the spec, or one that
// lacks the region), naming the field and line; campaign status shows each
// target's region as ENV@REGION.
func TestCampaignStartChecksRegionsAgainstEnvironmentsYAML(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing may be contacted
	t.Setenv("IMAGO_ENVIRONMENTS", "")
	dir := t.TempDir()
	f := filepath.Join(dir, "campaign.yaml")
	require.NoError(t, os.WriteFile(f, []byte("name: base\nservices: [api]\nimage: {channel: stable}\nrings:\n  - {environments: [prod], regions: [eu-west-1, us-east-1]}\n"), 0o600))
	_, code, err := run(t, "campaign", "start", "-f", f)
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), "rings name regions: declare the environments' regions in environments.yaml beside it")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "environments.yaml"), []byte("environments:\n  - {name: prod, regions: [eu-west-1]}\n"), 0o600))
	_, code, err = run(t, "campaign", "start", "-f", f)
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), `rings[0].regions[1]: line 5: no environment of the ring ([prod]) declares region "us-east-1"`)

	var b bytes.Buffer
	writeCampaign(&b, campaigns.Run{WorkflowID: "campaign/base", RunID: "r1", Status: "Running", Progress: contract.CampaignProgress{
		Story: contract.Story{Phase: contract.PhaseRollingOut}, Name: "base", Runs: 1, Budget: 1,
		Rings: []contract.RingStatus{{Environments: []string{"prod"}, State: contract.RingRunning, Targets: []contract.CampaignTarget{
			{Service: "api", Environment: "prod", Region: "eu-west-1", ImageID: "img-1", State: contract.TargetSucceeded}}}}}})
	assert.Contains(t, b.String(), "api  prod@eu-west-1")
}
