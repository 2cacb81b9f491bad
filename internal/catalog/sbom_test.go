package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
)

// TestImportStoresAnSBOMBesideTheRecord: every local image gets its SBOM when
// it is published, stored owner-only; an image whose SBOM went missing gets it
// back from its archive, and one without an archive has none.
func TestImportStoresAnSBOMBesideTheRecord(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "catalog")
	c := mustOpen(t, "file://"+dir)
	src := t.TempDir()
	body := []byte("#!/bin/sh\necho hi\n")
	if err := os.WriteFile(filepath.Join(src, "run.sh"), body, 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := c.Import(ctx, src, "hello", []string{"./run.sh"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sboms", img.ID+".cdx.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no SBOM beside the record: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("SBOM mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("sboms/ mode %v, want 0700", di.Mode().Perm())
	}
	sum := sha256.Sum256(body)
	check := func() {
		t.Helper()
		bom, err := c.SBOM(ctx, img.ID)
		if err != nil {
			t.Fatal(err)
		}
		comps := *bom.Components
		if len(comps) != 1 || comps[0].Name != "run.sh" || (*comps[0].Hashes)[0].Value != hex.EncodeToString(sum[:]) {
			t.Errorf("SBOM components %+v, want run.sh with its SHA-256", comps)
		}
	}
	check()

	// Made again from the archive when missing (images published before SBOMs).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the SBOM made again is not stored: %v", err)
	}

	// Not from an archive that is not the image's.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := image.Pack(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(img.Archive)), other, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = c.SBOM(ctx, img.ID)
	var de *image.DigestError
	if !errors.As(err, &de) {
		t.Errorf("SBOM of a swapped archive: %v, want a DigestError", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("an SBOM of the swapped archive was stored")
	}

	cloud := publish(t, c, contract.Image{ID: "img-0000000000c1", Service: "hello", Builder: "amazon-ebs", Artifacts: map[string]string{"us-east-1": "ami-1"}})
	_, err = c.SBOM(ctx, cloud.ID)
	wantErr(t, err, "has no SBOM", "no local archive")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("want ErrNotFound, got %v", err)
	}
}

// testArchive is an image archive of one file holding content: PublishArchive
// reads it for the image's SBOM.
func testArchive(t *testing.T, content string) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := image.Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
