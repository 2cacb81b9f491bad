package workflows

// The arithmetic of a rolling rollout under a capacity budget (contract.Strategy.Capacity:
// strategy.maxSurge, maxUnavailable, minHealthyPercent), as pure functions
// like those of arithmetic.go; budget_test.go tests them by table. What the
// workflow does with a step is in capacity.go.

// budget is a rolling rollout of size instances in waves of wave: at most
// size+surge instances run, at least size−unavailable serve. The old fleet
// keeps at least one instance until it is decommissioned, so a rollback stays
// one route switch (validation asks for a surge of at least 1).
type budget struct {
	size, surge, unavailable, wave int
}

// budgetStep is one step: shrink the old fleet to OldBefore (routing away
// from what goes, first), grow the new fleet to New and wait for it, then give
// it Weight percent and shrink the old fleet to OldAfter.
type budgetStep struct {
	OldBefore, New, OldAfter int
	// WeightBefore is the new fleet's share while the old fleet shrinks to
	// OldBefore; Weight its share once New instances serve.
	WeightBefore, Weight int
}

// step is the step after newN new and oldN old instances serve. It adds up
// to a wave, as many as the surge allows once the old fleet has shrunk as far
// as the floor (size − unavailable serving) allows.
func (b budget) step(newN, oldN int) budgetStep {
	floor := b.size - b.unavailable
	want := min(newN+max(b.wave, 1), b.size)
	// The old instances that must keep serving while the new ones start.
	keep := min(max(floor-newN, 1), oldN)
	want = min(want, b.size+b.surge-keep)
	st := budgetStep{New: want, OldBefore: min(oldN, b.size+b.surge-want)}
	st.WeightBefore = share(newN, st.OldBefore)
	st.OldAfter = st.OldBefore
	if want < b.size {
		// The old fleet gives up the share the new one took, keeping one.
		st.OldAfter = min(st.OldBefore, max(b.size-want, 1))
	}
	st.Weight = share(want, st.OldAfter)
	if want >= b.size {
		st.Weight = 100
	}
	return st
}

// steps is the whole rollout from oldN old instances and no new ones.
func (b budget) steps(oldN int) []budgetStep {
	var out []budgetStep
	for newN := 0; newN < b.size; {
		st := b.step(newN, oldN)
		if st.New <= newN { // a budget validation lets through would loop
			return out
		}
		out = append(out, st)
		newN, oldN = st.New, st.OldAfter
	}
	return out
}

// share is newN's share of traffic, in percent, beside oldN old instances.
func share(newN, oldN int) int {
	if newN+oldN == 0 {
		return 0
	}
	return newN * 100 / (newN + oldN)
}
