package workflows

import "testing"

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
