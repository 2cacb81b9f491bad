package catalog

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// TestPolicies: in a file catalog, a policy is set (0600, in a 0700
// directory), replaced, listed, deleted (the log keeps every entry); an
// invalid one is refused with the field named; concurrent sets all land, each
// at its own seq.
func TestPolicies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := Open(ctx, "file://"+dir)
	require.NoError(t, err)
	defer c.Close()

	_, err = c.Policy(ctx, "prod")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorContains(t, err, "environment prod has no policy not found; set one with: imago policy set prod")
	_, err = c.SetPolicy(ctx, contract.Policy{Environment: "prod", DenyPackages: []string{"x@<"}})
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	assert.Equal(t, "denyPackages[0]", es[0].Field)
	_, err = c.SetPolicy(ctx, contract.Policy{Environment: "../etc", RequireSBOM: true})
	assert.ErrorContains(t, err, `invalid environment name "../etc"`)

	p, err := c.SetPolicy(ctx, contract.Policy{Environment: "prod", RequireSBOM: true, By: "ana"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), p.Seq)
	assert.Equal(t, "policy of prod#1", p.Name())
	_, err = c.SetPolicy(ctx, contract.Policy{Environment: "staging", MaxAge: contract.Duration(90 * 24 * time.Hour)})
	require.NoError(t, err)
	p, err = c.SetPolicy(ctx, contract.Policy{Environment: "prod", RequireSBOM: true, DenyPackages: []string{"openssl@<3.0.7"}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), p.Seq)
	got, err := c.Policy(ctx, "prod")
	require.NoError(t, err)
	assert.Equal(t, []string{"openssl@<3.0.7"}, got.DenyPackages)

	fi, err := os.Stat(filepath.Join(dir, "policies", "prod", "000000000002.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(dir, "policies", "prod"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	all, err := c.Policies(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, []string{"prod", "staging"}, []string{all[0].Environment, all[1].Environment})

	d, err := c.DeletePolicy(ctx, "staging", "ana", time.Now())
	require.NoError(t, err)
	assert.True(t, d.Deleted)
	assert.Equal(t, int64(2), d.Seq)
	_, err = c.Policy(ctx, "staging")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = c.DeletePolicy(ctx, "staging", "ana", time.Now())
	assert.ErrorIs(t, err, ErrNotFound, "nothing left to delete")
	all, err = c.Policies(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)

	// Concurrent sets: none is lost, each takes its own seq.
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := c.SetPolicy(ctx, contract.Policy{Environment: "race", RequireSBOM: true})
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		require.NoError(t, <-errs)
	}
	seqs, err := c.seqsUnder(ctx, policyPrefix("race"))
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8}, seqs)
}
