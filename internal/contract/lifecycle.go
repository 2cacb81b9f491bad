package contract

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The lifecycle sweep's workflow and activities, and the error type of a
// rollout refused a deprecated image.
const (
	WorkflowLifecycle      = "ImageLifecycle"
	ActivityPlanLifecycle  = "PlanLifecycle"
	ActivityApplyLifecycle = "ApplyLifecycle"
	ErrImageDeprecated     = "ImageDeprecated"
)

// ErrDeprecated is returned (wrapped) when a rollout meets a deprecated image
// and its spec does not say allowDeprecated.
var ErrDeprecated = errors.New("deprecated")

// ErrDeleted is returned (wrapped) when an operation needs an image that a
// lifecycle rule deleted; Image.Usable's error matches it.
var ErrDeleted = errors.New("deleted")

// LifecycleRule is a service's image lifecycle rule (imago image lifecycle set):
// beyond the newest KeepLast images, images older than DeprecateAfter are marked
// deprecated and images older than DeleteAfter deleted, except those live, within
// a rollback's retain, on a channel, or an ancestor of any of those. Zero durations
// switch that step off.
type LifecycleRule struct {
	Service        string    `json:"service"`
	KeepLast       int       `json:"keepLast"`
	DeprecateAfter Duration  `json:"deprecateAfter,omitempty"` // "720h0m0s"
	DeleteAfter    Duration  `json:"deleteAfter,omitempty"`
	By             string    `json:"by,omitempty"`
	Time           time.Time `json:"time"`
	Seq            int64     `json:"seq"` // 1, 2, 3, ... each set of the service's rule
}

// Name is how marks and tombstones cite the rule ("lifecycle rule hello#2").
func (r LifecycleRule) Name() string { return fmt.Sprintf("lifecycle rule %s#%d", r.Service, r.Seq) }

// Check says what is wrong with a rule, naming the flag.
func (r LifecycleRule) Check() error {
	_, err := r.Problem()
	return err
}

// Problem is Check's refusal with the request field it is about (keepLast,
// deprecateAfter or deleteAfter), for the API's field errors.
func (r LifecycleRule) Problem() (field string, err error) {
	switch {
	case r.KeepLast < 0:
		return "keepLast", fmt.Errorf("--keep-last must be 0 or more, got %d", r.KeepLast)
	case r.DeprecateAfter < 0:
		return "deprecateAfter", fmt.Errorf("--deprecate-after must be positive, got %s", r.DeprecateAfter)
	case r.DeleteAfter < 0:
		return "deleteAfter", fmt.Errorf("--delete-after must be positive, got %s", r.DeleteAfter)
	case r.DeprecateAfter == 0 && r.DeleteAfter == 0:
		return "deprecateAfter", fmt.Errorf("a rule needs --deprecate-after or --delete-after (e.g. --deprecate-after 720h)")
	case r.DeprecateAfter > 0 && r.DeleteAfter > 0 && r.DeleteAfter < r.DeprecateAfter:
		return "deleteAfter", fmt.Errorf("--delete-after (%s) must not be shorter than --deprecate-after (%s)", r.DeleteAfter, r.DeprecateAfter)
	}
	return "", nil
}

// Deprecation marks an image deprecated by a lifecycle rule: new rollouts refuse
// it unless they allow deprecated images.
type Deprecation struct {
	ImageID string    `json:"imageId"`
	Rule    string    `json:"rule"`
	Time    time.Time `json:"time"`
}

// Tombstone is what stays of an image a lifecycle rule deleted: its record and
// this, for the audit; its archive and SBOM are gone.
type Tombstone struct {
	ImageID string    `json:"imageId"`
	Rule    string    `json:"rule"`
	Time    time.Time `json:"time"`
}

// Lifecycle actions of a decision.
const (
	LifecycleKeep      = "keep"
	LifecycleDeprecate = "deprecate"
	LifecycleDelete    = "delete"
)

// LifecycleDecision is what a lifecycle sweep does (or would do) to one image,
// and why.
type LifecycleDecision struct {
	ImageID string    `json:"imageId"`
	Service string    `json:"service"`
	Created time.Time `json:"created"`
	Action  string    `json:"action"` // LifecycleKeep, LifecycleDeprecate or LifecycleDelete
	Why     string    `json:"why"`    // "live in prod", "on channel stable", "older than 720h0m0s", ...
	Rule    string    `json:"rule"`   // the rule's Name
}

// LifecycleInput configures one lifecycle sweep.
type LifecycleInput struct {
	Apply bool `json:"apply,omitempty"` // deprecate and delete; without it, only report
}

// LifecycleResult is what a lifecycle sweep found and did.
type LifecycleResult struct {
	DryRun     bool                `json:"dryRun"`
	Decisions  []LifecycleDecision `json:"decisions"`
	Deprecated []string            `json:"deprecated,omitempty"`
	Deleted    []string            `json:"deleted,omitempty"`
	Failed     map[string]string   `json:"failed,omitempty"` // image ID -> why
	Summary    string              `json:"summary"`
}

// ApplyLifecycleInput is one decision to carry out, at Now.
type ApplyLifecycleInput struct {
	Decision LifecycleDecision `json:"decision"`
}

// ParseAge reads an image age of a lifecycle rule: whole days ("30d") or a Go
// duration ("720h"). (time.ParseDuration has no days, and ages are counted in them.)
func ParseAge(s string) (Duration, error) {
	bad := fmt.Errorf("%q: use whole days like 30d, or a duration like 720h", s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return 0, bad
		}
		return Duration(time.Duration(v) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return Duration(v), nil
}

// FormatAge prints whole days as "30d", anything else as a Go duration.
func FormatAge(d Duration) string {
	if d > 0 && d.D()%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d.D()/(24*time.Hour))
	}
	return d.String()
}
