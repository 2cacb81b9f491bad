package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/telemetry"
	"github.com/imago/imago/workflows"
)

func TestMain(m *testing.M) {
	router.RunIfChild() // the local provider starts routers by re-running this binary
	os.Exit(m.Run())
}

// observed is what an operator sees of a worker that ran a successful rollout, a
// failed one and a failed bake: its /metrics, its JSON log lines and its spans.
type observed struct {
	namespace      string
	imageID        string
	ok, failed     client.WorkflowRun
	bake           client.WorkflowRun
	fleet          string
	routed         int // requests sent through the router
	metrics        map[string]*dto.MetricFamily
	logs           []map[string]any
	spans          []sdktrace.ReadOnlySpan
	metricsAddress string
}

// TestARealRolloutIsObservable runs a real Temporal server (in process), the real
// worker with telemetry on, the local provider (a real instance process and a real
// router process), replays every run once more (queries after a cache purge), and
// scrapes the worker's /metrics over HTTP.
func TestARealRolloutIsObservable(t *testing.T) {
	o := observe(t)

	t.Run("SDK metrics", func(t *testing.T) {
		require.Equal(t, 1.0, value(t, o.metrics, "temporal_workflow_completed_total", map[string]string{"workflow_type": "Rollout", "namespace": o.namespace, "task_queue": contract.TaskQueue}))
		require.Equal(t, 1.0, value(t, o.metrics, "temporal_workflow_failed_total", map[string]string{"workflow_type": "Rollout"}))
		h := histogram(t, o.metrics, "temporal_activity_execution_latency_seconds", map[string]string{"activity_type": "Provision"})
		require.Equal(t, uint64(1), h.GetSampleCount(), "one Provision ran")
		require.Equal(t, 2.0, value(t, o.metrics, "temporal_request_total", map[string]string{"operation": "StartWorkflowExecution", "workflow_type": "Rollout"}), "two rollouts started")
	})
	t.Run("rollouts and bakes by outcome", func(t *testing.T) {
		rollouts := map[string]string{"service": "hello", "environment": "test"}
		rollouts["outcome"] = "succeeded"
		require.Equal(t, 1.0, value(t, o.metrics, "imago_rollouts_total", rollouts))
		rollouts["outcome"] = "failed"
		require.Equal(t, 1.0, value(t, o.metrics, "imago_rollouts_total", rollouts))
		require.Equal(t, 1.0, value(t, o.metrics, "imago_bakes_total", map[string]string{"service": "hello", "outcome": "failed"}))
	})
	t.Run("phase durations", func(t *testing.T) {
		for _, phase := range []string{"resolving", "provisioning", "waiting-healthy", "validating", "cutting-over"} {
			h := histogram(t, o.metrics, "imago_phase_duration_seconds", map[string]string{"workflow_type": "Rollout", "phase": phase})
			// Two rollouts were resolving; only the first got further.
			want := uint64(1)
			if phase == "resolving" {
				want = 2
			}
			require.Equal(t, want, h.GetSampleCount(), "phase %s", phase)
		}
		h := histogram(t, o.metrics, "imago_phase_duration_seconds", map[string]string{"workflow_type": "Bake", "phase": "digest"})
		require.Equal(t, uint64(1), h.GetSampleCount())
		for _, m := range o.metrics["imago_phase_duration_seconds"].GetMetric() {
			for _, l := range m.GetLabel() {
				require.NotContains(t, []string{"succeeded", "failed"}, l.GetValue(), "a final phase has no duration")
			}
		}
	})
	t.Run("router traffic per fleet", func(t *testing.T) {
		labels := map[string]string{"service": "hello", "environment": "test", "fleet": o.fleet}
		require.GreaterOrEqual(t, value(t, o.metrics, "imago_router_requests_total", labels), float64(o.routed))
		require.Equal(t, 0.0, value(t, o.metrics, "imago_router_errors_total", labels))
		require.GreaterOrEqual(t, histogram(t, o.metrics, "imago_router_request_duration_seconds", labels).GetSampleCount(), uint64(o.routed))
		require.Equal(t, 1.0, value(t, o.metrics, "imago_router_up", map[string]string{"service": "hello", "environment": "test"}))
	})
	t.Run("drift per service and environment", func(t *testing.T) {
		require.Equal(t, 0.0, value(t, o.metrics, "imago_drift_instances", map[string]string{"service": "hello", "environment": "test", "workflow_type": "Drift"}))
	})
	t.Run("imago's metrics carry the labels the README lists", func(t *testing.T) {
		for name, labels := range readmeMetricLabels(t) {
			f := o.metrics[name]
			require.NotNil(t, f, "the README lists %s; the worker serves no such metric", name)
			for _, m := range f.GetMetric() {
				var have []string
				for _, l := range m.GetLabel() {
					have = append(have, l.GetName())
				}
				require.ElementsMatch(t, labels, have, "%s: the README's labels, and those a scrape shows", name)
			}
		}
	})
	t.Run("JSON logs carry workflow and run IDs", func(t *testing.T) {
		wf := findLog(t, o.logs, "provisioning 1 instances of "+o.imageID)
		require.Equal(t, "rollout/test/hello", wf["WorkflowID"])
		require.Equal(t, o.ok.GetRunID(), wf["RunID"])
		require.Equal(t, "Rollout", wf["WorkflowType"])
		require.Equal(t, "provisioning", wf["phase"])
		require.Equal(t, "INFO", wf["level"])

		act := findLog(t, o.logs, "event published", "phase", "provisioning")
		require.Equal(t, o.ok.GetRunID(), act["RunID"], "activity lines carry the run too")
		require.Equal(t, "rollout/test/hello", act["WorkflowID"])
		require.Equal(t, "PublishEvent", act["ActivityType"])

		failed := findLog(t, o.logs, "", "RunID", o.failed.GetRunID(), "phase", "failed")
		require.Contains(t, failed["msg"], "image img-000000000000")
	})
	t.Run("traces of workflows and activities", func(t *testing.T) {
		byName := map[string][]sdktrace.ReadOnlySpan{}
		for _, s := range o.spans {
			byName[s.Name()] = append(byName[s.Name()], s)
		}
		for _, name := range []string{"StartWorkflow:Rollout", "RunWorkflow:Rollout", "StartActivity:Provision", "RunActivity:Provision", "RunActivity:WaitHealthy", "RunActivity:SetRoute", "RunWorkflow:Bake"} {
			require.NotEmpty(t, byName[name], "no %s span among %d spans", name, len(o.spans))
		}
		run := byName["RunActivity:Provision"][0]
		start := byName["StartWorkflow:Rollout"][0]
		require.Equal(t, start.SpanContext().TraceID(), run.SpanContext().TraceID(), "the activity's span is in the trace the start began")
		require.Contains(t, run.Attributes(), attribute.String("temporalWorkflowID", "rollout/test/hello"))
		require.Contains(t, run.Attributes(), attribute.String("temporalRunID", o.ok.GetRunID()))

		wf := findLog(t, o.logs, "provisioning 1 instances of "+o.imageID)
		require.Equal(t, start.SpanContext().TraceID().String(), wf["TraceID"], "workflow log lines name their trace")
	})
}

func observe(t *testing.T) *observed {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	_, err := ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)
	home := t.TempDir()
	t.Cleanup(func() { require.NoError(t, local.CleanupHome(home)) })
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := app.Config{Home: home, TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), Logger: logger}
	deps, err := app.OpenDeps(ctx, cfg)
	require.NoError(t, err)
	defer deps.Close()

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	tracing, err := telemetry.NewTracing(tp)
	require.NoError(t, err)
	tel, err := telemetry.Start(ctx, telemetry.Options{
		MetricsListen: "127.0.0.1:0", Routers: telemetry.LocalRouters(deps.Local), Tracing: tracing, Logger: logger,
	})
	require.NoError(t, err)
	defer tel.Close(context.Background())
	cfg.MetricsHandler, cfg.Interceptors = tel.MetricsHandler(), tel.Interceptors()
	c, err := cfg.Dial(ctx)
	require.NoError(t, err)
	defer c.Close()
	w := app.NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	defer w.Stop()

	o := &observed{namespace: ts.GetDefaultNamespace(), metricsAddress: tel.MetricsAddr()}
	img, err := deps.Catalog.Import(ctx, buildHello(t), "hello", []string{"./hello"}, nil)
	require.NoError(t, err)
	o.imageID = img.ID
	listen := freeAddr(t)
	rollout := func(imageID string) (client.WorkflowRun, contract.RolloutResult, error) {
		r := spec.Rollout{Rollout: contract.Rollout{
			Service: "hello", Environment: "test", Image: contract.ImageRef{ID: imageID}, Fleet: contract.FleetSpec{Size: 1}, Listen: listen,
			Health: contract.Health{Interval: contract.Duration(100 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
			Checks: []contract.Check{{Path: "/"}},
		}}
		require.NoError(t, r.Normalize())
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: r.WorkflowID(), TaskQueue: contract.TaskQueue},
			workflows.Rollout, contract.RolloutInput{Spec: r.Rollout, StartedBy: "telemetry-test"})
		require.NoError(t, err)
		var res contract.RolloutResult
		return run, res, run.Get(ctx, &res)
	}
	var res contract.RolloutResult
	o.ok, res, err = rollout(img.ID)
	require.NoError(t, err)
	o.fleet = res.FleetID
	o.failed, _, err = rollout("img-000000000000")
	require.ErrorContains(t, err, "img-000000000000")

	o.bake, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bake/hello", TaskQueue: contract.TaskQueue}, workflows.Bake,
		contract.BakeInput{Spec: contract.Bake{Service: "hello", Builder: contract.BuilderLocal, Files: []string{filepath.Join(home, "missing.go")}, Entrypoint: []string{"./hello"}, Channel: "latest"}})
	require.NoError(t, err)
	require.ErrorContains(t, o.bake.Get(ctx, nil), "missing.go")

	for o.routed = 0; o.routed < 5; o.routed++ {
		resp, err := http.Get("http://" + listen + "/")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "router answered %s", body)
	}

	// A drift check of the live rollout: nothing drifted, the gauge says 0.
	drun, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "drift/test/hello", TaskQueue: contract.TaskQueue}, workflows.Drift,
		contract.DriftInput{Service: "hello", Environment: "test"})
	require.NoError(t, err)
	var drift contract.DriftReport
	require.NoError(t, drun.Get(ctx, &drift))
	require.Len(t, drift.Targets, 1)
	require.False(t, drift.Targets[0].Drifted(), "%+v", drift.Targets[0].Items)

	// Replay every run in full (as after a worker restart): replayed phases and
	// outcomes must not count again.
	worker.PurgeStickyWorkflowCache()
	for _, run := range []client.WorkflowRun{o.ok, o.failed, o.bake} {
		v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), contract.QueryProgress)
		require.NoError(t, err)
		require.True(t, v.HasValue())
	}

	o.metrics = scrape(t, tel.MetricsAddr())
	for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			o.logs = append(o.logs, m)
		}
	}
	require.NoError(t, tp.ForceFlush(ctx))
	o.spans = spans.Ended()
	return o
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "/metrics is not valid Prometheus text")
	return families
}

// find returns the one metric of name whose labels include want.
func find(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := families[name]
	require.NotNil(t, f, "no metric %s", name)
	var found []*dto.Metric
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range want {
			ok = ok && have[k] == v
		}
		if ok {
			found = append(found, m)
		}
	}
	require.Len(t, found, 1, "metrics %s%v: %v", name, want, f.GetMetric())
	return found[0]
}

func value(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	m := find(t, families, name, want)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return m.GetUntyped().GetValue()
}

func histogram(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Histogram {
	t.Helper()
	h := find(t, families, name, want).GetHistogram()
	require.NotNil(t, h, "%s is not a histogram", name)
	return h
}

// readmeMetricLabels reads the README's table of imago's metrics: each row names
// metrics in its first cell and their labels, as code spans, in its second.
func readmeMetricLabels(t *testing.T) map[string][]string {
	t.Helper()
	src, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	code := regexp.MustCompile("`([a-z_]+)`")
	rows := map[string][]string{}
	for _, line := range strings.Split(string(src), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`imago_") {
			continue
		}
		var labels []string
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			labels = append(labels, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]] = labels
		}
	}
	require.Len(t, rows, 8, "the README's metrics table, as this test reads it: %v", rows)
	return rows
}

// findLog returns the first log line with message msg ("" for any) and the
// given key-value pairs.
func findLog(t *testing.T, logs []map[string]any, msg string, kv ...string) map[string]any {
	t.Helper()
	for _, l := range logs {
		if msg != "" && l["msg"] != msg {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			ok = ok && fmt.Sprint(l[kv[i]]) == kv[i+1]
		}
		if ok {
			return l
		}
	}
	t.Fatalf("no log line %q with %v among %d lines", msg, kv, len(logs))
	return nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func buildHello(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v1", "-o", filepath.Join(dir, "hello"), "github.com/imago/imago/examples/hello").CombinedOutput()
	require.NoError(t, err, "build examples/hello: %s", out)
	return dir
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
