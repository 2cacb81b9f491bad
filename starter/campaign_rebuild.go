package main

import (
	"fmt"
	"strings"

	"github.com/imago/imago/internal/contract"
)

// bakesLine is a rebuild's counts: "2 succeeded (1 cache hit), 1 running".
func bakesLine(bakes []contract.CampaignBake) string {
	n, cached := map[contract.TargetState]int{}, 0
	for _, b := range bakes {
		n[b.State]++
		if b.Cached {
			cached++
		}
	}
	var parts []string
	for _, s := range []contract.TargetState{contract.TargetSucceeded, contract.TargetRunning, contract.TargetFailed,
		contract.TargetPending, contract.TargetSkipped} {
		if n[s] == 0 {
			continue
		}
		part := fmt.Sprintf("%d %s", n[s], s)
		if s == contract.TargetSucceeded && cached > 0 {
			part += fmt.Sprintf(" (%d cache hits)", cached)
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("%d bakes — %s", len(bakes), strings.Join(parts, ", "))
}

// bakeState is a bake's state, "succeeded (cache hit)" when it built nothing.
func bakeState(b contract.CampaignBake) string {
	if b.State == contract.TargetSucceeded && b.Cached {
		return string(b.State) + " (cache hit)"
	}
	return string(b.State)
}
