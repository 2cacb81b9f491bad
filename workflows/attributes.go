// Package workflows holds imago's workflow code: deterministic, no I/O, no clocks
// but workflow.Now, no goroutines but workflow.Go, no map iteration order.
package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// TaskQueue is the task queue imago's workers poll.
const TaskQueue = "imago"

// Query and update names.
const (
	QueryProgress = "progress"
)

// Search attributes that make rollouts findable in the web UI and `imago rollout list`.
var (
	ServiceAttr     = temporal.NewSearchAttributeKeyKeyword("ImagoService")
	EnvironmentAttr = temporal.NewSearchAttributeKeyKeyword("ImagoEnvironment")
	ImageAttr       = temporal.NewSearchAttributeKeyKeyword("ImagoImage")
	PhaseAttr       = temporal.NewSearchAttributeKeyKeyword("ImagoPhase")
	StrategyAttr    = temporal.NewSearchAttributeKeyKeyword("ImagoStrategy")
)

// SearchAttributes lists imago's custom search attributes and their types, for
// registering them on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKeyKeyword{ServiceAttr, EnvironmentAttr, ImageAttr, PhaseAttr, StrategyAttr} {
		out[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return out
}
