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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/api"
	"github.com/imago/imago/internal/api/tokens"
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
and the token's scopes say what it may do: read, deploy, approve, bake, admin,
each of deploy and approve optionally on SERVICE/ENV and bake on SERVICE
(deploy:hello/staging, approve:*/prod, bake:hello). --tokens-file has one token a
line, "TOKEN SCOPE[,SCOPE...]" (# comments), and must be mode 0600;
IMAGO_API_TOKENS takes the same entries separated by ';'. A token without
scopes (and every token of the older comma-separated IMAGO_API_TOKENS) only
reads. Without any token it refuses to start, unless --insecure-no-auth is
given and --listen is a loopback address; then anyone on this host is admin,
and only requests for a loopback Host are served.

A POST, PUT or DELETE must say Content-Type: application/json, and a request
from a web page whose origin is not in IMAGO_UI_ORIGIN is refused. The payload
codec server under /codec/ serves admin tokens only.

It talks to Temporal and the catalog as the other commands do (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, IMAGO_CATALOG_URL). SIGINT or SIGTERM shut it down
gracefully.

Bakes, pipelines and schedules sent to it may read only the directories listed
in IMAGO_BAKE_ROOTS (separated by ':'); unset, it refuses every bake that reads
files.`,
		Example: `  TOKEN=$(openssl rand -hex 32)
  export IMAGO_API_TOKENS="$TOKEN deploy:hello/staging,approve:hello/staging"
  imago serve --listen 127.0.0.1:8080
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/rollouts
  printf '%s admin\n' "$(openssl rand -hex 32)" > /etc/imago/api-tokens && chmod 600 /etc/imago/api-tokens
  imago serve --listen 0.0.0.0:8080 --tokens-file /etc/imago/api-tokens
  imago serve --insecure-no-auth        # local development: loopback only, no tokens`,
		Args: args(cobra.NoArgs),
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		toks, err := tokens.Load(os.Getenv("IMAGO_API_TOKENS"), tokensFile)
		if err != nil {
			return usageError{err}
		}
		if err := api.CheckAuth(toks, insecure, listen); err != nil {
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
				// It serves admin tokens only: decoding shows any sealed payload, encoding
				// seals work a worker would run.
				origins := codec.ParseOrigins(cfg.UIOrigin)
				codecHandler := codec.NewHandler(pc, codec.HandlerOptions{Tokens: toks, Origins: origins, Logger: log})
				dc, _, err := cfg.Converters(ctx)
				if err != nil {
					return err
				}
				h := api.NewServer(api.Config{Client: c, DataConverter: dc, Catalog: cat, Tokens: toks, InsecureNoAuth: insecure, Origins: origins, Logger: log,
					Extra: map[string]http.Handler{"/codec/": codecHandler}, BakeRoots: roots})
				return serveAPI(ctx, ln, h, log, cfg, toks)
			})
		})
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on (host:port)")
	cmd.Flags().StringVar(&tokensFile, "tokens-file", "", "file of bearer tokens and their scopes, TOKEN SCOPE[,SCOPE...] a line (# comments), mode 0600; added to IMAGO_API_TOKENS")
	cmd.Flags().BoolVar(&insecure, "insecure-no-auth", false, "serve without tokens (only on a loopback address)")
	return cmd
}

// logTokens names each token (never the token itself) with its scopes, and says
// which only read because they were given no scope, as the older
// comma-separated IMAGO_API_TOKENS gives none.
func logTokens(log *slog.Logger, toks []tokens.Token) {
	var readOnly []string
	for _, t := range toks {
		log.Info("api token", "token", t)
		if len(t.Scopes) == 1 && t.Scopes[0].Kind == tokens.Read {
			readOnly = append(readOnly, t.From)
		}
	}
	if len(readOnly) > 0 {
		log.Warn("some API tokens have no scope and can only read; give each the scopes it needs, as TOKEN SCOPE[,SCOPE...] (e.g. deploy:hello/staging,approve:*/prod, bake:hello, admin), see docs/security.md",
			"from", strings.Join(readOnly, "; "))
	}
}

// serveAPI serves h on ln until ctx is done, then shuts down gracefully.
func serveAPI(ctx context.Context, ln net.Listener, h *api.Server, log *slog.Logger, cfg app.Config, toks []tokens.Token) error {
	srv := api.NewHTTPServer(ln.Addr().String(), h, log)
	if len(toks) == 0 {
		log.Warn("serving WITHOUT authentication (--insecure-no-auth): anyone on this host can bake, start and abort rollouts (admin); only requests for a loopback Host are served", "listen", ln.Addr().String())
	}
	logTokens(log, toks)
	log.Info("imago API listening", "url", "http://"+ln.Addr().String(), "tokens", len(toks),
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
