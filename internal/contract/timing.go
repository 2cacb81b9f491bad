package contract

import "time"

// Timing is how long a fleet of an image took to come up in an environment,
// as a rollout measured it: what `imago plan` assumes for the next rollout
// there instead of a default.
type Timing struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	ImageID     string `json:"imageId"`
	FleetID     string `json:"fleetId"`
	Instances   int    `json:"instances"`
	// Provision is from the fleet's creation until its health wait began:
	// the provider's work and the rollout's own steps in between.
	Provision time.Duration `json:"provision"`
	// Healthy is how long the health wait took until every instance passed:
	// boot and health probe together.
	Healthy  time.Duration `json:"healthy"`
	Measured time.Time     `json:"measured"`
}
