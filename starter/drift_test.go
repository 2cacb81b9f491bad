package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// imago status shows the last drift check of each environment that had one,
// as DetectDrift recorded it in the catalog.
func TestStatusShowsTheLastDriftCheck(t *testing.T) {
	seedInventory(t)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	checked := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	require.NoError(t, cat.RecordDrift(ctx, contract.DriftTarget{
		Service: "hello", Environment: "prod", LiveImage: "img-v2", LiveFleet: "fl-2", Instances: 1, Checked: checked,
		Items: []contract.DriftItem{{Kind: contract.DriftMissingInstance, FleetID: "fl-2", InstanceID: "fl-2-1", PID: 4242,
			Detail: "instance fl-2-1 of live fleet fl-2 is exited (signal: killed)"}},
	}))
	require.NoError(t, cat.RecordDrift(ctx, contract.DriftTarget{Service: "hello", Environment: "dev", LiveImage: "img-v3", LiveFleet: "fl-4", Checked: checked}))
	require.NoError(t, cat.Close())

	out, code, err := run(t, "status", "hello")
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Regexp(t, `\nprod: drift: 1 instance \(instance fl-2-1 of live fleet fl-2 is exited \(signal: killed\)\), checked at 2026-03-0\d \d\d:00:00; repair with: imago drift --service hello -e prod --repair\n`, out)
	assert.Regexp(t, `\ndev: no drift, checked at 2026-03-0\d \d\d:00:00\n`, out)

	out, _, err = run(t, "status", "hello", "-e", "prod", "-o", "json")
	require.NoError(t, err)
	var st serviceStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.NotNil(t, st.Environments[0].Drift)
	assert.Equal(t, 4242, st.Environments[0].Drift.Items[0].PID)
	assert.True(t, strings.Contains(out, `"kind": "missing-instance"`), out)
}
