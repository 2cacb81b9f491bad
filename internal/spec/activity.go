package spec

import "github.com/imago/imago/internal/contract"

// The input of the BakeBuild activity. It lives here, not in package
// contract, because it carries a Bake; package workflows imports this package
// (no AWS SDK, no gocloud) to call BakeBuild by its name.

// BakeBuildInput builds an image.
type BakeBuildInput struct {
	Spec        Bake   `json:"spec"`
	InputDigest string `json:"inputDigest"`
	BaseImageID string `json:"baseImageId,omitempty"`
	// BuildID names the bake run (workflow ID and run ID): each run builds in a
	// directory of its own, which its retried attempts adopt. Empty (a bake
	// scheduled before it existed): the input digest's directory.
	BuildID string `json:"buildId,omitempty"`
}

// InvalidSpec returns the problems of a spec refused by the CheckSpec activity
// (a failure of type contract.ErrInvalidSpec with the Errors as details), found
// anywhere in err's chain.
func InvalidSpec(err error) (Errors, bool) {
	var es Errors
	if !contract.FailureDetails(err, contract.ErrInvalidSpec, &es) || len(es) == 0 {
		return nil, false
	}
	return es, true
}
