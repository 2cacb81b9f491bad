package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provenance"
)

// Verifier is the ProvenanceChecker of a worker: it reads the DSSE envelope
// the catalog keeps for an image (Envelope, catalog.Provenance) and checks it
// with provenance.VerifyDigest, sigstore's DSSE verifier, against the image
// record's digest: signed by the policy's --provenance-key or, when the policy
// names none, by Trusted's key (the public key of this worker's
// IMAGO_SIGNING_KEY, asked for only then: a KMS key costs a call).
type Verifier struct {
	Envelope func(ctx context.Context, imageID string) ([]byte, error)
	Trusted  func(ctx context.Context) ([]byte, error) // PEM; nil when the worker signs nothing
}

// Check implements ProvenanceChecker.
func (v Verifier) Check(ctx context.Context, img contract.Image, keyPEM string) error {
	env, err := v.Envelope(ctx, img.ID)
	if err != nil {
		return err // names the image and why it has none
	}
	key, whose := []byte(keyPEM), "the policy's --provenance-key"
	if keyPEM == "" && v.Trusted != nil {
		whose = "this worker's signing key (" + provenance.KeyEnv + ")"
		if key, err = v.Trusted(ctx); err != nil {
			return fmt.Errorf("%s: %w", whose, err)
		}
	}
	if len(key) == 0 {
		return fmt.Errorf("the policy names no --provenance-key and the worker has no %s to trust, so no signature of image %s can be verified", provenance.KeyEnv, img.ID)
	}
	pub, err := provenance.LoadVerifier(key)
	if err != nil {
		return fmt.Errorf("%s: %w", whose, err)
	}
	if _, err := provenance.VerifyDigest(env, img.Digest, pub); err != nil {
		if errors.Is(err, provenance.ErrUnsigned) {
			return fmt.Errorf("image %s: %w", img.ID, err)
		}
		return fmt.Errorf("image %s's provenance does not verify with %s: %w", img.ID, whose, err)
	}
	return nil
}
