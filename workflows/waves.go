package workflows

import "fmt"

// MaxWaves is the most waves a rolling rollout runs. Route weights are whole
// percents, so a wave of less than 1% of the fleet could not take a share of
// traffic of its own; and every wave adds about 40 events to the rollout's
// history, so 100 waves keep it far below Temporal's limits (51,200 events,
// 50 MB) however large the fleet.
const MaxWaves = 100

// wavePlan is how a rolling rollout of size instances is cut into waves when
// the spec asks for asked instances per wave: waves of wave instances (the
// last one may be smaller), widened to ceil(size/MaxWaves) when asked would
// take more than MaxWaves waves.
type wavePlan struct {
	size, asked, wave, waves int
}

func planWaves(size, asked int) wavePlan {
	asked = max(asked, 1)
	wave := max(asked, ceilDiv(size, MaxWaves))
	return wavePlan{size: size, asked: asked, wave: wave, waves: ceilDiv(size, wave)}
}

// widened says, when the plan widened the waves, what it did and why.
func (p wavePlan) widened() (string, bool) {
	if p.wave == p.asked {
		return "", false
	}
	return fmt.Sprintf("waves of %d on %d instances would be %d waves; imago runs at most %d: %d instances per wave",
		p.asked, p.size, ceilDiv(p.size, p.asked), MaxWaves, p.wave), true
}

// weight is the share of traffic, in percent, of placed new instances.
func (p wavePlan) weight(placed int) int { return placed * 100 / p.size }

// oldKeep is how many of the old fleet's oldSize instances still serve while
// placed new ones serve: the old fleet gives up the share the new one took,
// keeping at least one instance.
func (p wavePlan) oldKeep(oldSize, placed int) int {
	return max(oldSize-placed*oldSize/p.size, 1)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
