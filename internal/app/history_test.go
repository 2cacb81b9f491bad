package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"google.golang.org/protobuf/encoding/protojson"
)

// recordHistory writes a finished workflow's history into workflows/testdata when
// IMAGO_RECORD_HISTORIES is set (`make record-histories`); workflows' replay test
// replays every file there, so a nondeterministic change to workflow code fails CI.
// A recording never replaces another: the file is name.YYYYMMDD.json (the day the
// workflow started), name.YYYYMMDD-2.json for a second one that day, and so on,
// so the histories of older workflow code keep replaying beside today's.
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
	dir := filepath.Join(filepath.Dir(file), "..", "..", "workflows", "testdata", "histories")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	path, err := writeNewHistory(dir, name+"."+h.Events[0].GetEventTime().AsTime().UTC().Format("20060102"), data)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("recorded %d events of %s into %s", len(h.Events), workflowID, path)
}

// writeNewHistory writes data into dir as base.json, or base-2.json, base-3.json…
// when that exists: O_EXCL, so no recorded history is ever overwritten.
func writeNewHistory(dir, base string, data []byte) (string, error) {
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		path := filepath.Join(dir, name+".json")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return "", err
		}
		return path, f.Close()
	}
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

// logWhereItWaits logs, for a workflow that did not end in time, the events
// of its history and its pending activities and workflow task: where it waits
// and on which worker. A crash point that fails says why with it.
func (e *env) logWhereItWaits(workflowID, runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	it := e.client.GetWorkflowHistory(ctx, workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			fmt.Fprintf(&b, "history: %v\n", err)
			break
		}
		fmt.Fprintf(&b, "%4d %s %s\n", ev.GetEventId(), ev.GetEventTime().AsTime().Format("15:04:05.000"), ev.GetEventType())
	}
	d, err := e.client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		fmt.Fprintf(&b, "describe: %v\n", err)
	}
	for _, pa := range d.GetPendingActivities() {
		fmt.Fprintf(&b, "pending activity %s (id %s): %s, attempt %d, last worker %q, last failure %q\n", pa.GetActivityType().GetName(),
			pa.GetActivityId(), pa.GetState(), pa.GetAttempt(), pa.GetLastWorkerIdentity(), pa.GetLastFailure().GetMessage())
	}
	if wt := d.GetPendingWorkflowTask(); wt != nil {
		fmt.Fprintf(&b, "pending workflow task: %s, attempt %d\n", wt.GetState(), wt.GetAttempt())
	}
	e.t.Logf("where %s waits:\n%s", workflowID, b.String())
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

// `make record-histories` run twice the same day keeps both recordings, and
// never touches a history recorded before (from older workflow code).
func TestRecordingAHistoryNeverReplacesOne(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "rollout-bluegreen.json")
	require.NoError(t, os.WriteFile(old, []byte("old code"), 0o644))
	var paths []string
	for _, data := range []string{"today", "today again", "and again"} {
		p, err := writeNewHistory(dir, "rollout-bluegreen.20261203", []byte(data))
		require.NoError(t, err)
		paths = append(paths, filepath.Base(p))
	}
	assert.Equal(t, []string{"rollout-bluegreen.20261203.json", "rollout-bluegreen.20261203-2.json", "rollout-bluegreen.20261203-3.json"}, paths)
	for name, want := range map[string]string{
		"rollout-bluegreen.json": "old code", "rollout-bluegreen.20261203.json": "today",
		"rollout-bluegreen.20261203-2.json": "today again", "rollout-bluegreen.20261203-3.json": "and again",
	} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, want, string(data), name)
	}
}
