package spec

import (
	"strings"

	"github.com/imago/imago/internal/contract"
)

// The validation of capacity budgets (strategy.maxSurge,
// strategy.maxUnavailable, strategy.minHealthyPercent) and bake time
// (bakeTime); their data is contract's (contract/capacity.go). What the
// workflow does with them is in workflows/capacity.go and
// workflows/baketime.go.

func (r *Rollout) validateCapacity(add func(field, format string, args ...any)) {
	s := r.Strategy
	if p := s.MinHealthyPercent; p != nil && (*p < 0 || *p > 100) {
		add("strategy.minHealthyPercent", "%d must be 0-100", *p)
	}
	if s.Type != contract.Rolling {
		for _, f := range []struct {
			field string
			set   bool
		}{{"maxSurge", s.MaxSurge != nil}, {"maxUnavailable", s.MaxUnavailable != nil}} {
			if f.set {
				add("strategy."+f.field, "is for the rolling strategy; a %s keeps the old fleet whole until it is decommissioned", s.Type)
			}
		}
		if s.MinHealthyPercent != nil && s.Type == contract.BlueGreen {
			add("strategy.minHealthyPercent", "is for the canary and rolling strategies")
		}
		return
	}
	if s.MaxUnavailable != nil && s.MinHealthyPercent != nil {
		add("strategy.minHealthyPercent", "set maxUnavailable or minHealthyPercent, not both: they say the same thing")
	}
	if !s.Budgeted() {
		return
	}
	size := max(r.Fleet.Size, 1)
	c, err := s.Capacity(size)
	if err != nil {
		if field, msg, _ := strings.Cut(err.Error(), " "); field != "waves" { // waves: said by validateStrategy
			add("strategy."+field, "%s", msg)
		}
		return
	}
	switch {
	case c.Surge == 0 && c.Unavailable == 0:
		add("strategy.maxSurge", "maxSurge and maxUnavailable are both 0 for %d instances: no instance could ever be replaced; allow a surge (maxSurge: 1)", size)
	case c.Surge == 0:
		add("strategy.maxSurge", "is 0 for %d instances: the old fleet keeps at least one instance until it is decommissioned (so a rollback is one route switch), which needs a surge of at least 1", size)
	case c.Unavailable >= size && s.MaxUnavailable == nil:
		add("strategy.minHealthyPercent", "%d%% of %d instances keeps none healthy: at least one must keep serving", *s.MinHealthyPercent, size)
	case c.Unavailable >= size:
		add("strategy.maxUnavailable", "%d of %d instances: at least one must keep serving", c.Unavailable, size)
	case ceilDiv(size, c.Surge+c.Unavailable) > MaxSteps:
		add("strategy.maxSurge", "maxSurge %d + maxUnavailable %d would replace %d instances in about %d steps; imago takes at most %d: allow at least %d together",
			c.Surge, c.Unavailable, size, ceilDiv(size, c.Surge+c.Unavailable), MaxSteps, ceilDiv(size, MaxSteps))
	}
}

// MaxSteps is the most steps a rolling rollout with a capacity budget takes
// (workflows.MaxWaves: each step adds to the rollout's history).
const MaxSteps = 100

func (r *Rollout) validateBakeTime(add func(field, format string, args ...any)) {
	b := r.BakeTime
	if b == nil {
		return
	}
	if b.Duration <= 0 {
		add("bakeTime.duration", "is required: how long to watch the new fleet after cutover, e.g. 10m")
	}
	a, ok := r.Analyses[b.Analysis]
	switch {
	case b.Analysis == "":
		add("bakeTime.analysis", "is required: the name of one of the spec's analyses")
	case !ok:
		add("bakeTime.analysis", "%q is not defined under analyses", b.Analysis)
	case b.Duration > 0 && a.Interval > 0 && b.Duration < a.Interval:
		add("bakeTime.duration", "%s is shorter than analysis %s's interval %s: it would not measure once", b.Duration, b.Analysis, a.Interval)
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
