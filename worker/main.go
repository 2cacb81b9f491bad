// Command imago-worker runs imago's workflows and activities.
//
// With no Temporal address (TEMPORAL_ADDRESS, the address of the Temporal CLI's
// profile, see app.ConfigFromEnv, or --temporal-address) it embeds a Temporal dev server
// in the same process: a SQLite file under $IMAGO_HOME, the "default" namespace
// with imago's search attributes, and the Temporal web UI. With one, it is a plain
// worker for that server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/devserver"
	_ "github.com/imago/imago/internal/pprofdebug" // net/http/pprof in builds tagged imago_pprof
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/telemetry"
	"github.com/imago/imago/workflows"
)

func main() {
	app.OwnerOnly() // files 0600, directories 0700, here and in every process started from here
	// The local provider starts routers and sim hosts by re-running this binary.
	router.RunIfChild()
	local.RunSimIfChild()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "imago-worker:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run() error {
	cfg := app.ConfigFromEnv()
	fs := flag.NewFlagSet("imago-worker", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: imago-worker [flags]

Runs imago's workflows and activities. Without TEMPORAL_ADDRESS it also runs an
embedded Temporal server (SQLite under $IMAGO_HOME, default ~/.imago) and the
Temporal web UI. On SIGTERM it lets running activities finish for
IMAGO_WORKER_STOP_TIMEOUT (default 25s; builds and image tests
IMAGO_BAKE_STOP_TIMEOUT, default 10m); it runs IMAGO_BAKE_CONCURRENCY (default 2)
builds and image tests at once.

Example:
  imago-worker                                   # embedded server + UI + worker, state in ~/.imago
  imago-worker --dev-only                        # server + UI only; run workers separately
  imago-worker --dev-listen 10.0.0.5:7233 --allow-remote   # server reachable from a trusted network
  TEMPORAL_ADDRESS=127.0.0.1:7233 imago-worker   # plain worker for an existing server
  imago-worker --provider 'aws://eu-west-1?vpc=vpc-…&subnets=subnet-…&instanceType=t3.small&listeners=prod/web=arn:…'

Flags:
`)
		fs.PrintDefaults()
	}
	address := fs.String("temporal-address", cfg.TemporalAddress, "Temporal frontend host:port; empty embeds a dev server (env TEMPORAL_ADDRESS, else the Temporal CLI profile's address)")
	namespace := fs.String("namespace", cfg.Namespace, "Temporal namespace (env TEMPORAL_NAMESPACE)")
	devListen := fs.String("dev-listen", app.DefaultTemporalAddress, "embedded server: frontend gRPC address")
	uiListen := fs.String("ui-listen", "127.0.0.1:8233", "embedded server: web UI address; empty turns the UI off")
	devOnly := fs.Bool("dev-only", false, "embedded server: run the server and UI without polling for work")
	allowRemote := fs.Bool("allow-remote", false, "embedded server: let --dev-listen and --ui-listen be non-loopback addresses; "+
		"the server and UI have no authentication, so only on a network you trust (logs a warning)")
	codecListen := fs.String("codec-listen", "127.0.0.1:8234", "payload codec server (POST /codec/encode, /codec/decode) for the web UI and temporal --codec-endpoint; "+
		"on by default with the embedded web UI (which it decrypts for), otherwise only when given; empty turns it off")
	tokensFile := fs.String("tokens-file", "", "codec server: file of bearer tokens and their scopes, TOKEN SCOPE[,SCOPE...] a line (# comments), mode 0600, "+
		"as imago serve reads it; added to IMAGO_API_TOKENS; only admin tokens may encode or decode")
	home := fs.String("home", cfg.Home, "state directory: catalog, fleets, routes, logs, dev database (env IMAGO_HOME)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	providerURL := fs.String("provider", cfg.ProviderURL, "the rollouts' provider by URL: local://, local://?home=DIR&sim=COMMAND, "+
		"aws://REGION?vpc=…&subnets=…&instanceType=…&listeners=ENV/SERVICE=ARN,… (env IMAGO_PROVIDER_URL; unset: IMAGO_PROVIDER, default local)")
	metricsListen := fs.String("metrics-listen", cfg.MetricsListen, "Prometheus /metrics address of the worker; empty turns metrics off (env IMAGO_METRICS_LISTEN)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %v; see imago-worker --help", fs.Args())}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)}
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.TemporalAddress, cfg.Namespace, cfg.Home, cfg.Logger = *address, *namespace, *home, logger
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "provider" {
			cfg.ProviderURL, cfg.ProviderURLSetting = *providerURL, "--provider"
		}
	})
	if cfg.TemporalAddress != "" && *devOnly {
		return usageError{errors.New("--dev-only runs the embedded server, which a Temporal address turns off (TEMPORAL_ADDRESS, or the Temporal CLI profile's address: override it with --temporal-address=); unset one of them")}
	}
	if cfg.TemporalAddress != "" && *allowRemote {
		return usageError{errors.New("--allow-remote is for the embedded server, which a Temporal address turns off (TEMPORAL_ADDRESS, or the Temporal CLI profile's address: override it with --temporal-address=); unset one of them")}
	}

	wc, err := app.WorkerConfigFromEnv()
	if err != nil {
		return usageError{err}
	}

	embedded := cfg.TemporalAddress == ""
	codecSrv, codecTokens, err := listenCodec(fs, *codecListen, *tokensFile, embedded && *uiListen != "")
	if err != nil {
		return err
	}
	if codecSrv != nil {
		defer codecSrv.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.EnsureHome(cfg.Home, logger); err != nil {
		return err
	}

	if embedded {
		start := time.Now()
		srv, err := devserver.Start(ctx, devserver.Config{
			DBPath:           filepath.Join(cfg.Home, "temporal.db"),
			Listen:           *devListen,
			UIListen:         *uiListen,
			Namespace:        cfg.Namespace,
			SearchAttributes: workflows.SearchAttributes(),
			Logger:           logger,
			CodecEndpoint:    codecSrv.Endpoint(),
			AllowRemote:      *allowRemote,
		})
		if err != nil {
			return fmt.Errorf("start embedded Temporal server: %w", err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				logger.Error("stop embedded Temporal server", "error", err)
			}
		}()
		cfg.UseEmbedded(srv.FrontendAddress())
		logger.Info("embedded Temporal server started", "address", srv.FrontendAddress(), "ui", srv.UIAddress(),
			"namespace", srv.Namespace(), "db", filepath.Join(cfg.Home, "temporal.db"), "took", time.Since(start).String())
		fmt.Fprintf(os.Stderr, "imago: Temporal at %s", srv.FrontendAddress())
		if srv.UIAddress() != "" {
			fmt.Fprintf(os.Stderr, ", web UI at http://%s/namespaces/%s/workflows", srv.UIAddress(), srv.Namespace())
		}
		fmt.Fprintln(os.Stderr)
		if err := serveCodec(ctx, codecSrv, codecTokens, cfg, srv.UIAddress(), logger); err != nil {
			return err
		}
		if *devOnly {
			<-ctx.Done()
			logger.Info("shutting down")
			return nil
		}
	}

	if !embedded {
		if err := serveCodec(ctx, codecSrv, codecTokens, cfg, "", logger); err != nil {
			return err
		}
	}

	deps, err := app.OpenDeps(ctx, cfg)
	if err != nil {
		return err
	}
	defer deps.Close()
	tel, err := startTelemetry(ctx, fs, *metricsListen, deps, logger)
	if err != nil {
		return err
	}
	defer closeTelemetry(tel, logger)
	cfg.MetricsHandler, cfg.Interceptors = tel.MetricsHandler(), append(cfg.Interceptors, tel.Interceptors()...)
	c, err := cfg.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	w := app.NewWorkers(c, deps.Activities, wc)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	// A worker killed with kill -9 leaves its workflows' next tasks waiting on
	// its sticky queue; send them to the shared queue now (app.ReleaseStickyQueues).
	released := make(chan struct{})
	go func() {
		defer close(released)
		n, err := app.ReleaseStickyQueues(ctx, c, cfg.Namespace, contract.TaskQueue)
		if err != nil {
			logger.Warn("release the sticky queues of running workflows", "released", n, "error", err)
			return
		}
		logger.Info("released the sticky queues of running workflows", "released", n)
	}()
	defer func() { <-released }()
	logger.Info("worker polling", "taskQueue", contract.TaskQueue, "bakeTaskQueue", contract.BakeTaskQueue, "bakeConcurrency", wc.BakeConcurrency,
		"address", cfg.TemporalAddress, "namespace", cfg.Namespace, "home", cfg.Home,
		"provider", deps.Provider.URL(), "capabilities", deps.Provider.Capabilities().String())
	fmt.Fprintf(os.Stderr, "imago: worker polling task queues %q and %q (IMAGO_HOME=%s); Ctrl-C stops it\n", contract.TaskQueue, contract.BakeTaskQueue, cfg.Home)
	<-ctx.Done()
	stop() // a second Ctrl-C or SIGTERM ends the process at once
	logger.Info("shutting down: running activities may finish", "stopTimeout", wc.StopTimeout.String(), "bakeStopTimeout", wc.BakeStopTimeout.String())
	fmt.Fprintf(os.Stderr, "imago: stopping; running activities may finish (up to %s, builds and image tests %s); Ctrl-C again stops now\n", wc.StopTimeout, wc.BakeStopTimeout)
	w.Stop()
	return nil
}

// listenCodec binds the codec server's address: by default with the embedded web
// UI, otherwise only when --codec-listen is given; never when it is empty. It
// reads the tokens the server accepts from IMAGO_API_TOKENS and tokensFile, as
// imago serve does.
func listenCodec(fs *flag.FlagSet, addr, tokensFile string, byDefault bool) (*codec.Server, []tokens.Token, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "codec-listen" })
	if addr == "" || (!byDefault && !given) {
		if tokensFile != "" {
			return nil, nil, usageError{errors.New("--tokens-file is for the codec server, which is off; give --codec-listen too, or drop --tokens-file")}
		}
		return nil, nil, nil
	}
	toks, err := tokens.Load(os.Getenv("IMAGO_API_TOKENS"), tokensFile)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("codec server: %w", err)}
	}
	srv, err := codec.Listen(addr, len(toks) > 0)
	if err != nil {
		return nil, nil, fmt.Errorf("--codec-listen: %w", err)
	}
	return srv, toks, nil
}

// serveCodec serves the payload codec on srv (nil: none) to callers with an
// admin token of toks, letting the web UI at uiAddr and IMAGO_UI_ORIGIN call it
// from the browser.
func serveCodec(ctx context.Context, srv *codec.Server, toks []tokens.Token, cfg app.Config, uiAddr string, logger *slog.Logger) error {
	if srv == nil {
		return nil
	}
	pc, err := cfg.PayloadCodec(ctx)
	if err != nil {
		return err
	}
	origins := append(codec.UIOrigins(uiAddr), codec.ParseOrigins(cfg.UIOrigin)...)
	srv.Serve(codec.NewHandler(pc, codec.HandlerOptions{Tokens: toks, Origins: origins, Logger: logger}))
	admins := 0
	for _, t := range toks {
		if t.Scopes.Allow(tokens.Scope{Kind: tokens.Admin}) {
			admins++
		}
	}
	logger.Info("codec server started", "endpoint", srv.Endpoint(), "origins", origins, "tokens", len(toks), "admin_tokens", admins)
	fmt.Fprintf(os.Stderr, "imago: payloads are encrypted (data key %s); codec server at %s\n", pc.KeyID(), srv.Endpoint())
	if len(toks) > 0 && admins == 0 {
		logger.Warn("no API token has the admin scope, so the codec server refuses every caller (403); write TOKEN admin in IMAGO_API_TOKENS or --tokens-file for those who may read payloads")
	}
	if len(toks) > 0 && uiAddr != "" {
		logger.Warn("API tokens are set, so the codec server wants an admin bearer token, which the web UI does not send: the UI shows payloads encrypted")
	}
	return nil
}

// startTelemetry serves /metrics and sets up tracing when OTEL_EXPORTER_OTLP_ENDPOINT
// is set (internal/telemetry). Only an address the user chose must be free: on the
// default one, a second worker on the host warns and serves no metrics.
func startTelemetry(ctx context.Context, fs *flag.FlagSet, addr string, deps *app.Deps, logger *slog.Logger) (*telemetry.Telemetry, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "metrics-listen" })
	_, inEnv := os.LookupEnv("IMAGO_METRICS_LISTEN")
	tel, err := telemetry.Start(ctx, telemetry.Options{
		MetricsListen: addr, MetricsOptional: !given && !inEnv, Routers: telemetry.LocalRouters(deps.Local), Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	if a := tel.MetricsAddr(); a != "" {
		fmt.Fprintf(os.Stderr, "imago: metrics at http://%s/metrics\n", a)
	}
	if tel.Tracing() != nil {
		logger.Info("tracing workflows and activities to the OTLP endpoint of OTEL_EXPORTER_OTLP_*")
	}
	return tel, nil
}

func closeTelemetry(tel *telemetry.Telemetry, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Close(ctx); err != nil {
		logger.Warn("stop telemetry", "error", err)
	}
}
