package activities

import (
	"context"
	"errors"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/policy"
)

// checkPolicy refuses img when the policy of environment (imago policy set)
// does, as a non-retryable ErrImagePolicy error naming the policy, each rule
// broken and the image; no policy accepts any image. Reading the policy, the
// SBOM or the provenance may fail for a while: those errors retry.
func (a *Activities) checkPolicy(ctx context.Context, environment string, img contract.Image) error {
	if environment == "" {
		return nil
	}
	p, err := a.Catalog.Policy(ctx, environment)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = policy.Evaluate(ctx, p, img, policy.Inputs{
		SBOM:       func(ctx context.Context) (*cdx.BOM, error) { return a.Catalog.SBOM(ctx, img.ID) },
		NotFound:   catalog.ErrNotFound,
		Provenance: a.Provenance,
		Now:        time.Now(),
	})
	var refusal *policy.Refusal
	if errors.As(err, &refusal) {
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrImagePolicy, nil)
	}
	return err
}
