package app

import (
	"context"
	"os"
	"path/filepath"
	"runtime"

	commonpb "go.temporal.io/api/common/v1"
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
	var h historypb.History
	it := e.client.GetWorkflowHistory(ctx, workflowID, runID, false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatalf("read history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
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
