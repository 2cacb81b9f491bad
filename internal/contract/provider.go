package contract

import (
	"sort"
	"time"
)

// Fleet is a group of identical instances started from one image.
type Fleet struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	ImageID     string            `json:"imageId"`
	Token       string            `json:"token"`
	Labels      map[string]string `json:"labels,omitempty"`
	Instances   []Instance        `json:"instances"`
	Created     time.Time         `json:"created"`
}

// Instance is one member of a fleet.
type Instance struct {
	ID      string `json:"id"`
	Address string `json:"address"` // host:port the instance serves on
	PID     int    `json:"pid,omitempty"`
	State   string `json:"state"` // InstanceRunning, InstanceStopped, InstanceExited
	// Exit says how an exited instance ended ("exit status 3", "signal:
	// killed"), when the provider knows; empty otherwise.
	Exit string `json:"exit,omitempty"`
	// Log is where an exited instance's output went (a path, a URL), and
	// LogTail its last lines, when the provider can tell.
	Log     string   `json:"log,omitempty"`
	LogTail []string `json:"logTail,omitempty"`
}

// Instance states. Stopped is an instance not running yet or any more, that
// may still come up (launching, being replaced); Exited is one whose process
// ran and ended, and will not come back unless the fleet is provisioned again.
const (
	InstanceRunning = "running"
	InstanceStopped = "stopped"
	InstanceExited  = "exited"
)

// Addresses returns the addresses of the fleet's instances, in instance order.
func (f Fleet) Addresses() []string {
	out := make([]string, 0, len(f.Instances))
	for _, in := range f.Instances {
		out = append(out, in.Address)
	}
	return out
}

// ProvisionRequest asks for a new fleet. Token makes it idempotent: a second request
// with the same token returns (and repairs) the fleet the first one made.
type ProvisionRequest struct {
	Token       string            `json:"token"`
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	ImageID     string            `json:"imageId"`
	Size        int               `json:"size"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Provider is the provider the spec names; a worker running another one refuses.
	Provider string `json:"provider,omitempty"`
	// Health is how the spec says an instance is checked (its health section).
	// Drivers whose load balancer health-checks instances on its own (aws: the
	// target group) configure it from here; nil leaves the driver's default.
	Health *HealthCheck `json:"health,omitempty"`
	// Env is given to every instance besides PORT and HOST, and expands the
	// image's entrypoint ($NAME, ${NAME}). A secret is a reference here, which
	// the driver resolves on the worker when instances start: its value never
	// travels in a request. A driver that cannot give instances an environment
	// refuses a request with Env (InvalidArgument).
	Env map[string]EnvVar `json:"env,omitempty"`
}

// EnvVar is one variable of ProvisionRequest.Env: a plain Value, or a Secret
// reference (file:///abs/path, https://…; see package secretref).
type EnvVar struct {
	Value  string `json:"value,omitempty"`
	Secret string `json:"secret,omitempty"`
}

// HealthCheck is a health probe: GET Path must answer 2xx. Zero fields leave
// the driver's default; a driver rounds each to what its backend supports.
type HealthCheck struct {
	Path string `json:"path"`
	// Interval between two probes of one instance.
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout of one probe.
	Timeout time.Duration `json:"timeout,omitempty"`
	// HealthyThreshold is how many probes in a row must pass before an
	// unhealthy instance counts as healthy again.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is how many probes in a row must fail before an
	// instance counts as unhealthy.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
}

// RouteKey names a router: one per service and environment.
type RouteKey struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
}

func (k RouteKey) String() string { return k.Environment + "/" + k.Service }

// Route is the traffic split of one router.
type Route struct {
	// Listen is the address the router serves the service on (local driver).
	Listen string `json:"listen,omitempty"`
	// Backends are the fleets that receive traffic, with their weights (sum 100).
	Backends []Backend `json:"backends"`
}

// Backend is one fleet's share of a route.
type Backend struct {
	FleetID string   `json:"fleetId"`
	Weight  int      `json:"weight"`
	Targets []string `json:"targets"` // instance addresses
}

// Weight returns the weight of fleetID in the route, 0 when it is not routed.
func (r Route) Weight(fleetID string) int {
	for _, b := range r.Backends {
		if b.FleetID == fleetID {
			return b.Weight
		}
	}
	return 0
}

// Serves reports whether fleetID receives any traffic through the route.
func (r Route) Serves(fleetID string) bool { return r.Weight(fleetID) > 0 }

// FleetIDs returns the IDs of the fleets in the route, sorted.
func (r Route) FleetIDs() []string {
	out := make([]string, 0, len(r.Backends))
	for _, b := range r.Backends {
		out = append(out, b.FleetID)
	}
	sort.Strings(out)
	return out
}
