package contract

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// A campaign rolls one image change across many services and environments,
// ring by ring (workflows/campaign.go). CampaignSpec is its YAML form, which
// package spec decodes and validates (spec.ParseCampaign).
//
//	name: base-2026-12
//	services: [api, web, worker]
//	image: {channel: stable}
//	rings:
//	  - {environments: [staging], parallel: 10}
//	  - {environments: [prod], parallel: 5, approval: {required: true}, bakeTime: 1h}
//	errorBudget: {maxFailed: 2, maxFailedPercent: 5}
//	override: {fleet: {size: 3}}
type CampaignSpec struct {
	Name     string   `yaml:"name" json:"name"`
	Services []string `yaml:"services" json:"services,omitempty"`
	// Select picks the services instead of Services: every service with an
	// image built on an image its base channel named.
	Select *CampaignSelect `yaml:"select" json:"select,omitempty"`
	// Image is what each service rolls: the image its own channel names
	// (channel), resolved once when the campaign starts. Without a channel a
	// campaign that selects by base rebuilds each service on the base's
	// current image (its last bake spec, through the Bake workflow) and rolls
	// what that bake made.
	Image       CampaignImage     `yaml:"image" json:"image"`
	Rings       []Ring            `yaml:"rings" json:"rings"`
	ErrorBudget ErrorBudget       `yaml:"errorBudget" json:"errorBudget"`
	Override    *CampaignOverride `yaml:"override" json:"override,omitempty"`
}

// CampaignSelect selects a campaign's services: those built on Base, those
// whose newest image carries every one of Labels (as bake specs and imports
// label images), or, with both, those that are both.
type CampaignSelect struct {
	Base   *ImageRef         `yaml:"base" json:"base,omitempty"` // {service, channel}
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
}

// String says which services s selects: "services built on base-os/stable
// labeled {team: payments}".
func (s CampaignSelect) String() string {
	out := "services"
	if s.Base != nil {
		out += " built on " + s.Base.Service + "/" + s.Base.Channel
	}
	if len(s.Labels) > 0 {
		kv := make([]string, 0, len(s.Labels))
		for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
			kv = append(kv, k+": "+s.Labels[k])
		}
		out += " labeled {" + strings.Join(kv, ", ") + "}"
	}
	return out
}

// Rebuilds tells whether the campaign rebuilds each service on its selected
// base instead of rolling what a channel names.
func (s CampaignSpec) Rebuilds() bool {
	return s.Select != nil && s.Select.Base != nil && s.Image.Channel == ""
}

// CampaignImage names the image a campaign rolls for each service.
type CampaignImage struct {
	Channel string `yaml:"channel" json:"channel"`
}

// Ring is one step of a campaign: the environments it rolls to, at most
// Parallel rollouts at a time; the next ring starts only when this one is done
// (and, when it has one, after its approval and its bake time).
type Ring struct {
	Environments []string     `yaml:"environments" json:"environments"`
	Regions      []string     `yaml:"regions" json:"regions,omitempty"` // not supported yet: refused by validation
	Parallel     int          `yaml:"parallel" json:"parallel"`
	Approval     ApprovalSpec `yaml:"approval" json:"approval"`
	// BakeTime is how long the campaign waits after the ring before the next one.
	BakeTime Duration `yaml:"bakeTime" json:"bakeTime,omitempty"`
}

// ErrorBudget is how many failed rollouts halt a campaign: MaxFailed of them,
// or MaxFailedPercent of all its rollouts, whichever comes first (0: not this
// bound). With neither, the first failure halts it.
type ErrorBudget struct {
	MaxFailed        int `yaml:"maxFailed" json:"maxFailed,omitempty"`
	MaxFailedPercent int `yaml:"maxFailedPercent" json:"maxFailedPercent,omitempty"`
}

// CampaignFleet overrides the fleet of a rollout spec.
type CampaignFleet struct {
	Size int `yaml:"size" json:"size"`
}

// CampaignOverride replaces fields of each service's last rollout spec: each
// field given replaces that field whole.
type CampaignOverride struct {
	Fleet    *CampaignFleet `yaml:"fleet" json:"fleet,omitempty"`
	Health   *Health        `yaml:"health" json:"health,omitempty"`
	Checks   []Check        `yaml:"checks" json:"checks,omitempty"`
	Strategy *Strategy      `yaml:"strategy" json:"strategy,omitempty"`
	Approval *ApprovalSpec  `yaml:"approval" json:"approval,omitempty"`
	BakeTime *BakeTime      `yaml:"bakeTime" json:"bakeTime,omitempty"`
	Soak     *Duration      `yaml:"soak" json:"soak,omitempty"`
	Windows  Windows        `yaml:"windows" json:"windows,omitempty"`
	Notify   []NotifyTarget `yaml:"notify" json:"notify,omitempty"`
}

// DefaultCampaignMaxEvents is the history length past which a campaign
// continues as new (between rollouts), unless the server suggests it sooner.
const DefaultCampaignMaxEvents = 4000

// CampaignInput starts (or continues) a campaign.
type CampaignInput struct {
	Spec      CampaignSpec `json:"spec"`
	StartedBy string       `json:"startedBy,omitempty"`
	// Progress is the progress carried over by continue-as-new; nil for a new campaign.
	Progress *CampaignProgress `json:"progress,omitempty"`
	// MaxEvents overrides DefaultCampaignMaxEvents (tests).
	MaxEvents int `json:"maxEvents,omitempty"`
}

// TargetState is the state of one rollout of a campaign.
type TargetState string

// Target states.
const (
	TargetPending   TargetState = "pending"
	TargetRunning   TargetState = "running"
	TargetSucceeded TargetState = "succeeded"
	TargetFailed    TargetState = "failed"
	// TargetUnchanged: the image was already live there.
	TargetUnchanged TargetState = "unchanged"
	// TargetSkipped: the service failed in an earlier ring, or the campaign
	// was aborted before it started.
	TargetSkipped TargetState = "skipped"
)

// CampaignTarget is one service in one environment of a ring.
type CampaignTarget struct {
	Service     string      `json:"service"`
	Environment string      `json:"environment"`
	ImageID     string      `json:"imageId,omitempty"`
	State       TargetState `json:"state"`
	RolloutID   string      `json:"rolloutId,omitempty"`
	RunID       string      `json:"runId,omitempty"`
	Error       string      `json:"error,omitempty"`
	Attempts    int         `json:"attempts,omitempty"`
}

// RingState is the state of a ring.
type RingState string

// Ring states.
const (
	RingPending  RingState = "pending"
	RingWaiting  RingState = "awaiting-approval"
	RingRunning  RingState = "running"
	RingBaking   RingState = "bake-time"
	RingDone     RingState = "done"
	RingHalted   RingState = "halted"
	RingNotStart RingState = "not-started"
)

// RingStatus is one ring as the progress query shows it.
type RingStatus struct {
	Environments []string         `json:"environments"`
	State        RingState        `json:"state"`
	Approval     *Decision        `json:"approval,omitempty"`
	Targets      []CampaignTarget `json:"targets"`
}

// CampaignProgress answers a campaign's progress query; continue-as-new
// carries it over, so no rollout is done twice.
type CampaignProgress struct {
	Story               // phase, events, eventCount
	Name      string    `json:"name"`
	StartedBy string    `json:"startedBy,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// Images is the image each service rolls, resolved when the campaign started.
	Images map[string]string `json:"images,omitempty"`
	Ring   int               `json:"ring"` // the ring in progress (len(Rings) when all are done)
	Rings  []RingStatus      `json:"rings"`
	// Failed counts failed rollouts; Budget is the failures that halt the
	// campaign (since the last resume), BudgetBase the count at that resume.
	Failed     int        `json:"failed"`
	Budget     int        `json:"budget"`
	BudgetBase int        `json:"budgetBase,omitempty"`
	Halted     bool       `json:"halted,omitempty"`
	Gate       string     `json:"gate,omitempty"` // the ring waiting for approval ("ring 2: prod")
	Runs       int        `json:"runs"`           // continue-as-new generations so far, 1 for the first run
	Error      string     `json:"error,omitempty"`
	Resumes    []Decision `json:"resumes,omitempty"`
	// Bakes are the rebuilds of a campaign that rebuilds on its base, one per
	// service, before its first ring.
	Bakes []CampaignBake `json:"bakes,omitempty"`
}

// CampaignBake is the rebuild of one service on a campaign's base: a child
// Bake workflow (the usual bake ID, bake/SERVICE/CHANNEL).
type CampaignBake struct {
	Service string      `json:"service"`
	State   TargetState `json:"state"`
	// Level orders the bakes: a service built on one the campaign rebuilds
	// too is baked at a later level.
	Level    int    `json:"level"`
	BakeID   string `json:"bakeId,omitempty"`
	RunID    string `json:"runId,omitempty"`
	ImageID  string `json:"imageId,omitempty"`
	Cached   bool   `json:"cached,omitempty"`
	Error    string `json:"error,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// CampaignResult is what a campaign did.
type CampaignResult struct {
	Reason    string       `json:"reason"`
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
	Unchanged int          `json:"unchanged"`
	Skipped   int          `json:"skipped"`
	Rings     []RingStatus `json:"rings"`
}

// CampaignPlanInput asks for what a campaign rolls: each service's image and
// the environments it is deployed to.
type CampaignPlanInput struct {
	Services     []string        `json:"services,omitempty"`
	Select       *CampaignSelect `json:"select,omitempty"` // instead of Services
	Image        CampaignImage   `json:"image"`
	Environments []string        `json:"environments"` // the rings' environments
	// Rebuild asks for each service's bake spec on Select's base instead of
	// a channel's image.
	Rebuild bool `json:"rebuild,omitempty"`
}

// CampaignPlanResult answers CampaignPlanInput.
type CampaignPlanResult struct {
	// Services are the campaign's services: Select's, or the input's.
	Services []string          `json:"services"`
	Images   map[string]string `json:"images"` // service → image ID
	// Deployed is, per service, the environments (of those asked) where it
	// has a live deployment; Live the image live there ("service/env" → ID).
	Deployed map[string][]string `json:"deployed"`
	Live     map[string]string   `json:"live,omitempty"`
	// Bakes, for a rebuild, are each service's bake spec on the new base, in
	// level order (Images then stays empty).
	Bakes []CampaignBakePlan `json:"bakes,omitempty"`
}

// CampaignBakePlan is how a campaign rebuilds one service: the spec of the
// bake that made its newest image built on the base, its base the campaign's
// base. Error says why it cannot be rebuilt (no bake spec kept); the
// campaign counts that as a failed bake.
type CampaignBakePlan struct {
	Service string `json:"service"`
	Level   int    `json:"level"`
	Spec    *Bake  `json:"spec,omitempty"`
	Error   string `json:"error,omitempty"`
}

// CampaignRolloutSpecInput asks for the rollout spec of a campaign's target:
// the spec of the service's last deployment there, with the image and the
// campaign's override applied.
type CampaignRolloutSpecInput struct {
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	ImageID     string            `json:"imageId"`
	Override    *CampaignOverride `json:"override,omitempty"`
}

// CampaignRolloutSpecResult is the rollout spec (JSON of spec.Rollout).
type CampaignRolloutSpecResult struct {
	Spec json.RawMessage `json:"spec"`
}

// CampaignWorkflowID is the workflow ID of campaign name: one run at a time.
func CampaignWorkflowID(name string) string { return "campaign/" + name }
