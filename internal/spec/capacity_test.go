package spec

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// A percent of maxSurge rounds up and one of maxUnavailable down, as GCP
// managed instance groups round them.
func TestBudgetsAreCountsOrPercentsRoundedAsManagedInstanceGroups(t *testing.T) {
	for _, tc := range []struct {
		b    contract.Budget
		size int
		up   bool
		want int
	}{
		{"1", 10, true, 1}, {"0", 10, false, 0}, {"3", 2, true, 3},
		{"10%", 5, true, 1}, {"10%", 5, false, 0},
		{"25%", 10, true, 3}, {"25%", 10, false, 2},
		{"100%", 4, true, 4}, {"0%", 4, true, 0}, {" 50% ", 3, false, 1},
	} {
		got, err := tc.b.Count(tc.size, tc.up)
		require.NoError(t, err, "%q", tc.b)
		assert.Equal(t, tc.want, got, "%q of %d (round up %v)", tc.b, tc.size, tc.up)
	}
	for _, bad := range []contract.Budget{"101%", "-1", "-5%", "one", "1.5", ""} {
		_, err := bad.Count(10, true)
		assert.Error(t, err, "%q", bad)
	}
}

func TestCapacityDefaultsToTodaysRollingAndMinHealthyPercentRoundsTheFloorUp(t *testing.T) {
	one, half := contract.Budget("1"), contract.Budget("50%")
	for _, tc := range []struct {
		name string
		s    contract.Strategy
		size int
		want contract.Capacity
	}{
		{"no budget: a surge of one wave", contract.Strategy{Type: contract.Rolling, Waves: "2"}, 5, contract.Capacity{Size: 5, Surge: 2}},
		{"maxSurge only", contract.Strategy{Type: contract.Rolling, Waves: "2", MaxSurge: &one}, 5, contract.Capacity{Size: 5, Surge: 1}},
		{"maxUnavailable percent rounds down", contract.Strategy{Type: contract.Rolling, Waves: "1", MaxSurge: &one, MaxUnavailable: &half}, 5, contract.Capacity{Size: 5, Surge: 1, Unavailable: 2}},
		{"minHealthyPercent 90 of 5 keeps 5", contract.Strategy{Type: contract.Rolling, Waves: "1", MinHealthyPercent: intp(90)}, 5, contract.Capacity{Size: 5, Surge: 1, Unavailable: 0}},
		{"minHealthyPercent 50 of 5 keeps 3", contract.Strategy{Type: contract.Rolling, Waves: "1", MinHealthyPercent: intp(50)}, 5, contract.Capacity{Size: 5, Surge: 1, Unavailable: 2}},
	} {
		got, err := tc.s.Capacity(tc.size)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, got, tc.name)
	}
}

func intp(i int) *int { return &i }

func TestImpossibleCapacityBudgetsAreRefusedWithPathAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, strategy, want string
	}{
		{"both zero", `{type: rolling, maxSurge: 0, maxUnavailable: 0}`,
			"strategy.maxSurge: line 5: maxSurge and maxUnavailable are both 0 for 4 instances: no instance could ever be replaced"},
		{"both zero by percent", `{type: rolling, maxSurge: 0%, maxUnavailable: 10%}`,
			"strategy.maxSurge: line 5: maxSurge and maxUnavailable are both 0 for 4 instances"},
		{"no surge", `{type: rolling, maxSurge: 0, maxUnavailable: 1}`,
			"strategy.maxSurge: line 5: is 0 for 4 instances: the old fleet keeps at least one instance"},
		{"percent above 100", `{type: rolling, maxSurge: 150%}`,
			`strategy.maxSurge: line 5: "150%": a percent must be 0%-100%`},
		{"negative", `{type: rolling, maxSurge: 1, maxUnavailable: -1}`,
			`strategy.maxUnavailable: line 5: "-1": want a count such as 1 or a percent such as 25%`},
		{"everything unavailable", `{type: rolling, maxSurge: 1, maxUnavailable: 100%}`,
			"strategy.maxUnavailable: line 5: 4 of 4 instances: at least one must keep serving"},
		{"nothing kept healthy", `{type: rolling, minHealthyPercent: 0}`,
			"strategy.minHealthyPercent: line 5: 0% of 4 instances keeps none healthy: at least one must keep serving"},
		{"both ways of saying it", `{type: rolling, maxUnavailable: 1, minHealthyPercent: 75}`,
			"strategy.minHealthyPercent: line 5: set maxUnavailable or minHealthyPercent, not both"},
		{"minHealthyPercent above 100", `{type: canary, steps: [{setWeight: 50}], minHealthyPercent: 120}`,
			"strategy.minHealthyPercent: line 5: 120 must be 0-100"},
		{"maxSurge on a canary", `{type: canary, steps: [{setWeight: 50}], maxSurge: 1}`,
			"strategy.maxSurge: line 5: is for the rolling strategy; a canary keeps the old fleet whole"},
		{"minHealthyPercent on blue/green", `{type: blueGreen, minHealthyPercent: 90}`,
			"strategy.minHealthyPercent: line 5: is for the canary and rolling strategies"},
		{"a map", `{type: rolling, maxSurge: {count: 1}}`,
			"strategy.maxSurge: line 5: want a count (1) or a percent (25%)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
fleet: {size: 4}
strategy: ` + tc.strategy + `
`))
			if err == nil {
				err = r.Normalize()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestTooManyStepsAreRefused(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
fleet: {size: 1000}
strategy: {type: rolling, waves: 10%, maxSurge: 1}
`))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "strategy.maxSurge: line 5: maxSurge 1 + maxUnavailable 0 would replace 1000 instances in about 1000 steps; imago takes at most 100: allow at least 10 together")
}

func TestAPossibleBudgetAndABakeTimeParse(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
fleet: {size: 4}
strategy: {type: rolling, waves: 25%, maxSurge: 1, maxUnavailable: 0}
analyses:
  errors: {provider: router, max: 0.05, interval: 10s}
bakeTime: {duration: 10m, analysis: errors}
`))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	c, err := r.Strategy.Capacity(r.Fleet.Size)
	require.NoError(t, err)
	assert.Equal(t, contract.Capacity{Size: 4, Surge: 1, Unavailable: 0}, c)
	assert.Equal(t, 60, r.BakeTime.Measurements(r.Analyses["errors"]), "one measurement every 10s for 10m")

	// The API's JSON form takes numbers and percents alike.
	var j Rollout
	require.NoError(t, json.Unmarshal([]byte(`{"service":"hello","image":{"id":"img-3f2a00000000"},"listen":"127.0.0.1:9080","fleet":{"size":4},
		"strategy":{"type":"rolling","maxSurge":1,"maxUnavailable":"25%"}}`), &j))
	require.NoError(t, j.Normalize())
	c, err = j.Strategy.Capacity(4)
	require.NoError(t, err)
	assert.Equal(t, contract.Capacity{Size: 4, Surge: 1, Unavailable: 1}, c)
}

func TestBakeTimeProblemsAreReportedByPathAndLine(t *testing.T) {
	for _, tc := range []struct{ name, bake, want string }{
		{"unknown analysis", `{duration: 10m, analysis: nope}`, `bakeTime.analysis: line 7: "nope" is not defined under analyses`},
		{"no analysis", `{duration: 10m}`, "bakeTime.analysis: line 7: is required"},
		{"no duration", `{analysis: errors}`, "bakeTime.duration: line 7: is required"},
		{"shorter than the interval", `{duration: 5s, analysis: errors}`, "bakeTime.duration: line 7: 5s is shorter than analysis errors's interval 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
strategy: {type: blueGreen}
analyses:
  errors: {provider: router, max: 0.05, interval: 10s}
bakeTime: ` + tc.bake + `
`))
			require.NoError(t, err)
			err = r.Normalize()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// The README's capacity-budget example is a valid spec with the numbers its
// comments give.
func TestREADMECapacityExampleIsValid(t *testing.T) {
	src, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(src), "### Capacity budgets and bake time\n")
	require.True(t, ok, "the README has a Capacity budgets section")
	_, block, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok)
	block, _, _ = strings.Cut(block, "```")
	r, err := ParseRollout([]byte("service: web\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\n" + block))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	c, err := r.Strategy.Capacity(r.Fleet.Size)
	require.NoError(t, err)
	assert.Equal(t, contract.Capacity{Size: 8, Surge: 1, Unavailable: 0}, c)
	assert.Equal(t, 60, r.BakeTime.Measurements(r.Analyses["errors"]))
}
