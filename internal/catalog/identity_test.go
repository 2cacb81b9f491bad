package catalog

import (
	"context"
	"strings"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/ociimage"
	"github.com/imago/imago/internal/vmimage"
)

// The same archive published as a local image, as OCI images on two bases and
// as a VM image is four images: each format's record keeps its own OCI digest
// or disk, and the bake cache hands each inputs its own. The local image keeps
// the ID of its files, service and entrypoint.
func TestTheSameFilesInAnotherFormatAreAnotherImage(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		archive := testArchive(t, "the same files")
		ep := []string{"./hello"}
		in := func(s string) string { return "sha256:" + strings.Repeat(s, 64) }
		local, err := c.PublishArchive(ctx, archive, contract.Image{Service: "hello", Builder: "imago-local", Entrypoint: ep, InputDigest: in("1")})
		if err != nil {
			t.Fatal(err)
		}
		if want := image.ID(image.Digest(archive), "hello", ep); local.ID != want {
			t.Fatalf("local image ID = %s, want %s (its files, service and entrypoint)", local.ID, want)
		}
		others := []contract.Image{
			{Service: "hello", Builder: "imago-local", Entrypoint: ep, InputDigest: in("2"), OCIDigest: in("a"),
				Labels: map[string]string{ociimage.LabelBaseDigest: in("b")}},
			{Service: "hello", Builder: "imago-local", Entrypoint: ep, InputDigest: in("3"), OCIDigest: in("c"),
				Labels: map[string]string{ociimage.LabelBaseDigest: in("d")}},
			{Service: "hello", Builder: "imago-local", Entrypoint: ep, InputDigest: in("4"),
				Artifacts: map[string]string{vmimage.ArtifactDisk: "/vm/disk.qcow2"}},
		}
		seen := map[string]bool{local.ID: true}
		for _, o := range others {
			pub, err := c.PublishArchive(ctx, archive, o)
			if err != nil {
				t.Fatal(err)
			}
			if seen[pub.ID] {
				t.Fatalf("%+v published as %s, an image already recorded", o, pub.ID)
			}
			seen[pub.ID] = true
			if pub.OCIDigest != o.OCIDigest || pub.Artifacts[vmimage.ArtifactDisk] != o.Artifacts[vmimage.ArtifactDisk] {
				t.Errorf("published %s: OCI digest %q, disk %q; want %q, %q", pub.ID, pub.OCIDigest, pub.Artifacts[vmimage.ArtifactDisk],
					o.OCIDigest, o.Artifacts[vmimage.ArtifactDisk])
			}
			if got, err := c.FindByInputDigest(ctx, "hello", o.InputDigest); err != nil || got.ID != pub.ID {
				t.Errorf("FindByInputDigest(%s) = %s, %v; want %s", o.InputDigest, got.ID, err, pub.ID)
			}
			if want, ok := CheckID(pub); !ok || want != pub.ID {
				t.Errorf("CheckID(%s) = %s, %v", pub.ID, want, ok)
			}
		}
		if got, err := c.FindByInputDigest(ctx, "hello", in("1")); err != nil || got.ID != local.ID || got.OCIDigest != "" {
			t.Errorf("FindByInputDigest(local inputs) = %+v, %v; want the local image %s", got, err, local.ID)
		}
	})
}

// CheckID accepts a record's own ID and, for an OCI or VM image recorded before
// the ID covered the format, the ID of its files, service and entrypoint; a
// record changed behind imago's back matches neither.
func TestCheckIDAcceptsRecordsMadeBeforeTheIdentityCoveredTheFormat(t *testing.T) {
	digest := "sha256:" + strings.Repeat("e", 64)
	ep := []string{"./hello"}
	legacy := contract.Image{ID: image.ID(digest, "hello", ep), Service: "hello", Digest: digest, Entrypoint: ep,
		InputDigest: "sha256:" + strings.Repeat("1", 64), OCIDigest: "sha256:" + strings.Repeat("a", 64)}
	if want, ok := CheckID(legacy); !ok || want == legacy.ID {
		t.Errorf("CheckID(an OCI record with the files' ID) = %s, %v; want accepted, its identity's ID another", want, ok)
	}
	tampered := legacy
	tampered.Entrypoint = []string{"./evil"}
	if _, ok := CheckID(tampered); ok {
		t.Error("CheckID accepted a record whose entrypoint changed")
	}
	tampered = legacy
	tampered.ID = Identity(legacy).ID()
	tampered.Labels = map[string]string{ociimage.LabelBaseDigest: "sha256:" + strings.Repeat("b", 64)}
	if _, ok := CheckID(tampered); ok {
		t.Error("CheckID accepted an OCI record whose base changed")
	}
}

// A bake-cache entry made before the ID covered the format, which handed an OCI
// bake the local image of the same files, gives way to the OCI image its next
// publish (bake --force) records for those inputs.
func TestAnOCIPublishSupersedesACacheEntryOfTheLocalImage(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		archive := testArchive(t, "the same files")
		ep := []string{"./hello"}
		ociInputs := "sha256:" + strings.Repeat("2", 64)
		local, err := c.PublishArchive(ctx, archive, contract.Image{Service: "hello", Builder: "imago-local", Entrypoint: ep,
			InputDigest: "sha256:" + strings.Repeat("1", 64)})
		if err != nil {
			t.Fatal(err)
		}
		// What the catalog did before: the OCI bake's inputs entered with the local image.
		if got, err := c.claimInput(ctx, local, ociInputs); err != nil || got.ID != local.ID {
			t.Fatalf("claimInput = %s, %v", got.ID, err)
		}
		oci, err := c.PublishArchive(ctx, archive, contract.Image{Service: "hello", Builder: "imago-local", Entrypoint: ep,
			InputDigest: ociInputs, OCIDigest: "sha256:" + strings.Repeat("a", 64)})
		if err != nil {
			t.Fatal(err)
		}
		if oci.ID == local.ID || oci.OCIDigest == "" {
			t.Fatalf("the OCI publish returned %+v, the local image's record", oci)
		}
		if got, err := c.FindByInputDigest(ctx, "hello", ociInputs); err != nil || got.ID != oci.ID {
			t.Errorf("FindByInputDigest(OCI inputs) = %s, %v; want the OCI image %s", got.ID, err, oci.ID)
		}
		// An OCI image of the same inputs that lost a race still gets the winner.
		again, err := c.PublishArchive(ctx, testArchive(t, "another build"), contract.Image{Service: "hello", Builder: "imago-local", Entrypoint: ep,
			InputDigest: ociInputs, OCIDigest: "sha256:" + strings.Repeat("b", 64)})
		if err != nil || again.ID != oci.ID {
			t.Errorf("a second OCI publish of the inputs = %s, %v; want the winner %s", again.ID, err, oci.ID)
		}
	})
}

// The ID a bake derives before its record exists (IdentityAs its format) is the
// one the catalog derives from the record it publishes, whatever its labels say.
func TestABakesIDIsTheOneItsRecordMakes(t *testing.T) {
	img := contract.Image{Service: "hello", Digest: "sha256:" + strings.Repeat("e", 64), Entrypoint: []string{"./hello"},
		InputDigest: "sha256:" + strings.Repeat("1", 64), Labels: map[string]string{ociimage.LabelBaseDigest: "sha256:" + strings.Repeat("b", 64)}}
	oci, vm := img, img
	oci.OCIDigest = "sha256:" + strings.Repeat("a", 64)
	vm.Artifacts = map[string]string{vmimage.ArtifactDisk: "/vm/disk.qcow2"}
	for format, rec := range map[string]contract.Image{"": img, "local": img, "oci": oci, "vm": vm} {
		if a, b := IdentityAs(img, format).ID(), Identity(rec).ID(); a != b {
			t.Errorf("format %q: the bake's ID %s, the record's %s", format, a, b)
		}
	}
	if IdentityAs(img, "local").ID() != image.ID(img.Digest, img.Service, img.Entrypoint) {
		t.Error("a local image's ID is not its files', service's and entrypoint's")
	}
}
