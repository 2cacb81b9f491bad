// Command imago-worker runs imago's workflows and activities.
//
// With no TEMPORAL_ADDRESS (or --temporal-address) it embeds a Temporal dev server
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

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/devserver"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/workflows"
)

func main() {
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
embedded Temporal server (SQLite under $IMAGO_HOME) and the Temporal web UI.

Example:
  IMAGO_HOME=.imago imago-worker                 # embedded server + UI + worker
  imago-worker --dev-only                        # server + UI only; run workers separately
  TEMPORAL_ADDRESS=127.0.0.1:7233 imago-worker   # plain worker for an existing server

Flags:
`)
		fs.PrintDefaults()
	}
	address := fs.String("temporal-address", cfg.TemporalAddress, "Temporal frontend host:port; empty embeds a dev server (env TEMPORAL_ADDRESS)")
	namespace := fs.String("namespace", cfg.Namespace, "Temporal namespace (env TEMPORAL_NAMESPACE)")
	devListen := fs.String("dev-listen", app.DefaultTemporalAddress, "embedded server: frontend gRPC address")
	uiListen := fs.String("ui-listen", "127.0.0.1:8233", "embedded server: web UI address; empty turns the UI off")
	devOnly := fs.Bool("dev-only", false, "embedded server: run the server and UI without polling for work")
	home := fs.String("home", cfg.Home, "state directory: catalog, fleets, routes, logs, dev database (env IMAGO_HOME)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
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
	if cfg.TemporalAddress != "" && *devOnly {
		return usageError{errors.New("--dev-only runs the embedded server, which TEMPORAL_ADDRESS turns off; unset one of them")}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.TemporalAddress == "" {
		if err := os.MkdirAll(cfg.Home, 0o755); err != nil {
			return fmt.Errorf("create IMAGO_HOME: %w", err)
		}
		start := time.Now()
		srv, err := devserver.Start(ctx, devserver.Config{
			DBPath:           filepath.Join(cfg.Home, "temporal.db"),
			Listen:           *devListen,
			UIListen:         *uiListen,
			Namespace:        cfg.Namespace,
			SearchAttributes: workflows.SearchAttributes(),
			Logger:           logger,
		})
		if err != nil {
			return fmt.Errorf("start embedded Temporal server: %w", err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				logger.Error("stop embedded Temporal server", "error", err)
			}
		}()
		cfg.TemporalAddress = srv.FrontendAddress()
		logger.Info("embedded Temporal server started", "address", srv.FrontendAddress(), "ui", srv.UIAddress(),
			"namespace", srv.Namespace(), "db", filepath.Join(cfg.Home, "temporal.db"), "took", time.Since(start).String())
		fmt.Fprintf(os.Stderr, "imago: Temporal at %s", srv.FrontendAddress())
		if srv.UIAddress() != "" {
			fmt.Fprintf(os.Stderr, ", web UI at http://%s/namespaces/%s/workflows", srv.UIAddress(), srv.Namespace())
		}
		fmt.Fprintln(os.Stderr)
		if *devOnly {
			<-ctx.Done()
			logger.Info("shutting down")
			return nil
		}
	}

	deps, err := app.OpenDeps(ctx, cfg)
	if err != nil {
		return err
	}
	defer deps.Close()
	c, err := cfg.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	w := app.NewWorker(c, deps.Activities)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker polling", "taskQueue", workflows.TaskQueue, "address", cfg.TemporalAddress, "namespace", cfg.Namespace, "home", cfg.Home)
	fmt.Fprintf(os.Stderr, "imago: worker polling task queue %q (IMAGO_HOME=%s); Ctrl-C stops it\n", workflows.TaskQueue, cfg.Home)
	<-ctx.Done()
	logger.Info("shutting down")
	w.Stop()
	return nil
}
