package bench

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// eachEvent calls f with each event of the history of the run id/runID, in
// order: the one history reader of the scenarios (P4's sizes, P5's times, the
// breakdowns).
func eachEvent(ctx context.Context, c client.Client, id, runID string, f func(*historypb.HistoryEvent)) error {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return fmt.Errorf("history of %s: %w", id, err)
		}
		f(ev)
	}
	return nil
}
