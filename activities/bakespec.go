package activities

import (
	"context"

	"github.com/imago/imago/internal/contract"
)

// PublishImage records the image in the catalog (publishImage) and keeps the
// bake spec that built it, so a campaign can rebuild the service on a new
// base. Of two bakes of the same inputs the first's spec stands.
func (a *Activities) PublishImage(ctx context.Context, in contract.PublishImageInput) (contract.Image, error) {
	pub, err := a.publishImage(ctx, in)
	if err != nil || in.Spec == nil {
		return pub, err
	}
	return pub, a.Catalog.PutBakeSpec(ctx, pub.ID, *in.Spec)
}
