package packerplugin

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Record is the image record written next to the archive: the subset of
// catalog.Image (same JSON names) that a build knows. It decodes as a
// catalog.Image; the catalog adds the archive key when the image is published.
// (This package does not import internal/catalog, which keeps the blob drivers
// out of the plugin binary.)
type Record struct {
	ID         string            `json:"id"`
	Service    string            `json:"service"`
	Digest     string            `json:"digest"`
	Builder    string            `json:"builder"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Created    time.Time         `json:"created"`
}

// Artifact is a local imago image written by the imago-local builder: an archive
// in image format and its record. Publish it with
//
//	data, _ := a.ReadArchive()
//	img, err := cat.PublishArchive(ctx, data, catalog.Image{Service: a.Image.Service,
//		Entrypoint: a.Image.Entrypoint, Labels: a.Image.Labels, Builder: a.Image.Builder})
//
// which derives the same image ID (or decode RecordPath into a catalog.Image).
type Artifact struct {
	// Image is the record written to RecordPath (ID, service, digest,
	// entrypoint, labels, builder "imago-local", created).
	Image       Record
	ArchivePath string // <output_dir>/<id>.tar.gz
	RecordPath  string // <output_dir>/<id>.json

	generatedData map[string]interface{}
}

var _ packersdk.Artifact = (*Artifact)(nil)

// BuilderId is "imago.local".
func (a *Artifact) BuilderId() string { return BuilderID }

// Files are the archive and the record.
func (a *Artifact) Files() []string { return []string{a.ArchivePath, a.RecordPath} }

// Id is the image ID, img-<12 hex digits>.
func (a *Artifact) Id() string { return a.Image.ID }

func (a *Artifact) String() string {
	return fmt.Sprintf("imago image %s of service %s (entrypoint %s, %s): %s",
		a.Image.ID, a.Image.Service, strings.Join(a.Image.Entrypoint, " "), a.Image.Digest, a.ArchivePath)
}

// State answers "digest" (sha256:<hex>), "archive" and "record" (file paths),
// "service", and "generated_data" (for post-processors such as manifest).
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "digest":
		return a.Image.Digest
	case "archive":
		return a.ArchivePath
	case "record":
		return a.RecordPath
	case "service":
		return a.Image.Service
	case "generated_data":
		return a.generatedData
	}
	return nil
}

// Destroy removes the artifact's files.
func (a *Artifact) Destroy() error {
	var errs []error
	for _, f := range a.Files() {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReadArchive returns the archive's bytes.
func (a *Artifact) ReadArchive() ([]byte, error) { return os.ReadFile(a.ArchivePath) }
