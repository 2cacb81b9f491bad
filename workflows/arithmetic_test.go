package workflows

import (
	"slices"
	"testing"

	"github.com/imago/imago/internal/contract"
)

func TestPlanWavesCapsTheWavesAtMaxWaves(t *testing.T) {
	for _, c := range []struct {
		size, asked        int
		wave, waves        int
		widened            bool
		firstWeight, keep1 int // weight of the first wave; old fleet (of size) left after it
	}{
		{size: 3, asked: 1, wave: 1, waves: 3, firstWeight: 33, keep1: 2},
		{size: 4, asked: 2, wave: 2, waves: 2, firstWeight: 50, keep1: 2},
		{size: 100, asked: 1, wave: 1, waves: 100, firstWeight: 1, keep1: 99},
		{size: 101, asked: 1, wave: 2, waves: 51, widened: true, firstWeight: 1, keep1: 99},
		{size: 150, asked: 1, wave: 2, waves: 75, widened: true, firstWeight: 1, keep1: 148},
		{size: 1000, asked: 1, wave: 10, waves: 100, widened: true, firstWeight: 1, keep1: 990},
		{size: 1000, asked: 100, wave: 100, waves: 10, firstWeight: 10, keep1: 900},
		{size: 1000, asked: 7, wave: 10, waves: 100, widened: true, firstWeight: 1, keep1: 990},
		{size: 10000, asked: 1, wave: 100, waves: 100, widened: true, firstWeight: 1, keep1: 9900},
		{size: 10000, asked: 10000, wave: 10000, waves: 1, firstWeight: 100, keep1: 1},
	} {
		p := planWaves(c.size, c.asked)
		_, widened := p.widened()
		if p.wave != c.wave || p.waves != c.waves || widened != c.widened {
			t.Errorf("planWaves(%d, %d) = %d waves of %d (widened %v), want %d of %d (widened %v)",
				c.size, c.asked, p.waves, p.wave, widened, c.waves, c.wave, c.widened)
		}
		if p.waves > MaxWaves {
			t.Errorf("planWaves(%d, %d): %d waves, more than %d", c.size, c.asked, p.waves, MaxWaves)
		}
		if w := p.weight(p.wave); w != c.firstWeight {
			t.Errorf("planWaves(%d, %d): first wave takes %d%%, want %d%%", c.size, c.asked, w, c.firstWeight)
		}
		if k := p.oldKeep(c.size, p.wave); k != c.keep1 {
			t.Errorf("planWaves(%d, %d): old fleet keeps %d after the first wave, want %d", c.size, c.asked, k, c.keep1)
		}
	}
}

// Every wave of a capped plan takes a share of traffic of its own: weights
// are whole percents and each wave adds at least 1%.
func TestEveryWaveMovesTraffic(t *testing.T) {
	for _, size := range []int{1, 7, 99, 100, 101, 333, 1000, 4321, 10000} {
		p := planWaves(size, 1)
		prev := 0
		for placed := p.wave; ; placed = min(placed+p.wave, size) {
			w := p.weight(placed)
			if w <= prev {
				t.Fatalf("size %d: %d placed take %d%%, no more than the wave before", size, placed, w)
			}
			prev = w
			if placed == size {
				break
			}
		}
		if prev != 100 {
			t.Errorf("size %d: the last wave takes %d%%", size, prev)
		}
	}
}

// A whole rolling rollout, wave by wave, as the workflow walks it: new
// instances placed, their weight, and the single old fleet's instances left.
func TestWaveCountsOfWholeRollouts(t *testing.T) {
	type wave struct{ placed, weight, keep int }
	for _, c := range []struct {
		name          string
		plan          wavePlan
		oldSize, from int // the old fleet's size; new instances serving before the first wave
		want          []wave
	}{
		{"4 in waves of 1", planWaves(4, 1), 4, 1,
			[]wave{{1, 25, 3}, {2, 50, 2}, {3, 75, 1}, {4, 100, 4}}},
		{"3 in waves of 2, old fleet of 6", planWaves(3, 2), 6, 2,
			[]wave{{2, 66, 2}, {3, 100, 6}}},
		{"old fleet of 1 keeps its instance", planWaves(5, 2), 1, 2,
			[]wave{{2, 40, 1}, {4, 80, 1}, {5, 100, 1}}},
		{"uncapped (before rolling-by-count): 150 in waves of 1 run 150 waves", uncappedWaves(150, 1), 150, 149,
			[]wave{{149, 99, 1}, {150, 100, 150}}},
		{"capped: 150 in waves of 2", planWaves(150, 1), 150, 146,
			[]wave{{146, 97, 4}, {148, 98, 2}, {150, 100, 150}}},
	} {
		var got []wave
		for placed := c.from; ; placed = c.plan.next(placed) {
			w, k := c.plan.counts(c.oldSize, placed)
			got = append(got, wave{placed, w, k})
			if placed >= c.plan.size {
				break
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: waves %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSplitGivesTheNewFleetItsWeightAndSharesTheRest(t *testing.T) {
	type fs = contract.FleetShare
	for _, c := range []struct {
		name string
		prev []fs
		nb   fs
		want []fs
	}{
		{"first rollout: nothing before", nil, fs{FleetID: "new", Weight: 100}, []fs{{FleetID: "new", Weight: 100}}},
		{"canary 10% beside one old fleet", []fs{{FleetID: "a", Weight: 100}}, fs{FleetID: "new", Weight: 10},
			[]fs{{FleetID: "new", Weight: 10}, {FleetID: "a", Weight: 90}}},
		{"the rest in proportion; rounding to the first old fleet", []fs{{FleetID: "a", Weight: 50}, {FleetID: "b", Weight: 50}}, fs{FleetID: "new", Weight: 33},
			[]fs{{FleetID: "new", Weight: 33}, {FleetID: "a", Weight: 34}, {FleetID: "b", Weight: 33}}},
		{"100%: the old fleets leave the route", []fs{{FleetID: "a", Weight: 70}, {FleetID: "b", Weight: 30}}, fs{FleetID: "new", Weight: 100},
			[]fs{{FleetID: "new", Weight: 100}}},
		{"0% leaves the new fleet out", []fs{{FleetID: "a", Weight: 100}}, fs{FleetID: "new", Weight: 0},
			[]fs{{FleetID: "a", Weight: 100}}},
		{"0% with nothing else keeps the new fleet", nil, fs{FleetID: "new", Weight: 0}, []fs{{FleetID: "new", Weight: 0}}},
		{"the new fleet already on the route is replaced, idle fleets dropped",
			[]fs{{FleetID: "new", Weight: 20}, {FleetID: "a", Weight: 80}, {FleetID: "idle", Weight: 0}}, fs{FleetID: "new", Weight: 50},
			[]fs{{FleetID: "new", Weight: 50}, {FleetID: "a", Weight: 50}}},
		{"instance counts travel with the old fleet", []fs{{FleetID: "a", Weight: 100, Instances: 3}}, fs{FleetID: "new", Weight: 25, Instances: 1},
			[]fs{{FleetID: "new", Weight: 25, Instances: 1}, {FleetID: "a", Weight: 75, Instances: 3}}},
	} {
		if got := split(c.prev, c.nb); !slices.Equal(got, c.want) {
			t.Errorf("%s: split = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestSplitBaselineGivesTheBaselineTheCanarysShare(t *testing.T) {
	type fs = contract.FleetShare
	old := []fs{{FleetID: "a", Weight: 100}}
	for _, c := range []struct {
		name string
		prev []fs
		w    int
		want []fs
	}{
		{"0%: neither takes traffic", old, 0, []fs{{FleetID: "a", Weight: 100}}},
		{"10%: 10 and 10, the old fleet 80", old, 10, []fs{{FleetID: "new", Weight: 10}, {FleetID: "base", Weight: 10}, {FleetID: "a", Weight: 80}}},
		{"50%: the old fleet has nothing left", old, 50, []fs{{FleetID: "new", Weight: 50}, {FleetID: "base", Weight: 50}}},
		{"above 50%: the baseline gets what the canary leaves", old, 70, []fs{{FleetID: "new", Weight: 70}, {FleetID: "base", Weight: 30}}},
		{"100%: the baseline leaves the route", old, 100, []fs{{FleetID: "new", Weight: 100}}},
		{"two old fleets give in proportion", []fs{{FleetID: "a", Weight: 50}, {FleetID: "b", Weight: 50}}, 20,
			[]fs{{FleetID: "new", Weight: 20}, {FleetID: "base", Weight: 20}, {FleetID: "a", Weight: 30}, {FleetID: "b", Weight: 30}}},
	} {
		got := splitBaseline(c.prev, "new", "base", c.w)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: splitBaseline = %+v, want %+v", c.name, got, c.want)
		}
		sum := 0
		for _, s := range got {
			sum += s.Weight
		}
		if sum != 100 {
			t.Errorf("%s: weights sum to %d", c.name, sum)
		}
	}
}
