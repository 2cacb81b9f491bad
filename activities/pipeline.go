package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// LiveImages returns, per environment, the image its last successful rollout
// left serving ("" when none did).
func (a *Activities) LiveImages(ctx context.Context, in contract.LiveImagesInput) (map[string]string, error) {
	out := map[string]string{}
	for _, env := range in.Environments {
		d, err := a.Catalog.Live(ctx, in.Service, env)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			out[env] = ""
		case err != nil:
			return nil, inventoryError(err)
		default:
			out[env] = d.ImageID
		}
	}
	return out, nil
}

// StartDependents triggers every imago schedule whose pipeline opted in to
// changes of this base channel (onBaseChange), so images built on the old base
// are rebuilt and rolled out. A paused schedule stays paused. Triggering twice is
// harmless: the pipeline finds its inputs unchanged and skips.
func (a *Activities) StartDependents(ctx context.Context, in contract.StartDependentsInput) (contract.StartDependentsResult, error) {
	var out contract.StartDependentsResult
	if a.Temporal == nil {
		return out, nil
	}
	base := in.Service + "/" + in.Channel
	it, err := a.Temporal.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return out, fmt.Errorf("list schedules: %w", err)
	}
	var ids []string
	paused := map[string]bool{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return out, fmt.Errorf("list schedules: %w", err)
		}
		if Keyword(e.SearchAttributes, contract.WatchBaseAttr) != base {
			continue
		}
		ids = append(ids, e.ID)
		paused[e.ID] = e.Paused
	}
	sort.Strings(ids)
	for _, id := range ids {
		if paused[id] {
			out.Paused = append(out.Paused, id)
			continue
		}
		activity.RecordHeartbeat(ctx, id)
		if err := a.Temporal.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			return out, fmt.Errorf("trigger schedule %s: %w", id, err)
		}
		out.Triggered = append(out.Triggered, id)
	}
	return out, nil
}

// Keyword reads a Keyword search attribute from a raw workflow or schedule
// listing; "" when it is not set. (Search attributes are never encrypted.)
func Keyword(sa *commonpb.SearchAttributes, key temporal.SearchAttributeKeyKeyword) string {
	p := sa.GetIndexedFields()[key.GetName()]
	if p == nil {
		return ""
	}
	var v string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
		return ""
	}
	return v
}
