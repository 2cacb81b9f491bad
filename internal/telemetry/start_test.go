package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/grpc"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/telemetry"
	"github.com/imago/imago/workflows"
)

func noOTLPEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
}

func TestTracingIsOffWithoutAnOTLPEndpoint(t *testing.T) {
	noOTLPEnv(t)
	ctx := context.Background()

	tel, err := telemetry.Start(ctx, telemetry.Options{})
	require.NoError(t, err)
	defer tel.Close(ctx)
	require.Nil(t, tel.Tracing())
	require.Empty(t, tel.Interceptors(), "no metrics, no tracing: no interceptor at all")
	require.Nil(t, tel.MetricsHandler())
	require.Empty(t, tel.MetricsAddr())

	withMetrics, err := telemetry.Start(ctx, telemetry.Options{MetricsListen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer withMetrics.Close(ctx)
	require.Nil(t, withMetrics.Tracing())
	require.Len(t, withMetrics.Interceptors(), 1, "only imago's workflow metrics")
	require.IsType(t, telemetry.WorkflowMetrics(), withMetrics.Interceptors()[0])
}

// otlpReceiver is a real OTLP/gRPC trace endpoint on 127.0.0.1 that keeps what it gets.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu  sync.Mutex
	got []*collectortrace.ExportTraceServiceRequest
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// spans returns span names by the service.name of their resource.
func (r *otlpReceiver) spans() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for _, req := range r.got {
		for _, rs := range req.GetResourceSpans() {
			svc := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					svc = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out[svc] = append(out[svc], s.GetName())
				}
			}
		}
	}
	return out
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, a workflow run by the worker reaches the
// endpoint as spans over OTLP/gRPC, named for the worker.
func TestTracingExportsToTheOTLPEndpointOfTheEnvironment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	recv := &otlpReceiver{}
	collectortrace.RegisterTraceServiceServer(srv, recv)
	go srv.Serve(ln)
	defer srv.Stop()
	noOTLPEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String()) // http: no TLS
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tel, err := telemetry.Start(ctx, telemetry.Options{})
	require.NoError(t, err)
	require.NotNil(t, tel.Tracing())
	require.Len(t, tel.Interceptors(), 1, "the tracing interceptor")

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	_, err = ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)
	cfg := app.Config{Home: t.TempDir(), TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), Interceptors: tel.Interceptors()}
	deps, err := app.OpenDeps(ctx, cfg)
	require.NoError(t, err)
	defer deps.Close()
	c, err := cfg.Dial(ctx)
	require.NoError(t, err)
	defer c.Close()
	w := app.NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	defer w.Stop()

	// A rollout of an image the catalog does not know: it fails at once, traced.
	r := spec.Rollout{Rollout: contract.Rollout{Service: "hello", Environment: "test", Image: contract.ImageRef{ID: "img-000000000000"}, Listen: "127.0.0.1:1"}}
	require.NoError(t, r.Normalize())
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: r.WorkflowID(), TaskQueue: contract.TaskQueue}, workflows.Rollout, contract.RolloutInput{Spec: r.Rollout})
	require.NoError(t, err)
	require.ErrorContains(t, run.Get(ctx, nil), "img-000000000000")

	require.NoError(t, tel.Close(ctx), "Close flushes the spans")
	got := recv.spans()["imago-worker"]
	require.Contains(t, got, "StartWorkflow:Rollout")
	require.Contains(t, got, "RunWorkflow:Rollout")
	require.Contains(t, got, "RunActivity:ResolveImage")
}

func TestAMetricsAddressInUse(t *testing.T) {
	noOTLPEnv(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	ctx := context.Background()

	_, err = telemetry.Start(ctx, telemetry.Options{MetricsListen: busy.Addr().String()})
	require.ErrorContains(t, err, "serve metrics on "+busy.Addr().String()+" (--metrics-listen, IMAGO_METRICS_LISTEN)")
	require.ErrorContains(t, err, "address already in use")
	require.ErrorContains(t, err, `pick a free host:port, or "" to serve no metrics`)

	// The default address held by another worker on the host: a warning, no metrics.
	var log bytes.Buffer
	tel, err := telemetry.Start(ctx, telemetry.Options{MetricsListen: busy.Addr().String(), MetricsOptional: true,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	require.NoError(t, err)
	defer tel.Close(ctx)
	require.Empty(t, tel.MetricsAddr())
	require.Nil(t, tel.MetricsHandler())
	require.Contains(t, log.String(), "metrics address in use (another imago-worker on this host?)")
	require.Contains(t, log.String(), busy.Addr().String())

	_, err = telemetry.Start(ctx, telemetry.Options{MetricsListen: "nowhere"})
	require.ErrorContains(t, err, "serve metrics on nowhere")
}

// The SDK's metrics handler: counters, gauges and timers with tags become
// Prometheus counters, gauges and histograms (seconds) on /metrics, named the
// Prometheus way (the SDK's own Prometheus naming): counters end in _total,
// timers in _seconds.
func TestSDKMetricsBecomePrometheusMetrics(t *testing.T) {
	noOTLPEnv(t)
	ctx := context.Background()
	tel, err := telemetry.Start(ctx, telemetry.Options{MetricsListen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer tel.Close(ctx)
	h := tel.MetricsHandler().WithTags(map[string]string{"namespace": "default", "task_queue": "imago"})
	h.Counter("temporal_request").Inc(2)
	h.Counter("temporal_request").Inc(3)
	h.WithTags(map[string]string{"task_queue": "other"}).Counter("temporal_request").Inc(1)
	h.Gauge("temporal_num_pollers").Update(4)
	h.Timer("temporal_request_latency").Record(30 * time.Millisecond)
	h.Timer("temporal_request_latency").Record(2 * time.Second)
	h.Counter("odd.name-here").Inc(1)

	m := scrape(t, tel.MetricsAddr())
	require.Equal(t, 5.0, value(t, m, "temporal_request_total", map[string]string{"namespace": "default", "task_queue": "imago"}))
	require.Equal(t, 1.0, value(t, m, "temporal_request_total", map[string]string{"task_queue": "other"}), "WithTags overrides a tag")
	require.Equal(t, 4.0, value(t, m, "temporal_num_pollers", map[string]string{"namespace": "default"}))
	lat := histogram(t, m, "temporal_request_latency_seconds", map[string]string{"namespace": "default"})
	require.Equal(t, uint64(2), lat.GetSampleCount())
	require.InDelta(t, 2.03, lat.GetSampleSum(), 1e-9)
	for _, b := range lat.GetBucket() {
		switch b.GetUpperBound() {
		case 0.025:
			require.Equal(t, uint64(0), b.GetCumulativeCount())
		case 0.05:
			require.Equal(t, uint64(1), b.GetCumulativeCount())
		case 2.5:
			require.Equal(t, uint64(2), b.GetCumulativeCount())
		}
	}
	require.Equal(t, 1.0, value(t, m, "odd_name_here_total", nil), "names are made valid")
	require.NotNil(t, m["go_goroutines"], "the Go runtime's metrics too")
}
