package catalog

import (
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/ociimage"
	"github.com/imago/imago/internal/vmimage"
)

// Identity is what the record img's ID is made of (image.Identity). The record
// says its format: an OCI digest makes it an OCI image, a VM disk a VM image;
// anything else is a plain local image, whose ID is that of its files, service
// and entrypoint.
func Identity(img contract.Image) image.Identity {
	format := ""
	switch {
	case img.OCIDigest != "":
		format = "oci"
	case img.Artifacts[vmimage.ArtifactDisk] != "":
		format = "vm"
	}
	return IdentityAs(img, format)
}

// IdentityAs is the identity of img as an image of format, which a bake knows
// before the record says it (its OCI digest depends on the ID): an OCI image's
// includes its input digest and the base digest its labels name.
func IdentityAs(img contract.Image, format string) image.Identity {
	id := image.Identity{Digest: img.Digest, Service: img.Service, Entrypoint: img.Entrypoint, InputDigest: img.InputDigest, Format: format}
	if format == "oci" {
		id.BaseDigest = img.Labels[ociimage.LabelBaseDigest]
	}
	return id
}

// CheckID reports whether the ID of img, a record with an archive, is the one
// its record makes (Identity), and returns that one. An OCI or VM image recorded
// before the identity covered the format has the ID of its files, service and
// entrypoint alone, which is accepted too: it still binds what the image runs.
func CheckID(img contract.Image) (string, bool) {
	want := Identity(img).ID()
	return want, img.ID == want || img.ID == image.ID(img.Digest, img.Service, img.Entrypoint)
}
