package provider

import "strings"

// Capability is something a driver may or may not do beyond the Driver
// interface. The rollout strategies need some of them: a canary needs CapWeights,
// a rolling rollout CapWeights and CapResize, a router analysis CapFleetMetrics.
type Capability string

// Capabilities a driver can have.
const (
	// CapWeights: the router splits traffic between fleets by weight (30/70), not
	// only all to one fleet. A driver without it refuses split routes.
	CapWeights Capability = "weights"
	// CapResize: fleets grow and shrink in place (Resizer).
	CapResize Capability = "resize"
	// CapFleetMetrics: the router counts requests, errors and latency per fleet
	// (MetricsDriver).
	CapFleetMetrics Capability = "fleetMetrics"
	// CapHeaderRoutes: the router sends requests matched by a header or a
	// cookie to a fleet, whatever the weights (Route.Matches).
	CapHeaderRoutes Capability = "headerRoutes"
	// CapStickiness: the router keeps a client on one fleet by cookie
	// (Route.Stickiness).
	CapStickiness Capability = "stickiness"
	// CapMirror: the router copies a share of requests to a fleet
	// (Route.Mirror).
	CapMirror Capability = "mirror"
)

// AllCapabilities lists every Capability, in the order they are reported.
var AllCapabilities = []Capability{CapWeights, CapResize, CapFleetMetrics, CapHeaderRoutes, CapStickiness, CapMirror}

// Describe says what the capability gives, for error messages.
func (c Capability) Describe() string {
	switch c {
	case CapWeights:
		return "routes that split traffic between fleets by weight"
	case CapResize:
		return "fleets that grow and shrink in place"
	case CapFleetMetrics:
		return "per-fleet request metrics from its router"
	case CapHeaderRoutes:
		return "routes that send requests to a fleet by header or cookie"
	case CapStickiness:
		return "sticky sessions that keep a client on one fleet"
	case CapMirror:
		return "routes that mirror requests to a fleet"
	}
	return string(c)
}

// Capabilities is the set of capabilities of a driver.
type Capabilities map[Capability]bool

// CapabilitiesOf returns caps as a set.
func CapabilitiesOf(caps ...Capability) Capabilities {
	s := Capabilities{}
	for _, c := range caps {
		s[c] = true
	}
	return s
}

// Has reports whether c is in the set.
func (s Capabilities) Has(c Capability) bool { return s[c] }

// List returns the set's capabilities in AllCapabilities order.
func (s Capabilities) List() []Capability {
	var out []Capability
	for _, c := range AllCapabilities {
		if s[c] {
			out = append(out, c)
		}
	}
	return out
}

func (s Capabilities) String() string {
	var names []string
	for _, c := range s.List() {
		names = append(names, string(c))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// CapableDriver is an optional Driver interface: a driver that says what it
// can do. It must claim CapResize and CapFleetMetrics only when it implements Resizer
// and MetricsDriver (drivertest checks both ways). A driver without it has the
// capabilities its optional interfaces give, and CapWeights.
type CapableDriver interface {
	Capabilities() Capabilities
}

// DriverCapabilities returns what d can do (see CapableDriver).
func DriverCapabilities(d Driver) Capabilities {
	if c, ok := d.(CapableDriver); ok {
		return c.Capabilities()
	}
	s := CapabilitiesOf(CapWeights)
	if _, ok := d.(Resizer); ok {
		s[CapResize] = true
	}
	if _, ok := d.(MetricsDriver); ok {
		s[CapFleetMetrics] = true
	}
	return s
}
