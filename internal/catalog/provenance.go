package catalog

import (
	"context"
	"encoding/json"
	"fmt"
)

func provenanceKey(id string) string { return "provenance/" + id + ".intoto.json" }

// PutProvenance stores the provenance of image id: a DSSE envelope (JSON) that
// its bake made and signed (internal/provenance). Provenance is written once:
// when one is stored already, the first stands and this returns nil. A deleted
// image gets none back.
func (c *Catalog) PutProvenance(ctx context.Context, id string, envelope []byte) error {
	img, err := c.Get(ctx, id)
	if err != nil {
		return err
	}
	if img.Deleted != nil {
		return fmt.Errorf("store provenance of image %s: the image was deleted by %s", id, img.Deleted.Rule)
	}
	if !json.Valid(envelope) {
		return fmt.Errorf("store provenance of image %s: the envelope is not JSON", id)
	}
	if err := c.create(ctx, provenanceKey(id), json.RawMessage(envelope)); err != nil && !isExists(err) {
		return fmt.Errorf("store provenance of image %s: %w", id, err)
	}
	return nil
}

// Provenance returns the DSSE envelope of image id's provenance, as stored.
// Images that were imported, or baked before imago wrote provenance, or deleted
// by a lifecycle rule, have none: ErrNotFound. Its bytes are the bucket's:
// check them with provenance.Verify before trusting them.
func (c *Catalog) Provenance(ctx context.Context, id string) ([]byte, error) {
	if !idRE.MatchString(id) {
		_, err := c.Get(ctx, id) // refuses it as Get does, before a key is made of it
		return nil, err
	}
	data, err := c.bucket.ReadAll(ctx, provenanceKey(id))
	switch {
	case err == nil:
		return data, nil // stored only for an image that was in the catalog
	case !isNotFound(err):
		return nil, fmt.Errorf("read provenance of image %s: %w", id, err)
	}
	// None: the record says why (or that there is no such image).
	img, err := c.Get(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case img.Deleted != nil:
		return nil, fmt.Errorf("image %s has no provenance: it was deleted by %s (its tombstone stays): %w", id, img.Deleted.Rule, ErrNotFound)
	}
	return nil, fmt.Errorf("image %s has no provenance: only bakes write it (builder %s): %w", id, img.Builder, ErrNotFound)
}
