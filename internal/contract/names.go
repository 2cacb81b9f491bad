package contract

import "go.temporal.io/sdk/temporal"

// Task queues imago's workers poll.
const (
	// TaskQueue is the task queue of workflows and most activities.
	TaskQueue = "imago"
	// BakeTaskQueue is where bakes build and test images (BakeBuild,
	// TestImage): long, heavy activities that a worker runs a few at a time and
	// lets finish longer when it stops.
	BakeTaskQueue = "imago-bake"
)

// Workflow types, as the worker registers them and histories name them.
const (
	WorkflowRollout  = "Rollout"
	WorkflowBake     = "Bake"
	WorkflowPipeline = "Pipeline"
	WorkflowReaper   = "Reaper"
	WorkflowCampaign = "Campaign"
)

// Activity types, as the worker registers them (the method names of
// activities.Activities) and histories name them. Workflows call activities by
// these names, so package workflows needs no activity code.
const (
	ActivityBakeBuild        = "BakeBuild"
	ActivityBakeDigest       = "BakeDigest"
	ActivityCampaignPlan     = "CampaignPlan"
	ActivityCampaignSpec     = "CampaignRolloutSpec"
	ActivityCheckSpec        = "CheckSpec"
	ActivityCheckFreeze      = "CheckFreeze" // a local activity
	ActivityFindCached       = "FindCached"
	ActivityFindOrphans      = "FindOrphans"
	ActivityFleetImage       = "FleetImage"
	ActivityLiveImages       = "LiveImages"
	ActivityMoveChannel      = "MoveChannel"
	ActivityNotify           = "Notify"
	ActivityPreviousImage    = "PreviousImage"
	ActivityProvision        = "Provision"
	ActivityPublishEvent     = "PublishEvent" // a local activity
	ActivityPublishImage     = "PublishImage"
	ActivityReadRoute        = "ReadRoute"
	ActivityRecordDeployment = "RecordDeployment"
	ActivityResizeFleet      = "ResizeFleet"
	ActivityResolveImage     = "ResolveImage"
	ActivityRunAnalysis      = "RunAnalysis"
	ActivityRunChecks        = "RunChecks"
	ActivityRunHook          = "RunHook"
	ActivityScaleFleet       = "ScaleFleet"
	ActivitySetRoute         = "SetRoute"
	ActivityStartDependents  = "StartDependents"
	ActivityTerminate        = "Terminate"
	ActivityTerminateByToken = "TerminateByToken"
	ActivityTestImage        = "TestImage"
	ActivityWaitHealthy      = "WaitHealthy"
)

// Activities lists every activity type above.
var Activities = []string{ActivityBakeBuild, ActivityBakeDigest, ActivityCampaignPlan, ActivityCampaignSpec, ActivityCheckFreeze, ActivityCheckSpec, ActivityFindCached,
	ActivityFindOrphans, ActivityFleetImage, ActivityLiveImages, ActivityMoveChannel, ActivityNotify, ActivityPreviousImage, ActivityProvision,
	ActivityPublishEvent, ActivityPublishImage, ActivityReadRoute, ActivityRecordDeployment, ActivityResizeFleet,
	ActivityResolveImage, ActivityRunAnalysis, ActivityRunChecks, ActivityRunHook, ActivityScaleFleet, ActivitySetRoute,
	ActivityStartDependents, ActivityTerminate, ActivityTerminateByToken, ActivityTestImage, ActivityWaitHealthy,
	ActivityDetectDrift, ActivityPlanLifecycle, ActivityApplyLifecycle}

// Query names.
const (
	QueryProgress = "progress"
	QueryInput    = "input" // a rollout's input
)

// SignalFreezeChanged tells a rollout held by a freeze to check again now
// (imago freeze end sends it); a rollout also checks on a timer, so a lost
// signal only delays it. The only signal imago's workflows take.
const SignalFreezeChanged = "freeze-changed"

// Update names.
const (
	UpdateApprove  = "approve"
	UpdateAbort    = "abort"
	UpdatePromote  = "promote"
	UpdateRollback = "rollback"
	// UpdateChecked answers once the rollout has checked its spec against
	// the worker's provider: nothing, or why the provider cannot run it (an
	// InvalidSpec error). rollouts.Start waits for it.
	UpdateChecked = "checked"
	// UpdateResume lets a halted campaign go on (its failed rollouts of the
	// current ring are tried again); abort ends it.
	UpdateResume = "resume"
)

// Search attributes that make rollouts, bakes and pipelines findable in the
// web UI and `imago rollout list`; all keywords.
var (
	ServiceAttr     = temporal.NewSearchAttributeKeyKeyword("ImagoService")
	EnvironmentAttr = temporal.NewSearchAttributeKeyKeyword("ImagoEnvironment")
	ImageAttr       = temporal.NewSearchAttributeKeyKeyword("ImagoImage")
	PhaseAttr       = temporal.NewSearchAttributeKeyKeyword("ImagoPhase")
	StrategyAttr    = temporal.NewSearchAttributeKeyKeyword("ImagoStrategy")
	// WatchBaseAttr marks a pipeline that watches a base channel
	// ("<service>/<channel>"), so StartDependents finds it.
	WatchBaseAttr = temporal.NewSearchAttributeKeyKeyword("ImagoBase")
)

// SearchAttributeKeys lists every search attribute above.
var SearchAttributeKeys = []temporal.SearchAttributeKeyKeyword{ServiceAttr, EnvironmentAttr, ImageAttr,
	PhaseAttr, StrategyAttr, WatchBaseAttr}

// Error types of non-retryable activity failures; workflows and tests match on them.
const (
	ErrImageNotFound = "ImageNotFound"
	ErrImageRevoked  = "ImageRevoked"
	ErrHealthTimeout = "HealthTimeout"
	// ErrInstancesExited: every instance of a fleet waited on has exited.
	ErrInstancesExited = "InstancesExited"
	ErrCheckFailed     = "CheckFailed"
	ErrProvider        = "ProviderRefused"
	// ErrEntrypointEnv: the image's entrypoint uses a variable the rollout's
	// env does not provide.
	ErrEntrypointEnv = "EntrypointEnv"
	// ErrTrafficGuard refuses a route that would send traffic only to dead fleets.
	ErrTrafficGuard = "TrafficGuard"
	// ErrAnalysisSpec fails RunAnalysis without retry: the analysis spec is
	// invalid or cannot be measured with this provider.
	ErrAnalysisSpec = "AnalysisSpec"
	// ErrInvalidSpec: a spec CheckSpec refused; the failure's details hold the
	// spec's problems.
	ErrInvalidSpec = "InvalidSpec"
	// ErrInvalidDeployment: a deployment the inventory refused.
	ErrInvalidDeployment = "InvalidDeployment"
)

// Error types of bake failures.
const (
	ErrTemplate    = "TemplateError"
	ErrImageTest   = "ImageTestFailed"
	ErrBaseRevoked = "BaseRevoked"
	ErrBakeFenced  = "BakeFenced"
	// ErrProvisionFailed: a provision step that fails again when retried (an
	// Ansible task that failed).
	ErrProvisionFailed = "ProvisionFailed"
)
