package contract

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Capacity budgets (Strategy.MaxSurge, MaxUnavailable, MinHealthyPercent) and
// bake time (the rollout spec's bakeTime): their data and arithmetic. Package
// spec validates them; workflows/capacity.go and workflows/baketime.go run
// them.

// Budget is a number of instances beyond or below the fleet's size: a count
// ("1") or a percent of the size ("25%"), as GCP managed instance groups'
// maxSurge and maxUnavailable are.
type Budget string

// UnmarshalYAML accepts a number or a string.
func (b *Budget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a count (1) or a percent (25%%)")
	}
	*b = Budget(n.Value)
	return nil
}

// UnmarshalJSON accepts a number (1) or a string ("25%").
func (b *Budget) UnmarshalJSON(data []byte) error {
	var n json.Number
	if err := json.Unmarshal(data, &n); err == nil {
		*b = Budget(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a count (1) or a percent (\"25%%\"), got %s", data)
	}
	*b = Budget(s)
	return nil
}

// Count resolves the budget for a fleet of size instances. A percent rounds up
// when up is set (maxSurge: 10% of 5 is 1) and down otherwise (maxUnavailable:
// 10% of 5 is 0), as managed instance groups round them.
func (b Budget) Count(size int, up bool) (int, error) {
	s := strings.TrimSpace(string(b))
	c, percent, ok := countOrPercent(s)
	switch {
	case percent && (!ok || c < 0 || c > 100):
		return 0, fmt.Errorf("%q: a percent must be 0%%-100%%", s)
	case percent && up:
		return ceilDiv(size*c, 100), nil
	case percent:
		return size * c / 100, nil
	case !ok || c < 0:
		return 0, fmt.Errorf("%q: want a count such as 1 or a percent such as 25%%", s)
	}
	return c, nil
}

// countOrPercent reads a count ("3") or a percent ("25%"), as waves and
// budgets are written: the number, whether it is a percent, and whether it
// is a number at all.
func countOrPercent(s string) (n int, percent, ok bool) {
	digits, percent := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(digits)
	return n, percent, err == nil
}

// BakeTime watches the new fleet after full cutover, while the old fleet is
// still warm: Analysis (one of the spec's analyses) measures every its
// interval for Duration; a failed measurement beyond its failureLimit rolls
// back at once.
type BakeTime struct {
	Duration Duration `yaml:"duration" json:"duration"`
	Analysis string   `yaml:"analysis" json:"analysis"`
}

// Measurements is how many measurements the analysis takes in the bake time:
// one every interval for the duration (at least one).
func (b BakeTime) Measurements(a Analysis) int {
	if a.Interval <= 0 {
		return 1
	}
	return max(ceilDiv(int(b.Duration), int(a.Interval)), 1)
}

// Capacity is a rolling strategy's budget resolved for its fleet size: at most
// Size+Surge instances run, and at least Size-Unavailable healthy ones serve.
type Capacity struct {
	Size, Surge, Unavailable int
}

// Budgeted reports whether the strategy sets a capacity budget. Without one a
// rolling rollout runs as it always did: it adds a wave before it removes one
// (a surge of one wave, nothing unavailable).
func (s Strategy) Budgeted() bool {
	return s.MaxSurge != nil || s.MaxUnavailable != nil || s.MinHealthyPercent != nil
}

// Capacity resolves the budget for size instances. Unset, maxSurge is one
// wave and maxUnavailable 0 (what a rollout without a budget does);
// minHealthyPercent P keeps ceil(size × P / 100) healthy, so it allows
// size − that many unavailable.
func (s Strategy) Capacity(size int) (Capacity, error) {
	c := Capacity{Size: size}
	var err error
	if s.MaxSurge != nil {
		if c.Surge, err = s.MaxSurge.Count(size, true); err != nil {
			return c, fmt.Errorf("maxSurge %w", err)
		}
	} else if c.Surge, err = s.Waves.Size(max(size, 1)); err != nil {
		return c, fmt.Errorf("waves %w", err)
	}
	switch {
	case s.MaxUnavailable != nil:
		if c.Unavailable, err = s.MaxUnavailable.Count(size, false); err != nil {
			return c, fmt.Errorf("maxUnavailable %w", err)
		}
	case s.MinHealthyPercent != nil:
		c.Unavailable = size - ceilDiv(size*(*s.MinHealthyPercent), 100)
	}
	return c, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
