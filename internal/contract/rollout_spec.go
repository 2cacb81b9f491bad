package contract

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The data of a rollout spec, as the Rollout workflow receives it (package
// spec decodes, defaults and validates it). The JSON and YAML names are in
// recorded histories and users' files: never rename one.

// Rollout describes one rollout of a service to an environment.
type Rollout struct {
	Service     string `yaml:"service" json:"service"`
	Environment string `yaml:"environment" json:"environment"`
	Provider    string `yaml:"provider" json:"provider"`
	// Target narrows where in the environment the rollout goes: a region (and,
	// on aws, the account role to assume). A rollout with a region is its own
	// deployment (service, environment, region): its own workflow, inventory
	// and router; without one nothing changes.
	Target *Target   `yaml:"target" json:"target,omitempty"`
	Image  ImageRef  `yaml:"image" json:"image"`
	Fleet  FleetSpec `yaml:"fleet" json:"fleet"`
	// Listen is the address the service's router serves on (local provider).
	Listen   string   `yaml:"listen" json:"listen"`
	Health   Health   `yaml:"health" json:"health"`
	Checks   []Check  `yaml:"checks" json:"checks,omitempty"`
	Strategy Strategy `yaml:"strategy" json:"strategy"`
	// Analyses are named measurements used by canary steps and Verify.
	Analyses map[string]Analysis `yaml:"analyses" json:"analyses,omitempty"`
	// Approval is an optional gate before cutover.
	Approval ApprovalSpec `yaml:"approval" json:"approval"`
	// Verify runs an analysis after full cutover; failure rolls back.
	Verify *Verify `yaml:"verify" json:"verify,omitempty"`
	// BakeTime watches the new fleet with an analysis for a while after
	// cutover; failure rolls back (capacity.go).
	BakeTime *BakeTime `yaml:"bakeTime" json:"bakeTime,omitempty"`
	// Soak is how long the old fleet stays warm after cutover.
	Soak *Duration `yaml:"soak" json:"soak,omitempty"`
	// Retain is how many previous images stay deployable for rollback (default 5).
	Retain int `yaml:"retain" json:"retain,omitempty"`
	// Env is given to every instance besides PORT and HOST: plain values and
	// secrets by reference, which the worker resolves when instances start.
	Env map[string]EnvValue `yaml:"env" json:"env,omitempty"`
	// Hooks are URLs the rollout asks or tells at its phases; Notify are the
	// people's webhooks told when it waits for approval or ends (hooks.go).
	Hooks  *Hooks         `yaml:"hooks" json:"hooks,omitempty"`
	Notify []NotifyTarget `yaml:"notify" json:"notify,omitempty"`
	// Windows are when the rollout may provision and move traffic (windows.go);
	// none: any time.
	Windows Windows `yaml:"windows" json:"windows,omitempty"`
}

// WorkflowID is the ID of the rollout's workflow: one rollout per service and
// environment (and region, when it names one) at a time.
func (r Rollout) WorkflowID() string { return RolloutWorkflowID(r.Service, r.Place()) }

// Target is where in its environment a rollout goes.
type Target struct {
	// Region is the region (the local provider: a router namespace of its own).
	Region string `yaml:"region" json:"region,omitempty"`
	// Role is the AWS account role to assume (an IAM role ARN); aws only, and
	// refused by validation until the aws driver assumes roles.
	Role string `yaml:"role" json:"role,omitempty"`
}

// Region is the region the rollout names, "" for none.
func (r Rollout) Region() string {
	if r.Target == nil {
		return ""
	}
	return r.Target.Region
}

// Place is the rollout's deployment place: Place(environment, region).
func (r Rollout) Place() string { return Place(r.Environment, r.Region()) }

// PlaceSep separates environment and region in a deployment place.
const PlaceSep = "@"

// Place is the key of a deployment's environment and region, in workflow IDs
// and the inventory: the environment alone when region is "" (so deployments
// without a region keep their IDs and keys), else environment@region.
func Place(environment, region string) string {
	if region == "" {
		return environment
	}
	return environment + PlaceSep + region
}

// SplitPlace is Place's inverse.
func SplitPlace(place string) (environment, region string) {
	env, region, _ := strings.Cut(place, PlaceSep)
	return env, region
}

// RolloutWorkflowID is the workflow ID of the rollout of service to environment.
func RolloutWorkflowID(service, environment string) string {
	return "rollout/" + environment + "/" + service
}

// SoakDuration returns the soak, zero when unset.
func (r Rollout) SoakDuration() time.Duration {
	if r.Soak == nil {
		return 0
	}
	return r.Soak.D()
}

// FleetSpec sizes a rollout's new fleet (Fleet is the fleet a provider made).
type FleetSpec struct {
	Size int `yaml:"size" json:"size"`

	zeroSize bool        // size: 0 was written, which must not become the default
	problems FieldErrors // what JSON decoding could not take (see UnmarshalJSON)
}

// ZeroSize reports whether the spec says size: 0, which package spec refuses
// rather than reading it as "the default size".
func (f FleetSpec) ZeroSize() bool { return f.zeroSize }

// DecodeProblems is what UnmarshalJSON could not take, for package spec to
// report with its path among the spec's other problems.
func (f FleetSpec) DecodeProblems() FieldErrors { return f.problems }

// UnmarshalYAML notes an explicit size: 0, so that it is an error, not the default.
func (f *FleetSpec) UnmarshalYAML(n *yaml.Node) error {
	type plain FleetSpec
	if err := n.Decode((*plain)(f)); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "size" && n.Content[i+1].Tag != "!!null" {
			f.zeroSize = f.Size == 0
		}
	}
	return nil
}

// UnmarshalJSON notes an explicit "size": 0 as UnmarshalYAML does. What does
// not decode is kept for validation, which reports it with its path among the
// spec's other problems: an error returned here would lose the path.
func (f *FleetSpec) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	*f = FleetSpec{}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		f.problems = FieldErrors{{Field: "fleet", Msg: fmt.Sprintf(`want an object such as {"size": 3}, got %s`, b)}}
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		switch {
		case k != "size":
			f.problems = append(f.problems, FieldError{Field: "fleet." + k, Msg: "unknown field; the fields here are size"})
		case string(v) == "null":
		case json.Unmarshal(v, &f.Size) != nil:
			f.problems = append(f.problems, FieldError{Field: "fleet.size", Msg: fmt.Sprintf("%s is not a whole number", v)})
		default:
			f.zeroSize = f.Size == 0
		}
	}
	return nil
}

// EnvValue is one variable of a rollout's env: a plain value (LOG_LEVEL: debug)
// or a secret by reference (DB_PASSWORD: {secret: "file:///etc/imago/db"}),
// whose value the worker reads when instances start and which never travels
// through Temporal (only the reference does). A ProvisionRequest carries it
// as an EnvVar, whose JSON form differs.
type EnvValue struct {
	Value  string `yaml:"-" json:"-"`
	Secret string `yaml:"secret" json:"secret,omitempty"`

	problem string // what JSON decoding could not take (see UnmarshalJSON)
}

// IsSecret reports whether v is a secret reference.
func (v EnvValue) IsSecret() bool { return v.Secret != "" }

// DecodeProblem is what UnmarshalJSON could not take ("" when none), for
// package spec to report with its path.
func (v EnvValue) DecodeProblem() string { return v.problem }

// UnmarshalYAML takes a scalar as the plain value; a mapping is {secret: URL}
// (package spec's decoder walks its fields).
func (v *EnvValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*v = EnvValue{Value: n.Value}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a value (LOG_LEVEL: debug) or {secret: URL}")
	}
	type plain EnvValue
	return n.Decode((*plain)(v))
}

// MarshalJSON writes a plain value as a string, a secret as {"secret": URL}.
func (v EnvValue) MarshalJSON() ([]byte, error) {
	if v.Secret != "" {
		return json.Marshal(map[string]string{"secret": v.Secret})
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads what MarshalJSON writes. What does not decode is kept
// for validation, which reports it with its path.
func (v *EnvValue) UnmarshalJSON(b []byte) error {
	*v = EnvValue{}
	if json.Unmarshal(b, &v.Value) == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) == nil {
		for k, raw := range m {
			if k != "secret" {
				v.problem = fmt.Sprintf("unknown field %q; a secret is {\"secret\": URL}", k)
				return nil
			}
			if json.Unmarshal(raw, &v.Secret) != nil {
				v.problem = fmt.Sprintf("secret: want a URL string, got %s", raw)
				return nil
			}
		}
		return nil
	}
	v.problem = fmt.Sprintf(`want a string or {"secret": URL}, got %s`, b)
	return nil
}

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
	// Baseline (canary): start, beside the canary, a fleet of the same size
	// from the live image, give it the canary's share at each setWeight, and
	// tear it down at the end; an analysis of kind compare judges the canary
	// against it.
	Baseline bool `yaml:"baseline" json:"baseline,omitempty"`
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

	// Kind is "" (measure the new fleet against max/min) or compare (judge
	// the canary against the baseline fleet: Metrics, Pass, Marginal).
	Kind    string          `yaml:"kind" json:"kind,omitempty"`
	Metrics []CompareMetric `yaml:"metrics" json:"metrics,omitempty"`
	// Pass and Marginal are the score thresholds of a compare (default 75 and
	// 50): at least Pass passes, at least Marginal waits for a person.
	Pass     *float64 `yaml:"pass" json:"pass,omitempty"`
	Marginal *float64 `yaml:"marginal" json:"marginal,omitempty"`
}

// AnalysisCompare is the Kind of an analysis that judges the canary against
// the baseline fleet.
const AnalysisCompare = "compare"

// CompareMetric is one metric of a compare analysis, as Kayenta's canary
// config names it.
type CompareMetric struct {
	// Metric (router): errorRate, p50, p90, p95, p99.
	Metric string `yaml:"metric" json:"metric"`
	// Direction is the change that hurts: increase (default), decrease or either.
	Direction string `yaml:"direction" json:"direction,omitempty"`
	// Tolerance is how much worse a significant change may be: "10%" (default).
	Tolerance string `yaml:"tolerance" json:"tolerance,omitempty"`
	// Group names the metric's group in the score (default: the metric);
	// Weight is the group's weight (default 1).
	Group  string   `yaml:"group" json:"group,omitempty"`
	Weight *float64 `yaml:"weight" json:"weight,omitempty"`
	// Critical fails the judgment when this metric fails, whatever the score.
	Critical bool `yaml:"critical" json:"critical,omitempty"`
}

// Spec translates a rollout spec's analysis into what the Analysis activity
// measures (AnalysisSpec).
func (a Analysis) Spec() AnalysisSpec {
	s := AnalysisSpec{
		Provider: a.Provider, Metric: a.Metric, Max: a.Max, Min: a.Min,
		Interval: a.Interval.D(), Count: a.Count, FailureLimit: a.FailureLimit,
		InconclusiveLimit: a.InconclusiveLimit, MinRequests: a.MinRequests,
		Address: a.Address, Query: a.Query, URL: a.URL, Field: a.Field,
		OnNoData: a.OnNoData,
		Kind:     a.Kind, Pass: a.Pass, Marginal: a.Marginal,
	}
	for _, m := range a.Metrics {
		c := CompareMetricSpec{Metric: m.Metric, Direction: m.Direction, Group: m.Group, Critical: m.Critical, Weight: 1}
		if c.Direction == "" {
			c.Direction = "increase"
		}
		c.Tolerance, _ = ParseTolerance(m.Tolerance) // validation said what is wrong with it
		if m.Weight != nil {
			c.Weight = *m.Weight
		}
		s.Metrics = append(s.Metrics, c)
	}
	if a.ConsecutiveErrorLimit != nil {
		s.ConsecutiveErrorLimit = *a.ConsecutiveErrorLimit
		if s.ConsecutiveErrorLimit == 0 {
			s.ConsecutiveErrorLimit = -1 // the analysis package reads 0 as its default
		}
	}
	return s
}

// DefaultTolerance is a compare metric's tolerance when the spec gives none:
// the canary may be 10 % worse than the baseline.
const DefaultTolerance = 0.1

// ParseTolerance reads a compare metric's tolerance, a percent ("10%",
// "2.5%"), as a fraction (0.1); empty is DefaultTolerance.
func ParseTolerance(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultTolerance, nil
	}
	digits, ok := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(digits), 64)
	switch {
	case !ok:
		return 0, fmt.Errorf("%q is not a percent; write it as 10%%", s)
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
		return 0, fmt.Errorf("%q: want a percent of at least 0%%, such as 10%%", s)
	}
	return v / 100, nil
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
