package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// TestImageLifecycleSetShowAndTombstones: a rule is checked (naming the flag),
// set and shown; an image a rule deleted shows the tombstone in image show and
// image list.
func TestImageLifecycleSetShowAndTombstones(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // these commands read the catalog only

	_, _, err := run(t, "image", "lifecycle", "set", "--service", "hello", "--keep-last", "3", "--deprecate-after", "90d", "--delete-after", "30d")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--delete-after (720h0m0s) must not be shorter than --deprecate-after (2160h0m0s)")
	_, _, err = run(t, "image", "lifecycle", "set", "--service", "hello", "--keep-last", "3", "--deprecate-after", "3w")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"3w": use whole days like 30d`)

	out, _, err := run(t, "image", "lifecycle", "set", "--service", "hello", "--keep-last", "3", "--deprecate-after", "30d", "--delete-after", "90d")
	require.NoError(t, err)
	assert.Equal(t, "set lifecycle rule hello#1: keep the newest 3, deprecate after 30d, delete after 90d; see what it does with: imago image lifecycle run\n", out)
	out, _, err = run(t, "image", "lifecycle", "show")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^hello\s+3\s+30d\s+90d\s+\S+`, out)
	out, _, err = run(t, "image", "lifecycle", "show", "--service", "hello", "-o", "json")
	require.NoError(t, err)
	var rules []contract.LifecycleRule
	require.NoError(t, json.Unmarshal([]byte(out), &rules))
	require.Len(t, rules, 1)
	assert.Equal(t, contract.Duration(90*24*time.Hour), rules[0].DeleteAfter)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	out, _, err = run(t, "image", "import", dir, "--service", "hello", "--entrypoint", "./app.sh")
	require.NoError(t, err)
	id := strings.TrimSpace(out)
	cat, err := catalog.Open(context.Background(), app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	defer cat.Close()
	require.NoError(t, cat.DeleteImage(context.Background(), id, "lifecycle rule hello#1", time.Now()))

	out, _, err = run(t, "image", "show", id)
	require.NoError(t, err)
	assert.Regexp(t, `Deleted:\s+by lifecycle rule hello#1 at .* \(archive and SBOM removed; this record stays for the audit\)`, out)
	out, _, err = run(t, "image", "list")
	require.NoError(t, err)
	assert.Regexp(t, id+`.*\sdeleted\n`, out)
}
