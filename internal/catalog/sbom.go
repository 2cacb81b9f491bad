package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/sbom"
)

func sbomKey(id string) string { return "sboms/" + id + ".cdx.json" }

// SBOM returns the CycloneDX SBOM of image id. Every local image gets one when
// it is published (PublishArchive); an image published before imago made SBOMs
// gets it now, from its archive, and keeps it. Images without a local archive
// (cloud artifacts) have none: imago cannot see inside them.
func (c *Catalog) SBOM(ctx context.Context, id string) (*cdx.BOM, error) {
	img, err := c.record(ctx, id)
	if err != nil {
		return nil, err
	}
	data, err := c.bucket.ReadAll(ctx, sbomKey(id))
	switch {
	case err == nil:
		return sbom.DecodeCycloneDX(data)
	case !isNotFound(err):
		return nil, fmt.Errorf("read SBOM of image %s: %w", id, err)
	}
	if img.Archive == "" {
		return nil, fmt.Errorf("image %s has no SBOM: it has no local archive (builder %s) for imago to look into: %w", id, img.Builder, ErrNotFound)
	}
	r, err := c.OpenArchive(ctx, img)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The bucket's bytes are unchecked: the SBOM is stored only once they are
	// found to be the image's.
	h := sha256.New()
	return c.ensureSBOM(ctx, img, io.TeeReader(r, h), func() error {
		if _, err := io.Copy(h, r); err != nil {
			return fmt.Errorf("read archive of image %s: %w", id, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != img.Digest {
			return fmt.Errorf("SBOM of image %s: %w", id, &image.DigestError{Want: img.Digest, Got: got})
		}
		return nil
	})
}

// ensureSBOM stores the SBOM of img, made from its archive, unless one is
// stored already; it returns the stored one. Two writers make the same SBOM, and
// the first stands. verify, when not nil, is called once the archive is read and
// before anything is stored.
func (c *Catalog) ensureSBOM(ctx context.Context, img contract.Image, archive io.Reader, verify func() error) (*cdx.BOM, error) {
	if data, err := c.bucket.ReadAll(ctx, sbomKey(img.ID)); err == nil {
		return sbom.DecodeCycloneDX(data)
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("read SBOM of image %s: %w", img.ID, err)
	}
	lim, err := image.LimitsFromEnv()
	if err != nil {
		return nil, err
	}
	bom, err := sbom.Generate(archive, sbom.Subject{ID: img.ID, Service: img.Service, Digest: img.Digest, Created: img.Created, OCIDigest: img.OCIDigest}, lim)
	if err != nil {
		return nil, err
	}
	if verify != nil {
		if err := verify(); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := sbom.EncodeCycloneDX(&buf, bom); err != nil {
		return nil, err
	}
	if err := c.create(ctx, sbomKey(img.ID), json.RawMessage(buf.Bytes())); err != nil && !isExists(err) {
		return nil, fmt.Errorf("store SBOM of image %s: %w", img.ID, err)
	}
	return bom, nil
}
