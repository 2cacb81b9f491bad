package contract

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Fleet is a group of identical instances started from one image.
type Fleet struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	Region      string            `json:"region,omitempty"` // the rollout's target region, "" for none
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
	Token       string `json:"token"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	// Region is the rollout's target region ("" for none): the local provider
	// keeps it with the fleet; its router is the RouteKey's of that region.
	Region  string            `json:"region,omitempty"`
	ImageID string            `json:"imageId"`
	Size    int               `json:"size"`
	Labels  map[string]string `json:"labels,omitempty"`
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
	// Region, when set, is a router of its own: the same service and
	// environment in two regions are two independent routers.
	Region string `json:"region,omitempty"`
}

func (k RouteKey) String() string { return Place(k.Environment, k.Region) + "/" + k.Service }

// Route is the traffic split of one router.
type Route struct {
	// Listen is the address the router serves the service on (local driver).
	Listen string `json:"listen,omitempty"`
	// Backends are the fleets that receive traffic, with their weights (sum 100).
	Backends []Backend `json:"backends"`
	RouteRules
}

// RouteRules are what a route does besides splitting by weight (the JSON
// fields sit beside backends): requests matched by header or cookie, sticky
// sessions and mirroring, as Argo Rollouts' setHeaderRoute, stickiness and
// setMirrorRoute. Every fleet they name is one of the route's backends with
// targets (its weight may be 0). A driver needs CapHeaderRoutes, CapStickiness
// and CapMirror for them.
type RouteRules struct {
	// Matches send a request that matches one of a MatchRoute's rules to its
	// fleet, whatever the weights; the first MatchRoute that matches wins.
	Matches []MatchRoute `json:"matches,omitempty"`
	// Stickiness keeps a client on the fleet it first got, by cookie, while
	// that fleet keeps a weight.
	Stickiness *Stickiness `json:"stickiness,omitempty"`
	// Mirror copies a share of the requests to a fleet; its answers are
	// discarded and never delay the live ones.
	Mirror *Mirror `json:"mirror,omitempty"`
}

// Empty reports whether there is no rule.
func (rr RouteRules) Empty() bool {
	return len(rr.Matches) == 0 && rr.Stickiness == nil && rr.Mirror == nil
}

// String says what the rules do, for people ("header route canary: header
// X-Canary=1 or cookie imago-canary=1 → fl-…; mirror 50% → fl-…; sticky by
// cookie imago-fleet for 1h0m0s"); "" when there is none.
func (rr RouteRules) String() string {
	var out []string
	for _, m := range rr.Matches {
		var what []string
		for _, r := range m.Match {
			if r.Header != "" {
				what = append(what, "header "+r.Header+"="+r.Exact)
			} else {
				what = append(what, "cookie "+r.Cookie+"="+r.Exact)
			}
		}
		out = append(out, fmt.Sprintf("header route %s: %s → %s", m.Name, strings.Join(what, " or "), m.FleetID))
	}
	if m := rr.Mirror; m != nil {
		out = append(out, fmt.Sprintf("mirror %d%% → %s", m.Percent, m.FleetID))
	}
	if s := rr.Stickiness; s != nil {
		out = append(out, fmt.Sprintf("sticky by cookie %s for %s", s.Cookie, s.TTL))
	}
	return strings.Join(out, "; ")
}

// MatchRoute sends the requests that match any of its rules to FleetID.
type MatchRoute struct {
	Name    string      `json:"name"`
	FleetID string      `json:"fleetId"`
	Match   []MatchRule `json:"match"`
}

// MatchRule matches a request whose header (or cookie) of that name has
// exactly the value Exact. Exactly one of Header and Cookie is set.
type MatchRule struct {
	Header string `yaml:"header" json:"header,omitempty"`
	Cookie string `yaml:"cookie" json:"cookie,omitempty"`
	Exact  string `yaml:"exact" json:"exact"`
}

// Stickiness names the cookie that pins a client to a fleet and how long it
// lasts.
type Stickiness struct {
	Cookie string   `yaml:"cookie" json:"cookie"`
	TTL    Duration `yaml:"ttl" json:"ttl"`
}

// Mirror copies Percent of the requests to FleetID.
type Mirror struct {
	FleetID string `json:"fleetId"`
	Percent int    `json:"percent"`
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

// Serves reports whether fleetID receives any traffic through the route: a
// weight, a match that sends requests to it, or mirrored copies.
func (r Route) Serves(fleetID string) bool {
	if r.Weight(fleetID) > 0 || (r.Mirror != nil && r.Mirror.FleetID == fleetID) {
		return true
	}
	for _, m := range r.Matches {
		if m.FleetID == fleetID {
			return true
		}
	}
	return false
}

// FleetIDs returns the IDs of the fleets in the route, sorted.
func (r Route) FleetIDs() []string {
	out := make([]string, 0, len(r.Backends))
	for _, b := range r.Backends {
		out = append(out, b.FleetID)
	}
	sort.Strings(out)
	return out
}

// FleetMetrics are one fleet's traffic counters as its router counts them. All
// values are cumulative since the router started (Prometheus counters): a rate
// over a window is the difference of two readings, and a reading lower than the
// previous one means the router restarted.
type FleetMetrics struct {
	// Requests is the number of requests the router sent to the fleet.
	Requests float64 `json:"requests"`
	// Errors is the number of those answered with a 5xx status.
	Errors float64 `json:"errors"`
	// Latency is the distribution of request durations through the router, in seconds.
	Latency Histogram `json:"latency"`
}

// Histogram is a cumulative histogram, as in the Prometheus exposition format.
type Histogram struct {
	// Buckets have finite upper bounds, ascending; each Count is the number of
	// observations <= UpperBound. The implicit +Inf bucket is Count.
	Buckets []HistogramBucket `json:"buckets"`
	// Sum is the sum of all observations.
	Sum float64 `json:"sum"`
	// Count is the number of all observations.
	Count float64 `json:"count"`
}

// HistogramBucket is one cumulative bucket of a Histogram.
type HistogramBucket struct {
	UpperBound float64 `json:"upperBound"`
	Count      float64 `json:"count"`
}
