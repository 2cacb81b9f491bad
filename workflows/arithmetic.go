package workflows

// The arithmetic of traffic shifting, as pure functions (like Argo Rollouts'
// CalculateReplicaCountsForCanary): how a rolling rollout is cut into waves,
// what share of traffic and how many old instances each wave leaves, and how a
// weight is split between the new fleet and the old ones. No workflow.Context
// here: arithmetic_test.go tests them by table.

import (
	"fmt"
	"slices"

	"github.com/imago/imago/internal/contract"
)

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

// uncappedWaves is the plan of rollouts that began before rolling-by-count:
// waves of asked instances, however many.
func uncappedWaves(size, asked int) wavePlan {
	return wavePlan{size: size, asked: asked, wave: asked, waves: ceilDiv(size, asked)}
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

// counts is what a wave leaves when placed new instances serve: their share of
// traffic and, of a single old fleet of oldSize instances, how many still serve
// (all of them once the new fleet takes everything: it is decommissioned, not
// shrunk).
func (p wavePlan) counts(oldSize, placed int) (weight, keep int) {
	weight = p.weight(placed)
	if weight < 100 {
		return weight, p.oldKeep(oldSize, placed)
	}
	return weight, oldSize
}

// next is how many new instances serve after the wave that follows placed.
func (p wavePlan) next(placed int) int { return min(placed+p.wave, p.size) }

// split gives the new fleet its weight and shares the rest among prev's fleets.
func split(prev []contract.FleetShare, nb contract.FleetShare) []contract.FleetShare {
	var out []contract.FleetShare
	rest := 100 - nb.Weight
	total := 0
	for _, b := range prev {
		if b.FleetID != nb.FleetID {
			total += b.Weight
		}
	}
	given := 0
	var olds []contract.FleetShare
	for _, b := range prev {
		if b.FleetID == nb.FleetID || b.Weight == 0 {
			continue
		}
		w := 0
		if total > 0 {
			w = rest * b.Weight / total
		}
		given += w
		b.Weight = w
		olds = append(olds, b)
	}
	if len(olds) > 0 {
		olds[0].Weight += rest - given // rounding goes to the first old fleet
	}
	if nb.Weight > 0 || len(olds) == 0 {
		out = append(out, nb)
	}
	for _, b := range olds {
		if b.Weight > 0 {
			out = append(out, b)
		}
	}
	return out
}

// splitBaseline is split with a canary's baseline: weight w gives the canary w
// and the baseline as much, min(w, 100−w), out of the old fleets' shares
// (100−2w left to them). Above 50% the baseline gets what the canary leaves
// and the old fleets nothing; at 100% the baseline is out of the route.
func splitBaseline(prev []contract.FleetShare, canary, baseline string, w int) []contract.FleetShare {
	b := min(w, 100-w)
	out := split(prev, contract.FleetShare{FleetID: canary, Weight: w + b})
	for i, s := range out {
		if s.FleetID == canary && b > 0 {
			out[i].Weight = w
			return slices.Insert(out, i+1, contract.FleetShare{FleetID: baseline, Weight: b})
		}
	}
	return out
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
