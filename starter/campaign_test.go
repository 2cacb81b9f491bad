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

// A bad campaign file is refused before anything is contacted, every problem
// with its field and line, exit 2.
func TestCampaignStartRefusesABadFileWithItsLines(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing may be contacted
	f := filepath.Join(t.TempDir(), "campaign.yaml")
	require.NoError(t, os.WriteFile(f, []byte("name: base\nservices: [api]\nimage: {channel: stable}\nrings:\n  - {environments: [prod], regions: [Eu], parallel: -2}\n"), 0o600))
	_, code, err := run(t, "campaign", "start", "-f", f)
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Equal(t, f+`: invalid spec:
  rings[0].regions[0]: line 5: "Eu" is not a region: 1-40 lowercase letters, digits or '-', e.g. eu-west-1
  rings[0].parallel: line 5: must not be negative`, err.Error())
}

// imago campaign status shows each ring and each of its rollouts.
func TestCampaignStatusShowsRingsAndRollouts(t *testing.T) {
	var b bytes.Buffer
	writeCampaign(&b, campaigns.Run{WorkflowID: "campaign/base", RunID: "r2", Status: "Running", Progress: contract.CampaignProgress{
		Story: contract.Story{Phase: contract.PhaseHalted}, Name: "base", Runs: 2, Failed: 1, Budget: 1, Halted: true,
		Rings: []contract.RingStatus{
			{Environments: []string{"staging"}, State: contract.RingDone, Targets: []contract.CampaignTarget{
				{Service: "api", Environment: "staging", ImageID: "img-1", State: contract.TargetSucceeded}}},
			{Environments: []string{"prod"}, State: contract.RingHalted, Targets: []contract.CampaignTarget{
				{Service: "api", Environment: "prod", ImageID: "img-1", State: contract.TargetFailed, Error: "smoke check failed"},
				{Service: "web", Environment: "prod", ImageID: "img-2", State: contract.TargetPending}}},
		}}})
	out := b.String()
	for _, want := range []string{
		"Campaign:  base\n", "Run:       campaign/base (r2, run 2 of the chain)\n", "Phase:     halted\n",
		"Budget:    1 failed, halts after 1\n",
		"Ring 1:    staging: done — 1 succeeded\n",
		"Ring 2:    prod: halted — 1 failed, 1 pending\n",
		"smoke check failed",
	} {
		assert.Contains(t, out, want)
	}
}
