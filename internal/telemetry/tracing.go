package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Tracing is OpenTelemetry tracing of imago's workflows and activities: the
// Temporal SDK's tracing interceptor on the client (starting workflows) and its
// workers (workflow, activity, update and query spans, linked through Temporal
// headers), exported over OTLP.
type Tracing struct {
	Interceptor interceptor.Interceptor
	shutdown    func(context.Context) error
}

// TracingConfigured reports whether the environment names an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): tracing is
// off unless it does.
func TracingConfigured() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// TracingFromEnv sets up tracing to the OTLP endpoint the environment names
// (gRPC; the exporter reads the other OTEL_EXPORTER_OTLP_* variables, e.g.
// _INSECURE, _HEADERS, _CERTIFICATE). It returns nil when none is named.
func TracingFromEnv(ctx context.Context) (*Tracing, error) {
	if !TracingConfigured() {
		return nil, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(workerResource()))
	t, err := NewTracing(tp)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	t.shutdown = tp.Shutdown
	return t, nil
}

// workerResource names the process in traces: imago-worker, unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
func workerResource() *resource.Resource {
	res := resource.Default()
	if os.Getenv("OTEL_SERVICE_NAME") != "" || strings.Contains(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), "service.name=") {
		return res
	}
	merged, err := resource.Merge(res, resource.NewSchemaless(attribute.String("service.name", "imago-worker")))
	if err != nil {
		return res
	}
	return merged
}

// NewTracing makes the tracing interceptor on tp. The caller owns tp (TracingFromEnv
// makes and shuts down its own).
func NewTracing(tp trace.TracerProvider) (*Tracing, error) {
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tp.Tracer("github.com/imago/imago"),
		TextMapPropagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return &Tracing{Interceptor: i}, nil
}

// Shutdown flushes spans not yet exported.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}
