package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/api"
	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/spec"
)

// shutdownGrace is how long a graceful shutdown waits for requests in flight.
const shutdownGrace = 15 * time.Second

func newServeCmd() *cobra.Command {
	var listen, tokensFile string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR] [--tokens-file FILE]",
		Short: "Serve imago's REST API",
		Long: `Serves the REST API: JSON under /v1 (rollouts, decisions, bakes, images and
channels), server-sent events for a rollout's progress, RFC 9457 problem details
on errors, and its OpenAPI document at /v1/openapi.json. /healthz says the process
is up, /readyz that Temporal answers.

Every /v1 endpoint but the OpenAPI document needs "Authorization: Bearer TOKEN",
with a token from IMAGO_API_TOKENS (comma-separated) or --tokens-file (one per
line, # comments). Without any token it refuses to start, unless
--insecure-no-auth is given and --listen is a loopback address.

It talks to Temporal and the catalog as the other commands do (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, IMAGO_CATALOG_URL). SIGINT or SIGTERM shut it down
gracefully.

Bakes, pipelines and schedules sent to it may read only the directories listed
in IMAGO_BAKE_ROOTS (separated by ':'); unset, it refuses every bake that reads
files.`,
		Example: `  export IMAGO_API_TOKENS=$(openssl rand -hex 32)
  imago serve --listen 127.0.0.1:8080
  curl -H "Authorization: Bearer $IMAGO_API_TOKENS" http://127.0.0.1:8080/v1/rollouts
  imago serve --listen 0.0.0.0:8080 --tokens-file /etc/imago/api-tokens
  imago serve --insecure-no-auth        # local development: loopback only, no tokens`,
		Args: args(cobra.NoArgs),
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		tokens, err := api.LoadTokens(os.Getenv("IMAGO_API_TOKENS"), tokensFile)
		if err != nil {
			return usageError{err}
		}
		if err := api.CheckAuth(tokens, insecure, listen); err != nil {
			return usageError{err}
		}
		roots, err := spec.ParseBakeRoots(os.Getenv(spec.BakeRootsEnv))
		if err != nil {
			return usageError{err}
		}
		log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return withClient(cmd, func(c client.Client) error {
			return withCatalog(cmd, func(cat *catalog.Catalog) error {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("listen on %s: %w; pick another address with --listen", listen, err)
				}
				cfg := app.ConfigFromEnv()
				pc, err := cfg.PayloadCodec(ctx)
				if err != nil {
					return err
				}
				// The codec server for a Temporal web UI or CLI: its own token check, as a
				// CORS preflight from the UI carries no token.
				codecHandler := codec.NewHandler(pc, codec.HandlerOptions{Tokens: tokens, Origins: codec.ParseOrigins(cfg.UIOrigin), Logger: log})
				h := api.NewServer(api.Config{Client: c, Catalog: cat, Tokens: tokens, InsecureNoAuth: insecure, Logger: log,
					Extra: map[string]http.Handler{"/codec/": codecHandler}, BakeRoots: roots})
				return serveAPI(ctx, ln, h, log, cfg, len(tokens))
			})
		})
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on (host:port)")
	cmd.Flags().StringVar(&tokensFile, "tokens-file", "", "file of bearer tokens, one per line (# comments); added to IMAGO_API_TOKENS")
	cmd.Flags().BoolVar(&insecure, "insecure-no-auth", false, "serve without tokens (only on a loopback address)")
	return cmd
}

// serveAPI serves h on ln until ctx is done, then shuts down gracefully.
func serveAPI(ctx context.Context, ln net.Listener, h *api.Server, log *slog.Logger, cfg app.Config, tokens int) error {
	srv := api.NewHTTPServer(ln.Addr().String(), h, log)
	if tokens == 0 {
		log.Warn("serving WITHOUT authentication (--insecure-no-auth): anyone who can reach this loopback address can start and abort rollouts", "listen", ln.Addr().String())
	}
	log.Info("imago API listening", "url", "http://"+ln.Addr().String(), "tokens", tokens,
		"temporal", cfg.Address(), "namespace", cfg.Namespace, "catalog", cfg.CatalogURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve the API: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut the API down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
