package contract

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// The data of a rollout spec, as the Rollout workflow receives it (package
// spec decodes, defaults and validates it). The JSON and YAML names are in
// recorded histories and users' files: never rename one.

// Strategy is how traffic moves to the new fleet.
type Strategy struct {
	Type  string `yaml:"type" json:"type"`
	Steps []Step `yaml:"steps" json:"steps,omitempty"` // canary
	Waves Waves  `yaml:"waves" json:"waves,omitempty"` // rolling: a count or a percent
	// Capacity budget (capacity.go): rolling's maxSurge and maxUnavailable,
	// canary's and rolling's minHealthyPercent.
	MaxSurge          *Budget `yaml:"maxSurge" json:"maxSurge,omitempty"`
	MaxUnavailable    *Budget `yaml:"maxUnavailable" json:"maxUnavailable,omitempty"`
	MinHealthyPercent *int    `yaml:"minHealthyPercent" json:"minHealthyPercent,omitempty"`
	// Stickiness (canary) keeps a client on the fleet it first got, by
	// cookie, from the first canary route until cutover.
	Stickiness *Stickiness `yaml:"stickiness" json:"stickiness,omitempty"`
}

// Strategy types.
const (
	BlueGreen = "blueGreen"
)

// Strategy types.
const (
	Canary  = "canary"
	Rolling = "rolling"
)

// Step is one canary step: exactly one of SetWeight, Pause, Analysis,
// SetHeaderRoute, SetMirrorRoute.
type Step struct {
	SetWeight *int   `yaml:"setWeight" json:"setWeight,omitempty"`
	Pause     *Pause `yaml:"pause" json:"pause,omitempty"`
	Analysis  string `yaml:"analysis" json:"analysis,omitempty"`
	// SetHeaderRoute sends the requests that match to the new fleet whatever
	// its weight, until cutover; without match it removes the route of that name.
	SetHeaderRoute *HeaderRouteStep `yaml:"setHeaderRoute" json:"setHeaderRoute,omitempty"`
	// SetMirrorRoute copies a share of the requests to the new fleet (its
	// answers discarded) until cutover; percent 0 removes the mirror.
	SetMirrorRoute *MirrorRouteStep `yaml:"setMirrorRoute" json:"setMirrorRoute,omitempty"`
}

// HeaderRouteStep sets (with Match) or removes (without) the header route Name,
// as Argo Rollouts' setHeaderRoute.
type HeaderRouteStep struct {
	Name  string      `yaml:"name" json:"name"`
	Match []MatchRule `yaml:"match" json:"match,omitempty"`
}

// MirrorRouteStep mirrors Percent of the requests to the new fleet; 0 stops.
type MirrorRouteStep struct {
	Percent int `yaml:"percent" json:"percent"`
}

// Pause holds traffic where it is: for Duration, or until promote/approve when
// Duration is nil (`pause: {}`).
type Pause struct {
	Duration *Duration `yaml:"duration" json:"duration,omitempty"`
}

// UnmarshalYAML accepts `pause: 30s`, `pause: {}` and `pause: {duration: 30s}`.
func (p *Pause) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var d Duration
		if err := d.UnmarshalYAML(n); err != nil {
			return err
		}
		p.Duration = &d
		return nil
	}
	type plain Pause
	return n.Decode((*plain)(p))
}

// Indefinite reports whether the pause waits for a person.
func (p Pause) Indefinite() bool { return p.Duration == nil }

// Waves is a rolling strategy's wave size: a count ("2") or a percent ("25%").
type Waves string

// Size returns the instances per wave for a fleet of size n (at least 1).
func (w Waves) Size(n int) (int, error) {
	s := strings.TrimSpace(string(w))
	if s == "" {
		return 1, nil
	}
	c, percent, ok := countOrPercent(s)
	switch {
	case percent && (!ok || c < 1 || c > 100):
		return 0, fmt.Errorf("%q: a percent must be 1%%-100%%", s)
	case percent:
		return max(ceilDiv(n*c, 100), 1), nil
	case !ok || c < 1:
		return 0, fmt.Errorf("%q: want a count such as 2 or a percent such as 25%%", s)
	}
	return min(c, n), nil
}

// UnmarshalYAML accepts a number or a string.
func (w *Waves) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("waves is a count (2) or a percent (25%%)")
	}
	*w = Waves(n.Value)
	return nil
}

// Analysis is a named measurement, as in Argo Rollouts' AnalysisTemplate.
type Analysis struct {
	// Provider is router (the local router's per-fleet counters), prometheus or http.
	Provider string `yaml:"provider" json:"provider"`
	// Metric (router): errorRate, p50, p90, p95, p99 (latency in seconds).
	Metric string   `yaml:"metric" json:"metric,omitempty"`
	Max    *float64 `yaml:"max" json:"max,omitempty"`
	Min    *float64 `yaml:"min" json:"min,omitempty"`
	// Interval between measurements; Count measurements in all.
	Interval              Duration `yaml:"interval" json:"interval,omitempty"`
	Count                 int      `yaml:"count" json:"count,omitempty"`
	FailureLimit          int      `yaml:"failureLimit" json:"failureLimit,omitempty"`
	ConsecutiveErrorLimit *int     `yaml:"consecutiveErrorLimit" json:"consecutiveErrorLimit,omitempty"`
	InconclusiveLimit     int      `yaml:"inconclusiveLimit" json:"inconclusiveLimit,omitempty"`
	MinRequests           int      `yaml:"minRequests" json:"minRequests,omitempty"`
	Address               string   `yaml:"address" json:"address,omitempty"` // prometheus
	Query                 string   `yaml:"query" json:"query,omitempty"`     // prometheus
	URL                   string   `yaml:"url" json:"url,omitempty"`         // http
	Field                 string   `yaml:"field" json:"field,omitempty"`     // http: dotted JSON path
	// OnNoData is what a measurement without data counts as: inconclusive (the
	// default: wait for a person), fail or pass. See AnalysisSpec.OnNoData.
	OnNoData string `yaml:"onNoData" json:"onNoData,omitempty"`
}

// ApprovalSpec is a gate before cutover.
type ApprovalSpec struct {
	Required bool     `yaml:"required" json:"required"`
	Timeout  Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Verify runs an analysis after full cutover; failure rolls back at once.
type Verify struct {
	Analysis string `yaml:"analysis" json:"analysis"`
}
