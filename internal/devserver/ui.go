package devserver

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/temporalio/ui-server/v2/server/api"
	"github.com/temporalio/ui-server/v2/server/auth"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/cors"
	"github.com/temporalio/ui-server/v2/server/csrf"
	"github.com/temporalio/ui-server/v2/server/headers"
	"github.com/temporalio/ui-server/v2/server/route"
	"github.com/temporalio/ui-server/v2/ui"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/imago/imago/internal/httpx"
)

// uiServer serves the Temporal web UI.
//
// It assembles the same echo application as ui-server's server.NewServer
// (v2.56.4), but serves it from a listener we bound ourselves. server.Server
// cannot be used as is because:
//   - Start() binds host:port itself and on failure calls echo's
//     Logger.Fatal, i.e. os.Exit(1), from our goroutine;
//   - there is no way to learn the port it bound for port 0;
//   - the gRPC connection it opens to the frontend is never closed.
type uiServer struct {
	http    *http.Server
	ln      net.Listener
	conn    io.Closer
	cfgProv *uiconfig.ConfigProviderWithRefresh
	done    chan struct{}
	started bool
	addr    string // dialable host:port
}

// newUIServer builds the UI application for cfg, to be served on ln.
// It does not start serving; call start.
func newUIServer(ln net.Listener, cfg *uiconfig.Config) (*uiServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ui config: %w", err)
	}
	cfgProv, err := uiconfig.NewConfigProviderWithRefresh(cfg) // RefreshInterval 0: no goroutine
	if err != nil {
		return nil, fmt.Errorf("ui config: %w", err)
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// No middleware.Logger(): equivalent of HideLogs.
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip())
	e.Use(cors.CORSMiddleware(cors.CORSConfig{
		AllowHeaders: []string{
			echo.HeaderOrigin, echo.HeaderContentType, echo.HeaderAccept,
			echo.HeaderXCSRFToken, echo.HeaderAuthorization, auth.AuthorizationExtrasHeader,
			"Caller-Type",
		},
		AllowCredentials: true,
		ConfigProvider:   cfgProv,
	}))
	e.Use(middleware.Secure())
	csrfCookieSecure := !cfg.CORS.CookieInsecure
	e.Use(csrf.EnsureTokenCookie(csrfCookieSecure))
	e.Use(middleware.CSRFWithConfig(csrf.MiddlewareConfig(cfgProv, csrfCookieSecure)))

	e.Pre(route.PublicPath(cfg.PublicPath))
	route.SetHealthRoute(e)

	// Equivalent of route.SetAPIRoutes, keeping hold of the gRPC connection.
	apiMiddleware := []api.Middleware{
		headers.WithForwardHeaders([]string{auth.AuthorizationExtrasHeader, "Caller-Type"}),
	}
	conn, err := api.CreateGRPCConnection(cfgProv)
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	if conn == nil {
		return nil, fmt.Errorf("ui: cannot create gRPC connection to %s", cfg.TemporalGRPCAddress)
	}
	ok := false
	defer func() {
		if !ok {
			_ = conn.Close()
		}
	}()
	writeControl := route.DisableWriteMiddleware(cfgProv)
	apiGroup := e.Group("/api/v1")
	apiGroup.GET("/settings", api.GetSettings(cfgProv))
	// Answers an empty list: cfg.NotifyOnNewVersion stays false, so the release
	// checker never asks GitHub or Docker Hub for the latest version.
	apiGroup.GET("/releases", api.GetLatestReleases(cfgProv, api.NewReleaseChecker()))
	apiGroup.GET("/ui-extensions", api.GetUIExtensions(cfgProv, api.TemporalAccessCheck(conn, apiMiddleware)))
	apiGroup.GET(api.WorkflowRawHistoryUrl,
		api.WorkflowRawHistoryHandler(workflowservice.NewWorkflowServiceClient(conn)), writeControl)
	apiGroup.Match([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, "/*",
		api.TemporalAPIHandler(cfgProv, apiMiddleware, conn), writeControl)

	route.SetAuthRoutes(e, cfgProv)

	assets, err := ui.Assets()
	if err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	assets, err = fs.Sub(assets, "local")
	if err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	if err := route.SetUIRoutes(e, cfg.PublicPath, assets, cfgProv); err != nil {
		return nil, fmt.Errorf("ui routes: %w", err)
	}
	route.SetRenderRoute(e, "/")

	ok = true
	return &uiServer{
		// The UI's API calls include long polls (a history waiting for its next
		// event), so writes get minutes, not seconds.
		http:    httpx.NewServer(e, httpx.Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 3 * time.Minute, Idle: 2 * time.Minute}),
		ln:      ln,
		conn:    conn,
		cfgProv: cfgProv,
		done:    make(chan struct{}),
		addr:    dialAddr(ln.Addr()),
	}, nil
}

func (u *uiServer) start() {
	u.started = true
	go func() {
		defer close(u.done)
		_ = u.http.Serve(u.ln) // returns http.ErrServerClosed on stop
	}()
}

// waitReady polls GET / until it answers 200.
func (u *uiServer) waitReady(ctx context.Context) error {
	url := "http://" + u.addr + "/"
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("web UI at %s not ready: %w (last error: %v)", u.addr, ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop closes the HTTP server (and its listener) and the gRPC connection.
func (u *uiServer) stop() error {
	err := u.http.Close()
	if u.started {
		<-u.done // Serve closes the listener before returning
	} else {
		_ = u.ln.Close()
	}
	_ = u.conn.Close()
	u.cfgProv.Close()
	return err
}
