package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/image"
)

const status = `Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
Description: GNU C Library
 a continuation line: Version: 0

Package: removed-pkg
Status: deinstall ok config-files
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
`

// TestGenerateListsGoModulesDebianPackagesAndEveryFile packs a tree holding a
// real Go binary (this test's own) and a dpkg status file, and reads its BOM back.
func TestGenerateListsGoModulesDebianPackagesAndEveryFile(t *testing.T) {
	dir := t.TempDir()
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app"), self, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "var", "lib", "dpkg"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "var", "lib", "dpkg", "status"), []byte(status), 0o644))
	archive, err := image.Pack(dir)
	require.NoError(t, err)
	created := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	subj := Subject{ID: "img-000000000001", Service: "hello", Digest: image.Digest(archive), Created: created}
	bom, err := Generate(bytes.NewReader(archive), subj, image.Limits{})
	require.NoError(t, err)

	bi, err := buildinfo.ReadFile(os.Args[0])
	require.NoError(t, err)
	want := map[string]string{GoPURL(bi.Main.Path, bi.Main.Version): bi.Main.Version}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		want[GoPURL(d.Path, d.Version)] = d.Version
	}
	got := map[string]string{}
	files := map[string]string{}
	var debs []string
	for _, c := range *bom.Components {
		switch {
		case c.Type == cdx.ComponentTypeFile:
			files[c.Name] = (*c.Hashes)[0].Value
		case c.Type == cdx.ComponentTypeLibrary && bytes.HasPrefix([]byte(c.PackageURL), []byte("pkg:golang/")):
			got[c.PackageURL] = c.Version
		case c.Type == cdx.ComponentTypeLibrary:
			debs = append(debs, c.PackageURL)
		}
	}
	assert.Equal(t, want, got, "every module of the binary, as buildinfo reads it")
	assert.Contains(t, got, "pkg:golang/github.com/stretchr/testify@"+versionOf(bi, "github.com/stretchr/testify"), "a module this test is built with")
	selfSum := sha256.Sum256(self)
	statusSum := sha256.Sum256([]byte(status))
	assert.Equal(t, map[string]string{"app": hex.EncodeToString(selfSum[:]), "var/lib/dpkg/status": hex.EncodeToString(statusSum[:])}, files)
	sort.Strings(debs)
	assert.Equal(t, []string{"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64", "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"}, debs,
		"installed packages only")
	assert.Equal(t, "2026-12-04T03:00:00Z", bom.Metadata.Timestamp)

	// The same archive gives the same BOM, byte for byte.
	again, err := Generate(bytes.NewReader(archive), subj, image.Limits{})
	require.NoError(t, err)
	var a, b bytes.Buffer
	require.NoError(t, EncodeCycloneDX(&a, bom))
	require.NoError(t, EncodeCycloneDX(&b, again))
	assert.Equal(t, a.String(), b.String())

	// CycloneDX round-trips; SPDX has the same packages and files.
	back, err := DecodeCycloneDX(a.Bytes())
	require.NoError(t, err)
	var s bytes.Buffer
	require.NoError(t, Write(&s, back, FormatSPDX))
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name         string `json:"name"`
			ExternalRefs []struct {
				ReferenceLocator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
		Files []struct {
			FileName string `json:"fileName"`
		} `json:"files"`
		Relationships []struct {
			Type string `json:"relationshipType"`
		} `json:"relationships"`
	}
	require.NoError(t, json.Unmarshal(s.Bytes(), &doc))
	assert.Equal(t, "SPDX-2.3", doc.SPDXVersion)
	assert.Len(t, doc.Packages, 1+len(want)+2, "the image, the modules and the Debian packages")
	assert.Len(t, doc.Files, 2)
	var dependsOn int
	for _, r := range doc.Relationships {
		if r.Type == "DEPENDS_ON" {
			dependsOn++
		}
	}
	assert.Equal(t, len(want), dependsOn, "the binary depends on each of its modules")
}

func versionOf(bi *buildinfo.BuildInfo, path string) string {
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return ""
}

func TestGenerateStopsAtTheLimits(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), bytes.Repeat([]byte(n), 1000), 0o644))
	}
	archive, err := image.Pack(dir)
	require.NoError(t, err)
	_, err = Generate(bytes.NewReader(archive), Subject{ID: "img-1"}, image.Limits{MaxEntries: 2})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "past its limits")
	_, err = Generate(bytes.NewReader(archive), Subject{ID: "img-1"}, image.Limits{MaxBytes: 1500})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "past its limit")
}

// An image with an OCI form names its manifest digest on the root component: a
// property and a pkg:oci purl, which the SPDX document keeps as the image
// package's purl. Without one the root has neither.
func TestGenerateRecordsTheOCIDigest(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644))
	archive, err := image.Pack(dir)
	require.NoError(t, err)
	oci := "sha256:" + hex.EncodeToString(make([]byte, 32))
	bom, err := Generate(bytes.NewReader(archive), Subject{ID: "img-000000000001", Service: "hello", Digest: image.Digest(archive), OCIDigest: oci}, image.Limits{})
	require.NoError(t, err)
	root := bom.Metadata.Component
	require.NotNil(t, root.Properties)
	assert.Equal(t, []cdx.Property{{Name: PropOCIDigest, Value: oci}}, *root.Properties)
	assert.Equal(t, "pkg:oci/hello@"+oci, root.PackageURL)

	var s bytes.Buffer
	require.NoError(t, Write(&s, bom, FormatSPDX))
	assert.Contains(t, s.String(), `"referenceLocator": "pkg:oci/hello@sha256:0000`)

	plain, err := Generate(bytes.NewReader(archive), Subject{ID: "img-000000000001", Service: "hello", Digest: image.Digest(archive)}, image.Limits{})
	require.NoError(t, err)
	assert.Nil(t, plain.Metadata.Component.Properties)
	assert.Empty(t, plain.Metadata.Component.PackageURL)
}
