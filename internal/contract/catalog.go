package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrRevoked is returned (wrapped) when an operation needs a usable image and
// meets a revoked one; Image.Usable's error matches it too.
var ErrRevoked = errors.New("revoked")

// Image is an immutable image record. Revoked and Outdated are not part of the
// record: Get, List and the other readers fill them from their own objects.
type Image struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Digest      string            `json:"digest"`                // content digest of the archive
	InputDigest string            `json:"inputDigest,omitempty"` // digest of the bake inputs
	Parent      string            `json:"parent,omitempty"`      // base image ID
	Builder     string            `json:"builder"`               // "import", "imago-local", "amazon-ebs", ...
	Archive     string            `json:"archive,omitempty"`     // blob key of a local archive
	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Artifacts   map[string]string `json:"artifacts,omitempty"` // e.g. region -> AMI
	Labels      map[string]string `json:"labels,omitempty"`
	Created     time.Time         `json:"created"`
	// OCIDigest is the manifest digest of the OCI image a bake with format: oci
	// wrote of the same files (skopeo inspect shows it as Digest).
	OCIDigest string `json:"ociDigest,omitempty"`

	Revoked  *Revocation `json:"revoked,omitempty"`  // set when the image is revoked
	Outdated *Outdated   `json:"outdated,omitempty"` // set when its base channel moved on
	// Deprecated and Deleted are a lifecycle rule's marks (see LifecycleRule).
	Deprecated *Deprecation `json:"deprecated,omitempty"`
	Deleted    *Tombstone   `json:"deleted,omitempty"`
}

// Revocation says why an image must not be used any more.
type Revocation struct {
	ImageID      string    `json:"imageId"`
	Reason       string    `json:"reason"`
	By           string    `json:"by,omitempty"`
	Time         time.Time `json:"time"`
	CascadedFrom string    `json:"cascadedFrom,omitempty"` // the revoked ancestor, for cascaded revocations
}

// Outdated says that the base an image was built on is no longer its channel's
// current image.
type Outdated struct {
	ImageID string    `json:"imageId"`
	Service string    `json:"service"` // the outdated image's service
	Reason  string    `json:"reason"`  // "base <service>/<channel> moved from X to Y"
	Since   time.Time `json:"since"`
	Base    string    `json:"base"`    // "<service>/<channel>" of the base
	OldBase string    `json:"oldBase"` // the image's parent
	NewBase string    `json:"newBase"` // the channel's new image
}

type revokedError struct {
	id  string
	rev Revocation
}

func (e *revokedError) Error() string {
	by := ""
	if e.rev.By != "" {
		by = "by " + e.rev.By + ", "
	}
	return fmt.Sprintf("image %s is revoked: %s (%sat %s)", e.id, e.rev.Reason, by, e.rev.Time.UTC().Format(time.RFC3339))
}

func (e *revokedError) Is(target error) bool { return target == ErrRevoked }

// Usable returns nil for an image that may be used, and for a revoked one an error
// ("image img-… is revoked: <reason> (by …, at …)") matching ErrRevoked, and for
// a deleted one an error matching ErrDeleted. Outdated and deprecated images are
// usable (a rollout refuses deprecated ones itself).
func (img Image) Usable() error {
	if img.Deleted != nil {
		return fmt.Errorf("image %s was deleted by %s at %s (its archive is gone; the record stays for the audit): %w",
			img.ID, img.Deleted.Rule, img.Deleted.Time.UTC().Format(time.RFC3339), ErrDeleted)
	}
	if img.Revoked == nil {
		return nil
	}
	return &revokedError{id: img.ID, rev: *img.Revoked}
}

// ChannelEntry is one move of a channel.
type ChannelEntry struct {
	Service  string    `json:"service"`
	Channel  string    `json:"channel"`
	ImageID  string    `json:"imageId"`
	Previous string    `json:"previous,omitempty"` // the image before this move ("" for the first)
	Seq      int64     `json:"seq"`                // 1, 2, 3, ... without gaps
	By       string    `json:"by,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`

	// Outdated is only set by MoveChannel: the images built on Previous that this
	// move marked outdated.
	Outdated []string `json:"outdated,omitempty"`
}

// Deployment actions.
const (
	ActionRollout  = "rollout"  // a new image rolled out
	ActionRollback = "rollback" // back to an image deployed before
)

// Deployment is one finished rollout or rollback of a service to an environment.
type Deployment struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	// Region is the rollout's target region: a deployment of its own
	// (inventory/<env>@<region>/<service>/), "" for none.
	Region    string  `json:"region,omitempty"`
	ImageID   string  `json:"imageId"`
	FleetID   string  `json:"fleetId,omitempty"`
	RolloutID string  `json:"rolloutId,omitempty"` // the workflow ID, rollout/<env>/<service>
	RunID     string  `json:"runId,omitempty"`     // the workflow run; with Outcome, the idempotency key
	StartedBy string  `json:"startedBy,omitempty"`
	Action    string  `json:"action"` // ActionRollout or ActionRollback
	Strategy  string  `json:"strategy,omitempty"`
	Outcome   Outcome `json:"outcome"` // OutcomeSucceeded, OutcomeFailed, OutcomeAborted, OutcomeRolledBack, OutcomeCanceled
	Reason    string  `json:"reason,omitempty"`
	// Seq is the entry's place in the log (1, 2, 3, ...), set by RecordDeployment.
	Seq      int64     `json:"seq"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Previous is the image that was live before this deployment ("" for the
	// first). RecordDeployment fills it from the inventory when it is empty.
	Previous string `json:"previous,omitempty"`
	// Spec is the rollout spec deployed (JSON of spec.Rollout), which a
	// campaign rolls again with a new image; absent in records made before.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// Since is when the deployment's image went live: when it finished (Started for
// records without a finish time).
func (d Deployment) Since() time.Time {
	if d.Finished.IsZero() {
		return d.Started
	}
	return d.Finished
}
