package contract

import (
	"fmt"
	"time"
)

// ErrImagePolicy is the error type of a rollout whose image its environment's
// policy refuses (see Policy).
const ErrImagePolicy = "ImagePolicy"

// Policy is what an environment demands of the images rolled out to it
// (imago policy set). A rollout's resolve step checks its image against the
// policy of the rollout's environment and refuses a violation before anything
// is provisioned; campaigns and pipelines start rollouts, so they honour it too.
type Policy struct {
	Environment string `json:"environment"`
	// RequireProvenance: the image must have signed provenance, signed by
	// ProvenanceKey when that is set.
	RequireProvenance bool `json:"requireProvenance,omitempty"`
	// ProvenanceKey is the PEM public key the provenance must be signed with
	// (imago policy set --provenance-key FILE); empty: any key the worker's
	// verifier trusts.
	ProvenanceKey string `json:"provenanceKey,omitempty"`
	// RequireSBOM: the image must have an SBOM in the catalog.
	RequireSBOM bool `json:"requireSbom,omitempty"`
	// DenyPackages are packages the image's SBOM must not list: NAME (any
	// version), NAME@VERSION (that version) or NAME@<VERSION (below it).
	DenyPackages []string `json:"denyPackages,omitempty"`
	// MaxAge: the image must have been created at most this long ago; 0: any age.
	MaxAge Duration `json:"maxAge,omitempty"`

	By      string    `json:"by,omitempty"`
	Time    time.Time `json:"time"`
	Seq     int64     `json:"seq"`               // 1, 2, 3, ... each set (or delete) of the environment's policy
	Deleted bool      `json:"deleted,omitempty"` // a delete: the environment has no policy since
}

// Name is how refusals cite the policy ("policy of prod#2").
func (p Policy) Name() string { return fmt.Sprintf("policy of %s#%d", p.Environment, p.Seq) }
