package catalog

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// TestFreezesStartEndAndCover: a freeze holds the rollouts of its scope until
// it is ended or its until passes, on a file catalog a second handle reads.
func TestFreezesStartEndAndCover(t *testing.T) {
	ctx := context.Background()
	url := "file://" + t.TempDir()
	c, other := mustOpen(t, url), mustOpen(t, url)
	now := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	until := now.Add(time.Hour)

	_, err := c.StartFreeze(ctx, contract.Freeze{Environment: "prod", Reason: "incident 42", By: "ana", Since: now})
	require.NoError(t, err)
	_, err = c.StartFreeze(ctx, contract.Freeze{Service: "web", Reason: "db migration", By: "bo", Since: now, Until: &until})
	require.NoError(t, err)

	all, err := other.Freezes(ctx, now)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, []string{"*/web", "prod/*"}, []string{all[0].Scope(), all[1].Scope()})

	cover := func(service, env string, at time.Time) []string {
		fs, err := other.FreezesCovering(ctx, service, env, at)
		require.NoError(t, err)
		var out []string
		for _, f := range fs {
			out = append(out, f.Reason)
		}
		return out
	}
	assert.Equal(t, []string{"db migration", "incident 42"}, cover("web", "prod", now))
	assert.Equal(t, []string{"db migration"}, cover("web", "dev", now))
	assert.Empty(t, cover("api", "dev", now))
	assert.Equal(t, []string{"incident 42"}, cover("web", "prod", until), "the until passed")

	_, err = c.EndFreeze(ctx, "", "prod", "ana", now.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []string{"db migration"}, cover("web", "prod", now.Add(time.Minute)))

	_, err = c.EndFreeze(ctx, "", "prod", "ana", now.Add(time.Minute))
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorContains(t, err, "no freeze of prod/* is in force")

	// Frozen again: the newest entry is the scope's state.
	_, err = c.StartFreeze(ctx, contract.Freeze{Environment: "prod", Reason: "again", By: "ana", Since: now.Add(2 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, []string{"db migration", "again"}, cover("web", "prod", now.Add(3*time.Minute)))

	_, err = c.StartFreeze(ctx, contract.Freeze{Service: "../etc", Reason: "x", By: "ana", Since: now})
	assert.Error(t, err)
}
