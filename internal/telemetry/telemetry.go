// Package telemetry is what imago-worker tells operators about itself: Prometheus
// metrics on an HTTP /metrics endpoint (the Temporal SDK's own, imago's rollouts,
// bakes and phase durations, and the local routers' traffic per fleet) and, when
// an OTLP endpoint is configured, OpenTelemetry traces of workflows and
// activities. Logs are the worker's slog JSON, which the SDK enriches with
// workflow and run IDs.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/imago/imago/internal/httpx"
)

// DefaultMetricsListen is where imago-worker serves /metrics by default.
const DefaultMetricsListen = "127.0.0.1:9464"

// Options configure a worker's telemetry.
type Options struct {
	// MetricsListen is the host:port of the /metrics endpoint; "" serves no metrics.
	MetricsListen string
	// MetricsOptional makes a MetricsListen already in use a warning instead of an
	// error (the default address: a second worker on the same host goes without).
	MetricsOptional bool
	// Routers, when set, are re-exported in the metrics (imago_router_*).
	Routers RouterSource
	// Tracing overrides tracing from the environment (TracingFromEnv); tests set
	// it to record spans in memory.
	Tracing *Tracing
	Logger  *slog.Logger
}

// Telemetry is a worker's running telemetry. Hand MetricsHandler and
// Interceptors to the Temporal client (app.Config) before dialling.
type Telemetry struct {
	registry *prometheus.Registry
	sdk      *sdkMetrics
	srv      *http.Server
	addr     string
	served   chan struct{}
	tracing  *Tracing
}

// Start starts serving metrics (unless MetricsListen is empty) and sets up tracing
// (when the environment configures it, or o.Tracing is set).
func Start(ctx context.Context, o Options) (*Telemetry, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := &Telemetry{tracing: o.Tracing}
	if t.tracing == nil {
		tr, err := TracingFromEnv(ctx)
		if err != nil {
			return nil, err
		}
		t.tracing = tr
	}
	if o.MetricsListen != "" {
		if err := t.serveMetrics(o); err != nil {
			_ = t.tracing.Shutdown(ctx)
			return nil, err
		}
	}
	return t, nil
}

func (t *Telemetry) serveMetrics(o Options) error {
	ln, err := net.Listen("tcp", o.MetricsListen)
	if err != nil {
		if o.MetricsOptional && errors.Is(err, syscall.EADDRINUSE) {
			o.Logger.Warn("metrics address in use (another imago-worker on this host?): this worker serves no metrics; give it its own with --metrics-listen or IMAGO_METRICS_LISTEN",
				"address", o.MetricsListen)
			return nil
		}
		return fmt.Errorf("serve metrics on %s (--metrics-listen, IMAGO_METRICS_LISTEN): %w; pick a free host:port, or \"\" to serve no metrics", o.MetricsListen, err)
	}
	t.registry = prometheus.NewRegistry()
	t.sdk = newSDKMetrics()
	t.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		t.sdk,
	)
	if o.Routers != nil {
		t.registry.MustRegister(newRouterCollector(o.Routers, o.Logger))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	t.srv = httpx.NewServer(mux, httpx.ShortTimeouts)
	t.addr = ln.Addr().String()
	t.served = make(chan struct{})
	go func() {
		defer close(t.served)
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("metrics server stopped", "address", t.addr, "error", err)
		}
	}()
	o.Logger.Info("serving metrics", "url", "http://"+t.addr+"/metrics")
	return nil
}

// MetricsAddr is the address /metrics is served on; "" when metrics are off.
func (t *Telemetry) MetricsAddr() string { return t.addr }

// MetricsHandler receives the Temporal SDK's metrics (client.Options.MetricsHandler);
// nil when metrics are off.
func (t *Telemetry) MetricsHandler() client.MetricsHandler {
	if t.sdk == nil {
		return nil
	}
	return handler{m: t.sdk}
}

// Interceptors are the client interceptors (which the client's workers use too):
// imago's workflow metrics when metrics are on, tracing when it is configured.
func (t *Telemetry) Interceptors() []interceptor.ClientInterceptor {
	var out []interceptor.ClientInterceptor
	if t.tracing != nil {
		out = append(out, t.tracing.Interceptor)
	}
	if t.sdk != nil {
		out = append(out, WorkflowMetrics())
	}
	return out
}

// Tracing is the tracing set up by Start; nil when tracing is off.
func (t *Telemetry) Tracing() *Tracing { return t.tracing }

// Close stops the metrics server and flushes traces.
func (t *Telemetry) Close(ctx context.Context) error {
	var errs []error
	if t.srv != nil {
		errs = append(errs, t.srv.Shutdown(ctx))
		<-t.served
	}
	errs = append(errs, t.tracing.Shutdown(ctx))
	return errors.Join(errs...)
}
