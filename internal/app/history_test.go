package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"google.golang.org/protobuf/encoding/protojson"
)

// recordHistory writes a finished workflow's history into workflows/testdata when
// IMAGO_RECORD_HISTORIES is set (`make record-histories`); workflows' replay test
// replays every file there, so a nondeterministic change to workflow code fails CI.
func (e *env) recordHistory(name, workflowID, runID string) {
	if os.Getenv("IMAGO_RECORD_HISTORIES") == "" {
		return
	}
	ctx := context.Background()
	h := historypb.History{Events: e.history(workflowID, runID)}
	// Stored decrypted: the replay test replays them without the test's key.
	pc, err := e.cfg.PayloadCodec(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := proxy.VisitPayloads(ctx, &h, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return pc.Decode(p)
		},
	}); err != nil {
		e.t.Fatalf("decrypt history of %s: %v", workflowID, err)
	}
	data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	if err != nil {
		e.t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "workflows", "testdata", "histories", name+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("recorded %d events of %s into %s", len(h.Events), workflowID, path)
}

// history reads a workflow's history, as the server keeps it.
func (e *env) history(workflowID, runID string) []*historypb.HistoryEvent {
	var out []*historypb.HistoryEvent
	it := e.client.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatalf("read history of %s: %v", workflowID, err)
		}
		out = append(out, ev)
	}
	return out
}

// activityRetries lists, for a finished workflow, every activity that did not
// end in its first attempt or that timed out: an activity's started event
// records the attempt that ended it, and retried attempts leave no events of
// their own.
func (e *env) activityRetries(workflowID, runID string) []string {
	events := e.history(workflowID, runID)
	types := map[int64]string{}
	var out []string
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			types[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if a.GetAttempt() > 1 {
				out = append(out, fmt.Sprintf("%s ended in attempt %d (last failure: %s)", types[a.GetScheduledEventId()], a.GetAttempt(), a.GetLastFailure().GetMessage()))
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			a := ev.GetActivityTaskTimedOutEventAttributes()
			out = append(out, fmt.Sprintf("%s timed out: %s", types[a.GetScheduledEventId()], a.GetFailure().GetMessage()))
		}
	}
	return out
}
