package contract

import "time"

// WorkflowDrift compares what the provider runs with what the inventory says is
// live (see workflows.Drift); ActivityDetectDrift does the comparison.
const (
	WorkflowDrift       = "Drift"
	ActivityDetectDrift = "DetectDrift"
	// EventDriftDetected is published once per service and environment a drift
	// check found drift in.
	EventDriftDetected = "dev.imago.drift.detected"
)

// DriftInput selects what a drift check compares; empty fields match every
// service or environment.
type DriftInput struct {
	Service     string `json:"service,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// The kinds of drift.
const (
	// DriftMissingInstance: an instance of the live fleet does not run (it
	// exited, was killed, or is stopped).
	DriftMissingInstance = "missing-instance"
	// DriftOtherImage: the live fleet runs another image than the inventory's.
	DriftOtherImage = "other-image"
	// DriftMissingFleet: the provider has no fleet the inventory says is live.
	DriftMissingFleet = "missing-fleet"
	// DriftExtraFleet: a fleet no rollout made live and none is making now;
	// its running instances are extra.
	DriftExtraFleet = "extra-fleet"
	// DriftRoute: the router does not send all traffic to the live fleet (or
	// carries header, cookie or mirror rules no finished rollout leaves).
	DriftRoute = "route-differs"
)

// DriftItem is one difference between the provider and the inventory.
type DriftItem struct {
	Kind       string `json:"kind"`
	FleetID    string `json:"fleetId,omitempty"`
	InstanceID string `json:"instanceId,omitempty"`
	PID        int    `json:"pid,omitempty"`
	Image      string `json:"image,omitempty"` // what runs (other-image, extra-fleet)
	Want       string `json:"want,omitempty"`  // what the inventory says
	Detail     string `json:"detail"`          // in words
}

// DriftTarget is the drift check of one service in one environment.
type DriftTarget struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	LiveImage   string `json:"liveImage,omitempty"` // the inventory's; "" when nothing is live
	LiveFleet   string `json:"liveFleet,omitempty"`
	// Instances counts the instances that drift: missing, running another
	// image, or extra (the metric imago_drift_instances).
	Instances int         `json:"instances"`
	Items     []DriftItem `json:"items,omitempty"`
	// Skipped says why the target was not compared (a rollout of it runs).
	Skipped string    `json:"skipped,omitempty"`
	Checked time.Time `json:"checked"`
}

// Drifted reports whether the check found anything.
func (t DriftTarget) Drifted() bool { return len(t.Items) > 0 }

// DriftReport is the result of one drift check.
type DriftReport struct {
	Provider string        `json:"provider"`
	Targets  []DriftTarget `json:"targets"`
	// Instances is the sum of the targets' Instances.
	Instances int    `json:"instances"`
	Summary   string `json:"summary"`
}
