package spec

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imago/imago/internal/analysis"
)

// Strategy types.
const (
	Canary  = "canary"
	Rolling = "rolling"
)

// Step is one canary step: exactly one of SetWeight, Pause, Analysis.
type Step struct {
	SetWeight *int   `yaml:"setWeight" json:"setWeight,omitempty"`
	Pause     *Pause `yaml:"pause" json:"pause,omitempty"`
	Analysis  string `yaml:"analysis" json:"analysis,omitempty"`
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
	if strings.HasSuffix(s, "%") {
		p, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
		if err != nil || p < 1 || p > 100 {
			return 0, fmt.Errorf("%q: a percent must be 1%%-100%%", s)
		}
		size := (n*p + 99) / 100
		if size < 1 {
			size = 1
		}
		return size, nil
	}
	c, err := strconv.Atoi(s)
	if err != nil || c < 1 {
		return 0, fmt.Errorf("%q: want a count such as 2 or a percent such as 25%%", s)
	}
	if c > n {
		c = n
	}
	return c, nil
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
	// default: wait for a person), fail or pass. See analysis.Spec.OnNoData.
	OnNoData string `yaml:"onNoData" json:"onNoData,omitempty"`
}

// Approval is a gate before cutover.
type Approval struct {
	Required bool     `yaml:"required" json:"required"`
	Timeout  Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Verify runs an analysis after full cutover; failure rolls back at once.
type Verify struct {
	Analysis string `yaml:"analysis" json:"analysis"`
}

// DefaultApprovalTimeout bounds approval gates and indefinite pauses.
const DefaultApprovalTimeout = Duration(24 * time.Hour)

func (r *Rollout) strategyDefaults() {
	for name, a := range r.Analyses {
		if a.Interval == 0 {
			a.Interval = Duration(5 * time.Second)
		}
		if a.Count == 0 {
			a.Count = 1
		}
		if a.ConsecutiveErrorLimit == nil {
			four := 4
			a.ConsecutiveErrorLimit = &four
		}
		if a.Provider == "router" && a.Metric == "" {
			a.Metric = "errorRate"
		}
		if a.Provider == "router" && a.MinRequests == 0 {
			a.MinRequests = 10
		}
		r.Analyses[name] = a
	}
	if r.Approval.Timeout == 0 {
		r.Approval.Timeout = DefaultApprovalTimeout
	}
	if r.Strategy.Type == Rolling && r.Strategy.Waves == "" {
		r.Strategy.Waves = "1"
	}
}

func (r *Rollout) validateStrategy(add func(field, format string, args ...any)) {
	switch r.Strategy.Type {
	case BlueGreen:
		if len(r.Strategy.Steps) > 0 {
			add("strategy.steps", "steps are for the canary strategy")
		}
	case Canary:
		if len(r.Strategy.Steps) == 0 {
			add("strategy.steps", "a canary needs steps, e.g. [{setWeight: 10}, {pause: 1m}, {setWeight: 50}]")
		}
		last := 0
		for i, s := range r.Strategy.Steps {
			field := fmt.Sprintf("strategy.steps[%d]", i)
			set := 0
			if s.SetWeight != nil {
				set++
				if *s.SetWeight < 0 || *s.SetWeight > 100 {
					add(field+".setWeight", "%d must be 0-100", *s.SetWeight)
				} else if *s.SetWeight < last {
					add(field+".setWeight", "%d is below the previous weight %d; a canary only moves forward (use abort to go back)", *s.SetWeight, last)
				} else {
					last = *s.SetWeight
				}
			}
			if s.Pause != nil {
				set++
				if s.Pause.Duration != nil && *s.Pause.Duration < 0 {
					add(field+".pause", "must not be negative")
				}
			}
			if s.Analysis != "" {
				set++
				if _, ok := r.Analyses[s.Analysis]; !ok {
					add(field+".analysis", "%q is not defined under analyses", s.Analysis)
				}
			}
			if set != 1 {
				add(field, "set exactly one of setWeight, pause, analysis")
			}
		}
	case Rolling:
		if _, err := r.Strategy.Waves.Size(max(r.Fleet.Size, 1)); err != nil {
			add("strategy.waves", "%v", err)
		}
		if len(r.Strategy.Steps) > 0 {
			add("strategy.steps", "steps are for the canary strategy; rolling uses waves")
		}
	default:
		add("strategy.type", "%q is not a strategy imago knows; use blueGreen, canary or rolling", r.Strategy.Type)
	}
	for _, name := range sortedNames(r.Analyses) {
		a := r.Analyses[name]
		field := "analyses." + name
		switch a.Provider {
		case "router":
			switch a.Metric {
			case "errorRate", "p50", "p90", "p95", "p99":
			default:
				add(field+".metric", "%q: use errorRate, p50, p90, p95 or p99", a.Metric)
			}
		case "prometheus":
		case "http":
			if a.Field == "" {
				add(field+".field", "is required with provider http: the dotted path of the number in the answer, e.g. data.errorRate")
			}
		default:
			add(field+".provider", "%q: use router, prometheus or http", a.Provider)
		}
		if err := a.ToSpec().Validate(); err != nil {
			var se *analysis.SpecError
			if !errors.As(err, &se) {
				add(field, "%v", err)
				continue
			}
			for _, p := range se.Problems {
				// The analysis package's problems start with the field they are
				// about ("address … has no scheme"): name it in the path.
				word, rest, _ := strings.Cut(p, " ")
				switch _, ok := analysisFields[word]; {
				case word == "provider" || strings.HasPrefix(p, "unknown provider"):
					// said above
				case ok:
					add(field+"."+word, "%s", rest)
				default:
					add(field, "%s", p)
				}
			}
		}
	}
	if r.Verify != nil {
		if _, ok := r.Analyses[r.Verify.Analysis]; !ok {
			add("verify.analysis", "%q is not defined under analyses", r.Verify.Analysis)
		}
	}
	if r.Approval.Timeout < 0 {
		add("approval.timeout", "must be positive")
	}
	r.validateCapacity(add)
	r.validateBakeTime(add)
}

// analysisFields are the YAML names of Analysis's fields.
var analysisFields = yamlFields(reflect.TypeFor[Analysis]())

// ToSpec translates the analysis into the analysis package's Spec.
func (a Analysis) ToSpec() analysis.Spec {
	s := analysis.Spec{
		Provider: a.Provider, Metric: a.Metric, Max: a.Max, Min: a.Min,
		Interval: a.Interval.D(), Count: a.Count, FailureLimit: a.FailureLimit,
		InconclusiveLimit: a.InconclusiveLimit, MinRequests: a.MinRequests,
		Address: a.Address, Query: a.Query, URL: a.URL, Field: a.Field,
		OnNoData: a.OnNoData,
	}
	if a.ConsecutiveErrorLimit != nil {
		s.ConsecutiveErrorLimit = *a.ConsecutiveErrorLimit
		if s.ConsecutiveErrorLimit == 0 {
			s.ConsecutiveErrorLimit = -1 // the analysis package reads 0 as its default
		}
	}
	return s
}
