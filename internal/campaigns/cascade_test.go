package campaigns

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example cascade file loads; a home without one has none; a file that
// selects its own services, or a bad ring, is refused with its line.
func TestLoadCascade(t *testing.T) {
	c, ok, err := LoadCascade("../../examples/campaign/cascade.yaml", "")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Empty(t, c.Name, "the revoke names it")
	assert.Nil(t, c.Select)
	require.Len(t, c.Rings, 2)
	assert.True(t, c.Rings[1].Approval.Required)

	_, ok, err = LoadCascade("", t.TempDir())
	require.NoError(t, err)
	assert.False(t, ok)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("image: {channel: stable}\nrings:\n  - {environments: [staging]}\n"), 0o600))
	_, _, err = LoadCascade(bad, "")
	assert.ErrorContains(t, err, "leave out image")
	require.NoError(t, os.WriteFile(bad, []byte("rings:\n  - {environments: [staging], parallel: -1}\n"), 0o600))
	_, _, err = LoadCascade(bad, "")
	assert.ErrorContains(t, err, "rings[0].parallel: line 2: must not be negative")
}
