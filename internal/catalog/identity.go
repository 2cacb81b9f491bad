package catalog

import (
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/ociimage"
	"github.com/imago/imago/internal/vmimage"
)

// Identity is what the record img's ID is made of (image.Identity). The record
// says its format: an OCI digest makes it an OCI image (with its input digest
// and the OCI base its labels name), a VM disk a VM image; anything else is a
// plain local image, whose ID is that of its files, service and entrypoint.
func Identity(img contract.Image) image.Identity {
	id := image.Identity{Digest: img.Digest, Service: img.Service, Entrypoint: img.Entrypoint, InputDigest: img.InputDigest}
	switch {
	case img.OCIDigest != "":
		id.Format, id.BaseDigest = "oci", img.Labels[ociimage.LabelBaseDigest]
	case img.Artifacts[vmimage.ArtifactDisk] != "":
		id.Format = "vm"
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
