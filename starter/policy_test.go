package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// TestPolicySetShowDelete: a policy is checked (naming the flag), set, shown
// and deleted; the provenance key is read from its file and kept as PEM.
func TestPolicySetShowDelete(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // these commands read the catalog only

	_, _, err := run(t, "policy", "set", "prod", "--deny-package", "openssl@<")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--deny-package "openssl@<": write NAME, NAME@VERSION or NAME@<VERSION`)
	_, _, err = run(t, "policy", "set", "prod")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a policy needs a rule")
	_, _, err = run(t, "policy", "set", "prod", "--max-age", "3w")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"3w": use whole days like 30d`)
	key := filepath.Join(t.TempDir(), "cosign.pub")
	require.NoError(t, os.WriteFile(key, []byte("not a key"), 0o600))
	_, _, err = run(t, "policy", "set", "prod", "--require-provenance", "--provenance-key", key)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--provenance-key: not a PEM public key")

	out, _, err := run(t, "policy", "set", "prod", "--require-sbom", "--deny-package", "libssl3@<3.0.7", "--deny-package", "golang.org/x/net", "--max-age", "90d")
	require.NoError(t, err)
	assert.Equal(t, "set policy of prod#1: require an SBOM; deny libssl3@<3.0.7, golang.org/x/net; max age 90d; every rollout to prod checks its image against it before provisioning\n", out)
	out, _, err = run(t, "policy", "show")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^prod\s+-\s+required\s+libssl3@<3.0.7,golang.org/x/net\s+90d\s+\S+`, out)
	out, _, err = run(t, "policy", "show", "prod", "-o", "json")
	require.NoError(t, err)
	var p contract.Policy
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	assert.Equal(t, contract.Duration(90*24*time.Hour), p.MaxAge)

	out, _, err = run(t, "policy", "delete", "prod")
	require.NoError(t, err)
	assert.Equal(t, "deleted the policy of prod (#2); rollouts to prod are checked against none\n", out)
	_, _, err = run(t, "policy", "show", "prod")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "environment prod has no policy")
}
