package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/sbom"
)

// TestBakedAndImportedImagesHaveAnSBOM bakes examples/hello with the real bake
// workflow and checks its SBOM against `go version -m` of the binary in the
// image; an imported image gets one too.
func TestBakedAndImportedImagesHaveAnSBOM(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ctx := context.Background()

	res, err := e.bake(helloBake(t))
	require.NoError(t, err)
	img, err := e.deps.Catalog.Get(ctx, res.ImageID)
	require.NoError(t, err)
	bom, err := e.deps.Catalog.SBOM(ctx, img.ID)
	require.NoError(t, err)
	assert.Equal(t, img.ID, bom.Metadata.Component.Version)
	assert.Equal(t, strings.TrimPrefix(img.Digest, "sha256:"), (*bom.Metadata.Component.Hashes)[0].Value)

	// The binary as it is in the image.
	r, err := e.deps.Catalog.OpenArchive(ctx, img)
	require.NoError(t, err)
	root := filepath.Join(t.TempDir(), "img")
	require.NoError(t, image.Unpack(r, root, img.Digest, image.Limits{}))
	r.Close()
	bin := filepath.Join(root, "hello")
	out, err := exec.Command("go", "version", "-m", bin).Output()
	require.NoError(t, err)
	wantMods, goVersion := map[string]string{}, ""
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case i == 0:
			goVersion = f[len(f)-1] // "<path>: go1.x.y"
		case len(f) >= 3 && (f[0] == "mod" || f[0] == "dep"):
			wantMods[sbom.GoPURL(f[1], f[2])] = f[2]
		case len(f) >= 3 && f[0] == "=>": // a replaced dependency: the replacement is what was built
			wantMods[sbom.GoPURL(f[1], f[2])] = f[2]
		}
	}
	require.NotEmpty(t, wantMods, "go version -m:\n%s", out)

	data, err := os.ReadFile(bin)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	gotMods, files := map[string]string{}, map[string]string{}
	var binProps map[string]string
	for _, c := range *bom.Components {
		switch c.Type {
		case cdx.ComponentTypeLibrary:
			gotMods[c.PackageURL] = c.Version
		case cdx.ComponentTypeFile:
			files[c.Name] = (*c.Hashes)[0].Value
			if c.Name == "hello" && c.Properties != nil {
				binProps = map[string]string{}
				for _, p := range *c.Properties {
					binProps[p.Name] = p.Value
				}
			}
		}
	}
	assert.Equal(t, wantMods, gotMods, "the SBOM's Go modules are the binary's (go version -m:\n%s)", out)
	assert.Equal(t, map[string]string{"hello": hex.EncodeToString(sum[:])}, files, "every file of the image with its SHA-256")
	assert.Equal(t, goVersion, binProps[sbom.PropGoVersion])
	assert.Equal(t, "example.com/hello", binProps[sbom.PropGoMain])

	// An imported image gets one when it is published.
	v1 := e.importImage("v1")
	bom, err = e.deps.Catalog.SBOM(ctx, v1)
	require.NoError(t, err)
	require.NotNil(t, bom.Components)
	var names []string
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeFile {
			names = append(names, c.Name)
		}
	}
	assert.Equal(t, []string{"hello"}, names)
	var mains []string
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeLibrary {
			mains = append(mains, c.Name)
		}
	}
	assert.Contains(t, mains, "github.com/imago/imago", "the imported binary's main module")
}
