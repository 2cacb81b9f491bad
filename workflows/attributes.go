// Package workflows holds imago's workflow code: deterministic, no I/O, no clocks
// but workflow.Now, no goroutines but workflow.Go, no map iteration order.
package workflows

import (
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
)

// SearchAttributes lists imago's custom search attributes and their types, for
// registering them on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range contract.SearchAttributeKeys {
		out[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return out
}

// RolloutLabel is how a rollout's image reference reads in summaries and the
// ImagoImage attribute before the image is resolved.
func RolloutLabel(ref contract.ImageRef) string {
	switch {
	case ref.Channel != "":
		return "channel " + ref.Channel
	case ref.Bake != "":
		return "bake " + ref.Bake
	}
	return ref.ID
}

// RolloutAttributes are a rollout's search attributes when it starts.
func RolloutAttributes(r contract.Rollout) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		contract.ServiceAttr.ValueSet(r.Service),
		contract.EnvironmentAttr.ValueSet(r.Environment),
		contract.ImageAttr.ValueSet(RolloutLabel(r.Image)),
		contract.StrategyAttr.ValueSet(r.Strategy.Type),
		contract.PhaseAttr.ValueSet(string(contract.PhasePending)),
	)
}

// RolloutSummary and RolloutDetails are what the web UI shows for a rollout,
// whether the CLI, the API or a pipeline started it.
func RolloutSummary(r contract.Rollout) string {
	return fmt.Sprintf("%s → %s · %s · %s", r.Service, r.Environment, RolloutLabel(r.Image), r.Strategy.Type)
}

// RolloutDetails: see RolloutSummary.
func RolloutDetails(r contract.Rollout, startedBy string) string {
	return fmt.Sprintf("fleet of %d behind %s, health %s, %d smoke checks, soak %s; started by %s",
		r.Fleet.Size, r.Listen, r.Health.Path, len(r.Checks), r.SoakDuration(), startedBy)
}

// BakeAttributes are a bake's search attributes when it starts.
func BakeAttributes(b contract.Bake) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(contract.ServiceAttr.ValueSet(b.Service), contract.PhaseAttr.ValueSet("pending"))
}

// BakeSummary and BakeDetails are what the web UI shows for a bake.
func BakeSummary(b contract.Bake) string {
	return fmt.Sprintf("bake %s · %s → %s", b.Service, b.Builder, b.Channel)
}

// BakeDetails: see BakeSummary.
func BakeDetails(b contract.Bake, startedBy string) string {
	return fmt.Sprintf("builder %s, %d provisioning commands, started by %s", b.Builder, len(b.Provision), startedBy)
}
