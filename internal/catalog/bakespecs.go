package catalog

import (
	"context"
	"fmt"

	"github.com/imago/imago/internal/contract"
)

func bakeSpecKey(id string) string { return "bakespecs/" + id + ".json" }

// PutBakeSpec keeps the bake spec that built image id, so a campaign can
// rebuild the service on a new base (workflows/campaign.go). Written once:
// the first stands. The spec is what the Bake workflow received (its input in
// Temporal): paths of the worker's machine, variables, the names of passed
// environment variables — never their values.
func (c *Catalog) PutBakeSpec(ctx context.Context, id string, b contract.Bake) error {
	if _, err := c.record(ctx, id); err != nil {
		return fmt.Errorf("store the bake spec of image %s: %w", id, err)
	}
	b.Force = false // a rebuild is cache aware
	if err := c.create(ctx, bakeSpecKey(id), b); err != nil && !isExists(err) {
		return fmt.Errorf("store the bake spec of image %s: %w", id, err)
	}
	return nil
}

// BakeSpec returns the bake spec that built image id: ErrNotFound for an
// imported image or one baked before imago kept bake specs.
func (c *Catalog) BakeSpec(ctx context.Context, id string) (contract.Bake, error) {
	var b contract.Bake
	if _, err := c.record(ctx, id); err != nil {
		return b, err
	}
	err := c.readJSON(ctx, bakeSpecKey(id), &b)
	if isNotFound(err) {
		return b, fmt.Errorf("image %s has no bake spec (imported, or baked before imago kept bake specs): %w", id, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read the bake spec of image %s: %w", id, err)
	}
	return b, nil
}
