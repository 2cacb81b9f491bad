package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImageSBOMListsTheImportedFilesInCycloneDXAndSPDX(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // image commands read the catalog only
	dir := t.TempDir()
	body := []byte("#!/bin/sh\necho hi\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), body, 0o755))
	sum := sha256.Sum256(body)
	out, _, err := run(t, "image", "import", dir, "--service", "hello", "--entrypoint", "./app.sh")
	require.NoError(t, err)
	id := strings.TrimSpace(out)

	out, _, err = run(t, "image", "sbom", id)
	require.NoError(t, err)
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name, Version string }
		}
		Components []struct {
			Type, Name string
			Hashes     []struct{ Alg, Content string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &bom), out)
	assert.Equal(t, "CycloneDX", bom.BOMFormat)
	assert.Equal(t, "hello", bom.Metadata.Component.Name)
	assert.Equal(t, id, bom.Metadata.Component.Version)
	require.Len(t, bom.Components, 1)
	assert.Equal(t, "app.sh", bom.Components[0].Name)
	assert.Equal(t, []struct{ Alg, Content string }{{"SHA-256", hex.EncodeToString(sum[:])}}, bom.Components[0].Hashes)

	out, _, err = run(t, "image", "sbom", id, "-o", "spdx")
	require.NoError(t, err)
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		Files       []struct {
			FileName  string `json:"fileName"`
			Checksums []struct{ Algorithm, ChecksumValue string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	assert.Equal(t, "SPDX-2.3", doc.SPDXVersion)
	require.Len(t, doc.Files, 1)
	assert.Equal(t, "./app.sh", doc.Files[0].FileName)
	assert.Equal(t, hex.EncodeToString(sum[:]), doc.Files[0].Checksums[0].ChecksumValue)

	_, code, err := run(t, "image", "sbom", id, "-o", "yaml")
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), `-o "yaml": want cyclonedx or spdx`)
}
