package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Identity is what makes an image, and so its ID: its files (the archive's
// digest), service and entrypoint, and for an image that is more than those
// files, what else its artifact is made of.
//
// A plain local image (Format "" or "local", no OCI base) keeps the ID that ID
// gives, the one every catalog recorded before the identity covered the format:
// its ID does not change. An image of any other format gets an ID of its own, so
// an OCI or VM image of the same files is never the local image's record (nor an
// OCI image on another base), whose OCI digest or disk would be stale.
type Identity struct {
	Digest     string   // the archive's digest (sha256:…)
	Service    string   // the image's service
	Entrypoint []string // its entrypoint
	Format     string   // the bake's format: "", "local", "oci" or "vm"
	// InputDigest is the bake's input digest. It is part of an OCI image's
	// identity only: the OCI config carries it, with the bake's labels (which it
	// covers), so two OCI bakes of the same files with other inputs are two OCI
	// images. A local or VM image of the same files is the same image, whatever
	// the inputs that made them.
	InputDigest string
	// BaseDigest is the manifest digest of the OCI base (format oci).
	BaseDigest string
}

// Local reports whether the identity is a plain local image's, whose ID is
// ID(Digest, Service, Entrypoint).
func (i Identity) Local() bool {
	return (i.Format == "" || i.Format == "local") && i.BaseDigest == ""
}

// ID is the image ID of the identity ("img-" + 12 hex digits): ID's for a plain
// local image; else the sha256 of the whole identity, tagged with its version,
// which is never the string a plain local image's ID hashes (that starts with
// the archive's digest).
func (i Identity) ID() string {
	if i.Local() {
		return ID(i.Digest, i.Service, i.Entrypoint)
	}
	v := struct {
		Version     string   `json:"v"`
		Digest      string   `json:"digest"`
		Service     string   `json:"service"`
		Entrypoint  []string `json:"entrypoint"`
		Format      string   `json:"format"`
		InputDigest string   `json:"inputDigest,omitempty"`
		BaseDigest  string   `json:"baseDigest,omitempty"`
	}{"imago-image-identity/2", i.Digest, i.Service, i.Entrypoint, i.Format, "", i.BaseDigest}
	if i.Format == "oci" {
		v.InputDigest = i.InputDigest
	}
	enc, _ := json.Marshal(v)
	sum := sha256.Sum256(enc)
	return "img-" + hex.EncodeToString(sum[:])[:12]
}
