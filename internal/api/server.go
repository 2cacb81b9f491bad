package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/httpx"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// Config is what the API serves from.
type Config struct {
	Client client.Client // Temporal
	// DataConverter is the one Client was dialled with: a rollout's status reads
	// a running analysis' heartbeat with it. nil shows the rest.
	DataConverter converter.DataConverter
	Catalog       *catalog.Catalog // images, channels, the inventory
	// Tokens are the accepted bearer tokens and their scopes (tokens.Load). With
	// none, every request that needs a token is refused, unless InsecureNoAuth
	// (see CheckAuth for when that is allowed): then anyone is admin, but only
	// for requests to a loopback Host.
	Tokens         []tokens.Token
	InsecureNoAuth bool
	// Origins are the web page origins (IMAGO_UI_ORIGIN) whose requests the API
	// serves; a request with any other Origin is refused (403).
	Origins []string
	Logger  *slog.Logger // default: discard
	// Extra handlers are mounted as they are at their ServeMux patterns (e.g.
	// "/codec/" for the payload codec server): they bring their own auth (a CORS
	// preflight carries no token), body limit and timeouts. Wrap one in
	// Server.RequireToken to put it behind the API's tokens.
	Extra map[string]http.Handler
	// RequestTimeout bounds every non-streaming request (default 30 s).
	RequestTimeout time.Duration
	// PollInterval is how often an event stream polls the rollout (default 1 s).
	PollInterval time.Duration
	// BakeRoots are the directories bakes, pipelines and schedules sent to the
	// API may read (IMAGO_BAKE_ROOTS); with none, the API bakes nothing from disk.
	BakeRoots spec.BakeRoots
}

// Defaults of Config and of NewHTTPServer.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultPollInterval   = time.Second
	ReadHeaderTimeout     = 10 * time.Second
	ReadTimeout           = 30 * time.Second
	// WriteTimeout is longer than DefaultRequestTimeout so a timed-out request
	// still gets its problem; event streams lift it for themselves.
	WriteTimeout = DefaultRequestTimeout + 30*time.Second
	IdleTimeout  = 2 * time.Minute
)

// Server is the API's handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	auth   *authenticator
	table  []route
	stop   chan struct{} // closed by StopStreams
	stopMu sync.Once
}

// route is one registered operation. Path uses ServeMux wildcards ({name}),
// which are also OpenAPI's path parameters.
type route struct {
	method, path string
	public       bool // no token needed
	// scope is what a token needs (every route but the public ones has one):
	// read and admin as they are; deploy and approve on the path's
	// {service}/{env}, unless inBody.
	scope tokens.Kind
	// inBody: the scope's service and environment come from the body or the
	// catalog, so the handler checks them (authorize); before it runs, the token
	// must hold some scope of this kind.
	inBody bool
	// computes: a POST that only computes an answer from its body and changes
	// nothing (a plan), so read is its scope.
	computes bool
	stream   bool // long-lived: no request timeout, no write deadline
	handle   func(w http.ResponseWriter, r *http.Request) error
}

// routes is the API's table: one entry per operation with the scope it needs,
// each in openapi.json (x-imago-scope). Adding a resource (e.g. /v1/schedules)
// is adding its entries here.
func (s *Server) routes() []route {
	rs := []route{
		{method: "GET", path: "/healthz", public: true, handle: s.healthz},
		{method: "GET", path: "/readyz", public: true, handle: s.readyz},
		{method: "GET", path: "/v1/openapi.json", public: true, handle: serveOpenAPI},

		// deploy on spec.service/spec.environment; with an inline bake, bake on its service too.
		{method: "POST", path: "/v1/rollouts", scope: tokens.Deploy, inBody: true, handle: s.startRollout},
		{method: "GET", path: "/v1/rollouts", scope: tokens.Read, handle: s.listRollouts},
		{method: "GET", path: "/v1/rollouts/{service}/{env}", scope: tokens.Read, handle: s.getRollout},
		{method: "GET", path: "/v1/rollouts/{service}/{env}/events", scope: tokens.Read, stream: true, handle: s.rolloutEvents},
		// a simulation that starts nothing and reads only the catalog
		{method: "POST", path: "/v1/plans", scope: tokens.Read, computes: true, handle: s.planRollout},
	}
	for _, d := range decisions {
		rs = append(rs, route{method: "POST", path: "/v1/rollouts/{service}/{env}/" + d, scope: decisionScope[d], handle: s.decide(d)})
	}
	return append(rs,
		route{method: "POST", path: "/v1/bakes", scope: tokens.Bake, inBody: true, handle: s.startBake}, // bake on spec.service
		route{method: "GET", path: "/v1/bakes/{service}/{channel}", scope: tokens.Read, handle: s.getBake},

		route{method: "GET", path: "/v1/images", scope: tokens.Read, handle: s.listImages},
		route{method: "GET", path: "/v1/images/{id}", scope: tokens.Read, handle: s.showImage},
		route{method: "GET", path: "/v1/images/{id}/sbom", scope: tokens.Read, handle: s.imageSBOM},
		route{method: "GET", path: "/v1/images/{id}/provenance", scope: tokens.Read, handle: s.imageProvenance},
		// Channel moves: bake on the image's service (bakes publish to its channels);
		// a cascading revoke, which reaches other services' images, admin.
		route{method: "POST", path: "/v1/images/{id}/promote", scope: tokens.Bake, inBody: true, handle: s.promoteImage},
		route{method: "POST", path: "/v1/images/{id}/revoke", scope: tokens.Bake, inBody: true, handle: s.revokeImage},
		route{method: "GET", path: "/v1/services/{service}/channels", scope: tokens.Read, handle: s.listChannels},
		route{method: "GET", path: "/v1/services/{service}/channels/{channel}", scope: tokens.Read, handle: s.channelHistory},

		// A schedule bakes and deploys unattended, as whoever made it: admin.
		route{method: "POST", path: "/v1/schedules", scope: tokens.Admin, handle: s.createSchedule},
		route{method: "GET", path: "/v1/schedules", scope: tokens.Read, handle: s.listSchedules},
		route{method: "GET", path: "/v1/schedules/{name}", scope: tokens.Read, handle: s.getSchedule},
		route{method: "DELETE", path: "/v1/schedules/{name}", scope: tokens.Admin, handle: s.deleteSchedule},
		route{method: "POST", path: "/v1/schedules/{name}/pause", scope: tokens.Admin, handle: s.pauseSchedule(true)},
		route{method: "POST", path: "/v1/schedules/{name}/unpause", scope: tokens.Admin, handle: s.pauseSchedule(false)},
		route{method: "POST", path: "/v1/schedules/{name}/trigger", scope: tokens.Admin, handle: s.triggerSchedule},
		route{method: "POST", path: "/v1/schedules/{name}/backfill", scope: tokens.Admin, handle: s.backfillSchedule},

		// deploy on every stage's environment; with a bake, bake on its service too.
		route{method: "POST", path: "/v1/pipelines", scope: tokens.Deploy, inBody: true, handle: s.startPipeline},
		route{method: "GET", path: "/v1/pipelines/{name}", scope: tokens.Read, handle: s.getPipeline},
		// approve on the environment whose gate waits; abort, deploy on every stage's.
		route{method: "POST", path: "/v1/pipelines/{name}/approve", scope: tokens.Approve, inBody: true, handle: s.approvePipeline},
		route{method: "POST", path: "/v1/pipelines/{name}/abort", scope: tokens.Deploy, inBody: true, handle: s.abortPipeline},

		// deploy on every service in every ring's environment; resume and approve,
		// approve on each of the campaign's rollouts; abort, deploy on each.
		route{method: "POST", path: "/v1/campaigns", scope: tokens.Deploy, inBody: true, handle: s.startCampaign},
		route{method: "GET", path: "/v1/campaigns/{name}", scope: tokens.Read, handle: s.getCampaign},
		route{method: "POST", path: "/v1/campaigns/{name}/resume", scope: tokens.Approve, inBody: true, handle: s.resumeCampaign},
		route{method: "POST", path: "/v1/campaigns/{name}/approve", scope: tokens.Approve, inBody: true, handle: s.approveCampaign},
		route{method: "POST", path: "/v1/campaigns/{name}/abort", scope: tokens.Deploy, inBody: true, handle: s.abortCampaign},

		// A dry run reads; apply terminates fleets: admin.
		route{method: "POST", path: "/v1/reaper", scope: tokens.Read, inBody: true, handle: s.runReaper},
		route{method: "POST", path: "/v1/drift", scope: tokens.Read, inBody: true, handle: s.runDrift}, // repair: deploy on the selection
		// Freezes (stop-the-line): anyone may see them, admins start and end them.
		route{method: "GET", path: "/v1/freezes", scope: tokens.Read, handle: s.listFreezes},
		route{method: "POST", path: "/v1/freezes", scope: tokens.Admin, handle: s.startFreeze},
		route{method: "DELETE", path: "/v1/freezes", scope: tokens.Admin, handle: s.endFreeze},
		// Image lifecycle rules deprecate and delete images: anyone may see them, admins set them.
		route{method: "GET", path: "/v1/lifecycle", scope: tokens.Read, handle: s.listLifecycle},
		route{method: "PUT", path: "/v1/lifecycle/{service}", scope: tokens.Admin, handle: s.setLifecycle},
		// Environment policies gate every rollout: anyone may see them, admins set them.
		route{method: "GET", path: "/v1/policies", scope: tokens.Read, handle: s.listPolicies},
		route{method: "GET", path: "/v1/policies/{env}", scope: tokens.Read, handle: s.getPolicy},
		route{method: "PUT", path: "/v1/policies/{env}", scope: tokens.Admin, handle: s.setPolicy},
		route{method: "DELETE", path: "/v1/policies/{env}", scope: tokens.Admin, handle: s.deletePolicy},
	)
}

// decisionScope is what each rollout decision needs on the rollout's service and
// environment: promote releases approval gates too, so it is an approver's.
var decisionScope = map[string]tokens.Kind{
	contract.UpdateApprove: tokens.Approve, contract.UpdatePromote: tokens.Approve,
	contract.UpdateAbort: tokens.Deploy, contract.UpdateRollback: tokens.Deploy,
}

// NewServer builds the API's handler from cfg.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), stop: make(chan struct{}),
		auth: newAuthenticator(cfg.Tokens, cfg.InsecureNoAuth)}
	s.table = s.routes()
	methods := map[string][]string{}
	for _, rt := range s.table {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	// The same paths without a method answer every other method with 405.
	for path, ms := range methods {
		s.mux.Handle(path, s.wrap(route{path: path, public: true, handle: methodNotAllowed(ms)}))
	}
	s.mux.Handle("/", s.wrap(route{path: "/", public: true, handle: notFound}))
	for pattern, h := range cfg.Extra {
		s.mux.Handle(pattern, h)
	}
	return s
}

// RequireToken puts h behind the API's bearer tokens: a request without an
// accepted token gets the API's 401 problem and never reaches h. Any token
// passes (each has read).
func (s *Server) RequireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, p, ok := s.auth.check(r)
		if !ok {
			s.writeProblem(w, r, p)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, g)))
	})
}

// ServeHTTP serves the API, and the Extra handlers; without tokens, only for a
// loopback Host.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := s.checkHost(r); p != nil {
		s.log.Warn("api request refused: not a loopback Host in --insecure-no-auth mode", "method", r.Method, "path", r.URL.Path, "host", r.Host)
		s.writeProblem(w, r, *p)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// StopStreams ends every open event stream (clients reconnect with
// Last-Event-ID); register it with http.Server.RegisterOnShutdown so a graceful
// shutdown does not wait for streams that never go idle.
func (s *Server) StopStreams() { s.stopMu.Do(func() { close(s.stop) }) }

// NewHTTPServer is an http.Server for h on addr with the API's timeouts.
func NewHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	if s, ok := h.(*Server); ok {
		srv.RegisterOnShutdown(s.StopStreams)
	}
	return srv
}

type grantKey struct{}

// grantOf is who made the request and what they may do; nothing on a public route.
func grantOf(r *http.Request) grant {
	g, _ := r.Context().Value(grantKey{}).(grant)
	return g
}

// principal is who made the request, as decisions and rollouts record it.
func principal(r *http.Request) string {
	if g := grantOf(r); g.who != "" {
		return g.who
	}
	return "-" // a public route: nobody in particular
}

// wrap adds what every route has: the access log, panics turned into 500s, the
// browser checks (Origin; Content-Type of a POST, PUT or DELETE), the token and
// scope checks, the body limit, the request timeout, and errors as problems.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &httpx.StatusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("api handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				if sw.Status == 0 {
					s.writeProblem(sw, r, Problem{Type: "about:blank", Title: "Internal error", Status: http.StatusInternalServerError,
						Detail: "the server failed while handling the request; see its log"})
				}
			}
			s.log.Info("api request", "method", r.Method, "path", r.URL.Path, "status", sw.Status,
				"duration", time.Since(start).Round(time.Millisecond), "by", principal(r))
		}()
		if p := s.checkOrigin(r); p != nil {
			s.writeProblem(sw, r, *p)
			return
		}
		if !rt.public {
			g, p, ok := s.auth.check(r)
			if !ok {
				s.writeProblem(sw, r, p)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), grantKey{}, g))
			if p := checkMediaType(r); p != nil {
				s.writeProblem(sw, r, *p)
				return
			}
			if err := checkRoute(rt, g, r); err != nil {
				s.writeProblem(sw, r, s.problemFor(r, err))
				return
			}
		}
		if r.ContentLength > MaxBodyBytes {
			s.writeProblem(sw, r, ProblemFor(&TooLarge{}))
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, MaxBodyBytes)
		if !rt.stream {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if err := rt.handle(sw, r); err != nil {
			if sw.Status != 0 {
				s.log.Warn("api request failed after its response started", "path", r.URL.Path, "error", err)
				return
			}
			p := s.problemFor(r, err)
			switch {
			case p.Status == http.StatusServiceUnavailable || p.Status == http.StatusGatewayTimeout:
				s.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "error", err)
			case p.Status >= 500:
				s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "error", err)
			}
			s.writeProblem(sw, r, p)
		}
	})
}

// problemError is an error that already is its problem.
type problemError struct{ p Problem }

func (e *problemError) Error() string { return e.p.Detail }

func problem(status int, kind, title, detail string, args ...any) error {
	return &problemError{Problem{Type: "https://imago.dev/problems/" + kind, Title: title, Status: status, Detail: fmt.Sprintf(detail, args...)}}
}

func notFoundf(detail string, args ...any) error {
	return problem(http.StatusNotFound, "not-found", "Not found", detail, args...)
}

func conflictf(detail string, args ...any) error {
	return problem(http.StatusConflict, "conflict", "Conflict", detail, args...)
}

// problemFor maps a handler's error to its problem: the request's own (decoding,
// spec), refusals the CLI also makes (already running → 409, unknown → 404,
// revoked → 409), Temporal being unreachable (503) and the rest (500).
func (s *Server) problemFor(r *http.Request, err error) Problem {
	var pe *problemError
	var rr *rollouts.AlreadyRunningError
	var br *bakes.AlreadyRunningError
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	switch {
	case errors.As(err, &pe):
		return pe.p
	case errors.As(err, &rr):
		return Problem{Type: "https://imago.dev/problems/already-running", Title: "Already running", Status: http.StatusConflict,
			Detail: fmt.Sprintf("%v, or follow it with GET /v1/rollouts/%s/%s/events", err, rr.Service, rr.Env)}
	case errors.As(err, &br):
		return Problem{Type: "https://imago.dev/problems/already-running", Title: "Already running", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, contract.ErrRevoked):
		return Problem{Type: "https://imago.dev/problems/revoked", Title: "Image revoked", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, catalog.ErrNotFound):
		return Problem{Type: "https://imago.dev/problems/not-found", Title: "Not found", Status: http.StatusNotFound, Detail: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &deadline):
		if r.Context().Err() != nil {
			return Problem{Type: "https://imago.dev/problems/timeout", Title: "Request timed out", Status: http.StatusGatewayTimeout,
				Detail: fmt.Sprintf("the request took longer than %s, the API's limit: %v", s.cfg.RequestTimeout, err)}
		}
		return Problem{Type: "https://imago.dev/problems/unavailable", Title: "Temporal unavailable", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	case errors.As(err, &unavailable):
		return Problem{Type: "https://imago.dev/problems/unavailable", Title: "Temporal unavailable", Status: http.StatusServiceUnavailable,
			Detail: "Temporal cannot be reached: " + err.Error() + "; see /readyz"}
	}
	return ProblemFor(err)
}

// writeProblem writes p as application/problem+json.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	if p.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="imago"`
		if p.Type == invalidTokenType {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(p)
}

// writeJSON writes v as the response.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return notFoundf("no such endpoint: %s %s; the API's endpoints are listed in /v1/openapi.json", r.Method, r.URL.Path)
}

func methodNotAllowed(methods []string) func(w http.ResponseWriter, r *http.Request) error {
	allow := append([]string(nil), methods...)
	for _, m := range methods {
		if m == "GET" {
			allow = append(allow, "HEAD")
		}
	}
	sort.Strings(allow)
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			"%s does not answer %s; it answers %s", r.URL.Path, r.Method, strings.Join(allow, ", "))
	}
}

//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPI)
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 while Temporal answers its health check, 503 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Client == nil {
		return problem(http.StatusServiceUnavailable, "unavailable", "Not ready", "the API has no Temporal client")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if _, err := s.cfg.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return problem(http.StatusServiceUnavailable, "unavailable", "Not ready",
			"Temporal does not answer its health check: %v; is the Temporal server (or imago-worker, which embeds one) running?", err)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "temporal": "ok"})
}
