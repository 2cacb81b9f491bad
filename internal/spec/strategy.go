package spec

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
)

// DefaultCompareCount is how many intervals an analysis of kind compare
// samples when its count is left out.
const DefaultCompareCount = 10

// DefaultApprovalTimeout bounds approval gates and indefinite pauses.
const DefaultApprovalTimeout = contract.Duration(24 * time.Hour)

func (r *Rollout) strategyDefaults() {
	for name, a := range r.Analyses {
		if a.Interval == 0 {
			a.Interval = contract.Duration(5 * time.Second)
		}
		if a.Count == 0 {
			a.Count = 1
			if a.Kind == contract.AnalysisCompare {
				a.Count = DefaultCompareCount
			}
		}
		if a.ConsecutiveErrorLimit == nil {
			four := 4
			a.ConsecutiveErrorLimit = &four
		}
		if a.Provider == "router" && a.Metric == "" && a.Kind != contract.AnalysisCompare {
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
	if s := r.Strategy.Stickiness; s != nil && s.Cookie == "" {
		s.Cookie = DefaultStickyCookie
		if r.Provider == "aws" {
			s.Cookie = ALBStickyCookie
		}
	}
	if r.Strategy.Type == contract.Rolling && r.Strategy.Waves == "" {
		r.Strategy.Waves = "1"
	}
}

func (r *Rollout) validateStrategy(add func(field, format string, args ...any)) {
	switch r.Strategy.Type {
	case contract.BlueGreen:
		if len(r.Strategy.Steps) > 0 {
			add("strategy.steps", "steps are for the canary strategy")
		}
	case contract.Canary:
		if len(r.Strategy.Steps) == 0 {
			add("strategy.steps", "a canary needs steps, e.g. [{setWeight: 10}, {pause: 1m}, {setWeight: 50}]")
		}
		last := 0
		headerRoutes := map[string]bool{} // set by the steps so far
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
			if s.SetHeaderRoute != nil {
				set++
				validateHeaderRoute(add, field+".setHeaderRoute", *s.SetHeaderRoute, headerRoutes)
			}
			if s.SetMirrorRoute != nil {
				set++
				if p := s.SetMirrorRoute.Percent; p < 0 || p > 100 {
					add(field+".setMirrorRoute.percent", "%d must be 0-100 (0 stops mirroring)", p)
				}
				if r.Provider == "aws" { // as env: known before any worker is asked (the driver lacks CapMirror)
					add(field+".setMirrorRoute", "provider aws cannot mirror traffic (an ALB has no request mirroring); leave the step out, or send chosen requests to the canary with setHeaderRoute")
				}
			}
			if set != 1 {
				add(field, "set exactly one of setWeight, pause, analysis, setHeaderRoute, setMirrorRoute")
			}
		}
	case contract.Rolling:
		if _, err := r.Strategy.Waves.Size(max(r.Fleet.Size, 1)); err != nil {
			add("strategy.waves", "%v", err)
		}
		if len(r.Strategy.Steps) > 0 {
			add("strategy.steps", "steps are for the canary strategy; rolling uses waves")
		}
	default:
		add("strategy.type", "%q is not a strategy imago knows; use blueGreen, canary or rolling", r.Strategy.Type)
	}
	tolerancesBad := r.validateCompare(add)
	for _, name := range sortedNames(r.Analyses) {
		a := r.Analyses[name]
		field := "analyses." + name
		switch a.Provider {
		case "router":
			switch a.Metric {
			case "":
				if a.Kind != contract.AnalysisCompare {
					add(field+".metric", "%q: use errorRate, p50, p90, p95 or p99", a.Metric)
				}
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
		if err := analysis.Validate(a.Spec()); err != nil {
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
				case strings.HasPrefix(word, "metrics["):
					path, _, _ := strings.Cut(word, " ")
					if !tolerancesBad[field+"."+path] {
						add(field+"."+path, "%s", rest)
					}
				case ok:
					add(field+"."+word, "%s", rest)
				default:
					add(field, "%s", p)
				}
			}
		}
	}
	r.validateStickiness(add)
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

// validateCompare checks what the analysis package cannot: a compare's
// tolerances as written, that a compare is only a canary step's with a
// baseline, and that a baseline is only a canary's. It returns the tolerance
// fields it refused (the analysis package sees them as 0%).
func (r *Rollout) validateCompare(add func(field, format string, args ...any)) map[string]bool {
	bad := map[string]bool{}
	for _, name := range sortedNames(r.Analyses) {
		for i, m := range r.Analyses[name].Metrics {
			if _, err := contract.ParseTolerance(m.Tolerance); err != nil {
				field := fmt.Sprintf("analyses.%s.metrics[%d].tolerance", name, i)
				add(field, "%v", err)
				bad[field] = true
			}
		}
	}
	s := r.Strategy
	if s.Baseline && s.Type != contract.Canary {
		add("strategy.baseline", "a baseline fleet is for the canary strategy, not %s", s.Type)
	}
	compare := func(name string) bool { a, ok := r.Analyses[name]; return ok && a.Kind == contract.AnalysisCompare }
	for i, st := range s.Steps {
		if st.Analysis != "" && compare(st.Analysis) && !s.Baseline {
			add(fmt.Sprintf("strategy.steps[%d].analysis", i),
				"analysis %s is kind compare, which judges the canary against a baseline fleet: set strategy.baseline: true", st.Analysis)
		}
	}
	if r.Verify != nil && compare(r.Verify.Analysis) {
		add("verify.analysis", "analysis %s is kind compare: its baseline fleet is gone after cutover; use it as a canary step", r.Verify.Analysis)
	}
	if r.BakeTime != nil && compare(r.BakeTime.Analysis) {
		add("bakeTime.analysis", "analysis %s is kind compare: its baseline fleet is gone after cutover; use it as a canary step", r.BakeTime.Analysis)
	}
	return bad
}

// analysisFields are the YAML names of Analysis's fields.
var analysisFields = yamlFields(reflect.TypeFor[contract.Analysis]())
