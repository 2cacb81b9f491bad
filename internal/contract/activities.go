package contract

import "time"

// ResolveImageInput names an image: by ID or by a channel of the service.
type ResolveImageInput struct {
	Service string   `json:"service"`
	Ref     ImageRef `json:"ref"`
	// Env names the variables of the rollout's env: every variable the
	// image's entrypoint uses must be PORT, HOST or one of them.
	Env []string `json:"env,omitempty"`
	// Environment is the rollout's environment: its policy (imago policy set)
	// must accept the image. Empty (a pipeline pinning its image): no policy.
	Environment string `json:"environment,omitempty"`
}

// ResolveImageResult is the image a rollout ships.
type ResolveImageResult struct {
	ImageID string `json:"imageId"`
	Digest  string `json:"digest"`
	Service string `json:"service"`
}

// TerminateByTokenInput names the fleets one provision request made.
type TerminateByTokenInput struct {
	Token       string `json:"token"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
}

// SetRouteInput is a traffic switch.
type SetRouteInput struct {
	Key RouteKey `json:"key"`
	// Shares is the route by fleet: SetRoute looks each fleet's targets up, so
	// a route over thousands of instances costs a rollout's history a few bytes.
	Shares []FleetShare `json:"shares,omitempty"`
	// Route is the router's address (Listen) and, without Shares, the route
	// with every target spelled out, as rollouts started before Shares send it.
	Route Route `json:"route"`
	// HealthPath, when set, arms the traffic guard: every fleet the route sends
	// traffic to must have a healthy instance, or the switch is refused.
	HealthPath string `json:"healthPath,omitempty"`
}

// FleetShare is one fleet's share of a route, by reference.
type FleetShare struct {
	FleetID string `json:"fleetId"`
	Weight  int    `json:"weight"`
	// Instances routes to the fleet's first Instances instances, in fleet
	// order: the ones a resize to that size keeps (see provider.Resizer).
	// 0 routes to all of them.
	Instances int `json:"instances,omitempty"`
}

// ResizeInput grows or shrinks a fleet.
type ResizeInput struct {
	FleetID string `json:"fleetId"`
	Size    int    `json:"size"`
}

// ResizeResult is a resized fleet, by count.
type ResizeResult struct {
	FleetID   string `json:"fleetId"`
	Instances int    `json:"instances"`
}

// TerminateInput names a fleet to stop.
type TerminateInput struct {
	FleetID string `json:"fleetId"`
}

// BakeDigestResult identifies a bake's inputs.
type BakeDigestResult struct {
	InputDigest string `json:"inputDigest"`
	BaseImageID string `json:"baseImageId,omitempty"`
	// BaseOCIDigest is the manifest digest of an OCI base (base: {oci: …}).
	BaseOCIDigest string `json:"baseOciDigest,omitempty"`
}

// FindCachedInput looks up an image by input digest.
type FindCachedInput struct {
	Service     string `json:"service"`
	InputDigest string `json:"inputDigest"`
}

// FindCachedResult is the cache lookup's answer.
type FindCachedResult struct {
	Found bool  `json:"found"`
	Image Image `json:"image"`
}

// BakeBuildInput builds an image.
type BakeBuildInput struct {
	Spec        Bake   `json:"spec"`
	InputDigest string `json:"inputDigest"`
	BaseImageID string `json:"baseImageId,omitempty"`
	// BaseOCIDigest pins the OCI base the input digest read (BakeDigestResult).
	BaseOCIDigest string `json:"baseOciDigest,omitempty"`
	// BuildID names the bake run (workflow ID and run ID): each run builds in a
	// directory of its own, which its retried attempts adopt. Empty (a bake
	// scheduled before it existed): the input digest's directory.
	BuildID string `json:"buildId,omitempty"`
}

// BakeBuildResult is a built, not yet published image.
type BakeBuildResult struct {
	Image       Image  `json:"image"`
	ArchivePath string `json:"archivePath,omitempty"` // local images
	Adopted     bool   `json:"adopted"`               // a previous attempt had finished it
	// OCIDestinations are where PublishImage writes the OCI image (format: oci).
	OCIDestinations []string `json:"ociDestinations,omitempty"`
	// Spec is the bake that built the image; the catalog keeps it, so a
	// campaign can rebuild the service on a new base.
	Spec *Bake `json:"spec,omitempty"`
}

// TestImageInput boots one instance of a freshly built image.
type TestImageInput struct {
	Image  Image   `json:"image"`
	Token  string  `json:"token"`
	Health Health  `json:"health"`
	Checks []Check `json:"checks,omitempty"`
}

// PublishImageInput publishes a built image.
type PublishImageInput struct {
	Image       Image  `json:"image"`
	ArchivePath string `json:"archivePath,omitempty"`
	// OCIDestinations get the OCI image of the archive (whose manifest digest is
	// Image.OCIDigest) before the image is recorded.
	OCIDestinations []string `json:"ociDestinations,omitempty"`
	// Spec is the bake that built the image; the catalog keeps it, so a
	// campaign can rebuild the service on a new base.
	Spec *Bake `json:"spec,omitempty"`
}

// MoveChannelInput moves a channel.
type MoveChannelInput struct {
	Service string `json:"service"`
	Channel string `json:"channel"`
	ImageID string `json:"imageId"`
	By      string `json:"by,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// WaitHealthyInput asks for every instance of a fleet to pass its health probe.
type WaitHealthyInput struct {
	FleetID  string        `json:"fleetId"`
	Path     string        `json:"path"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	// From skips the fleet's first From instances (fleet order): a rolling
	// wave probes only the instances it added.
	From int `json:"from,omitempty"`
	// AtLeast, when set, is enough: the wait ends once that many pass (a
	// canary's minHealthyPercent before a traffic increase).
	AtLeast int `json:"atLeast,omitempty"`
}

// WaitHealthyResult reports how the fleet came up.
type WaitHealthyResult struct {
	Healthy int           `json:"healthy"`
	Took    time.Duration `json:"took"`
}

// HealthProgress is the heartbeat of WaitHealthy; a retried attempt resumes the
// same deadline from it instead of starting a new one.
type HealthProgress struct {
	Started time.Time `json:"started"`
	Healthy int       `json:"healthy"`
	Total   int       `json:"total"`
}

// RunChecksInput runs smoke checks against every instance of a fleet.
type RunChecksInput struct {
	FleetID string  `json:"fleetId"`
	Checks  []Check `json:"checks"`
	// From skips the fleet's first From instances, as WaitHealthyInput.From.
	From int `json:"from,omitempty"`
}

// PreviousImageInput asks for the image to roll back to.
type PreviousImageInput struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
}

// PreviousImageResult is the image to roll back to, and the live one it replaces.
type PreviousImageResult struct {
	ImageID string `json:"imageId"`
	From    string `json:"from"` // the image serving now
}

// LiveImagesInput asks which image is live in each environment of a service.
type LiveImagesInput struct {
	Service      string   `json:"service"`
	Environments []string `json:"environments"`
}

// StartDependentsInput says which channel just moved.
type StartDependentsInput struct {
	Service string `json:"service"`
	Channel string `json:"channel"`
	ImageID string `json:"imageId"`
}

// StartDependentsResult names the schedules whose pipelines were started, and
// those that opted in but are paused.
type StartDependentsResult struct {
	Triggered []string `json:"triggered,omitempty"`
	Paused    []string `json:"paused,omitempty"`
}

// FleetImageInput names a fleet whose image a canary's baseline starts from.
type FleetImageInput struct {
	FleetID string `json:"fleetId"`
}

// FleetImageResult is a fleet's image and how many instances it has.
type FleetImageResult struct {
	FleetID   string `json:"fleetId"`
	ImageID   string `json:"imageId"`
	Instances int    `json:"instances"`
}

// FindOrphansInput says how old an unreferenced fleet must be to count as leaked.
type FindOrphansInput struct {
	Grace time.Duration `json:"grace"`
}

// Orphan is a fleet nothing references: no route sends it traffic, no running
// rollout or bake of its service and environment owns it, and it is older than
// the grace period.
type Orphan struct {
	FleetID     string    `json:"fleetId"`
	Service     string    `json:"service"`
	Environment string    `json:"environment"`
	ImageID     string    `json:"imageId"`
	Instances   int       `json:"instances"`
	Created     time.Time `json:"created"`
	// Role is the fleet's role label, when it has one: LabelRoleBaseline
	// for a canary's baseline fleet.
	Role string `json:"role,omitempty"`
}

// The label that says a fleet's role in a rollout, and its value on a
// canary's baseline fleet (the new fleet has none).
const (
	LabelRole         = "role"
	LabelRoleBaseline = "baseline"
)

// FindOrphansResult lists the orphans, and how many fleets were kept and why.
type FindOrphansResult struct {
	Provider string   `json:"provider"`
	Orphans  []Orphan `json:"orphans,omitempty"`
	Routed   int      `json:"routed"`  // kept: a route sends them traffic
	Busy     int      `json:"busy"`    // kept: a running rollout or bake may own them
	Young    int      `json:"young"`   // kept: younger than the grace period
	Checked  int      `json:"checked"` // fleets listed
}
