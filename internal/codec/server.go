package codec

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/imago/imago/internal/api/tokens"
)

// maxBody bounds a request: Temporal refuses payloads over 2 MB, and the UI
// sends a handful at a time.
const maxBody = 16 << 20

// AllowHeaders are the request headers the web UI sends to a codec server
// (Authorization-Extras accompanies Authorization when the UI passes its access token).
const AllowHeaders = "Content-Type, Authorization, X-Namespace, Authorization-Extras"

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Tokens are the bearer tokens of IMAGO_API_TOKENS and the tokens file, read
	// and matched as the API does (package tokens). A caller must present one
	// with the admin scope: decoding shows sealed payloads, and encoding seals
	// input that a worker would run. With none, only loopback callers are served.
	Tokens []tokens.Token
	// Origins are the web UI origins CORS lets call the handler from a browser,
	// e.g. "http://127.0.0.1:8233" (see UIOrigins).
	Origins []string
	// Logger receives refused requests at WARN; nil discards them.
	Logger *slog.Logger
}

// NewHandler serves the Temporal remote codec protocol for c: POST …/encode and
// POST …/decode take and return JSON {"payloads": [...]} (payloads in protojson),
// as the web UI and `temporal --codec-endpoint` send them. Only the path's
// suffix matters, so the handler can be mounted under any prefix, e.g. /codec/.
// It answers CORS preflights for o.Origins and requires an admin token of
// o.Tokens (or, with no token, a loopback caller).
func NewHandler(c converter.PayloadCodec, o HandlerOptions) http.Handler {
	h := &handler{
		codec:   converter.NewPayloadCodecHTTPHandler(c),
		tokens:  tokens.NewSet(o.Tokens),
		origins: slices.Clone(o.Origins),
		logger:  o.Logger,
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	return h
}

type handler struct {
	codec   http.Handler
	tokens  tokens.Set
	origins []string
	logger  *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(h.origins, origin)
	if origin != "" {
		w.Header().Add("Vary", "Origin")
	}
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		if !allowed {
			h.refuse(w, r, http.StatusForbidden, fmt.Sprintf("origin %q may not call this codec server; add it to IMAGO_UI_ORIGIN", origin))
			return
		}
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", AllowHeaders)
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/encode") && !strings.HasSuffix(r.URL.Path, "/decode") {
		http.Error(w, "not found: the codec server answers POST …/encode and POST …/decode", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, r.Method+" is not allowed: send POST with JSON {\"payloads\": [...]}", http.StatusMethodNotAllowed)
		return
	}
	if status, msg := h.authorize(r); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imago codec"`)
		}
		h.refuse(w, r, status, msg)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "send Content-Type: application/json with a body {\"payloads\": [...]}", http.StatusUnsupportedMediaType)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	h.codec.ServeHTTP(w, r)
}

// authorize returns 0 when r may use the codec, else an HTTP status and why not.
func (h *handler) authorize(r *http.Request) (int, string) {
	if h.tokens.Len() == 0 {
		// No token: the embedded dev default. Loopback callers only, and only
		// under a loopback Host, so a DNS-rebound web page cannot reach it either.
		if !isLoopbackHostPort(r.RemoteAddr) || !isLoopbackHost(r.Host) {
			return http.StatusForbidden, "this codec server has no IMAGO_API_TOKENS and serves loopback callers only; set IMAGO_API_TOKENS to serve others"
		}
		return 0, ""
	}
	secret, ok := tokens.Bearer(r)
	if !ok {
		return http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <a token of IMAGO_API_TOKENS or the tokens file with the admin scope>"
	}
	tok, ok := h.tokens.Match(secret)
	if !ok {
		return http.StatusUnauthorized, "wrong bearer token: send Authorization: Bearer <a token of IMAGO_API_TOKENS or the tokens file with the admin scope>"
	}
	if !tok.Scopes.Allow(tokens.Scope{Kind: tokens.Admin}) {
		return http.StatusForbidden, fmt.Sprintf("this token lacks the scope admin, which the codec server needs (decoding shows sealed payloads, encoding seals work a worker runs); it has %s (%s)", tok.Scopes, tok.Who)
	}
	return 0, ""
}

func (h *handler) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.logger.Warn("codec server refused a request", "status", status, "method", r.Method, "path", r.URL.Path,
		"remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "reason", msg)
	http.Error(w, msg, status)
}

func isLoopbackHostPort(hostport string) bool {
	ap, err := netip.ParseAddrPort(hostport)
	return err == nil && ap.Addr().IsLoopback()
}

func isLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// ParseOrigins splits IMAGO_UI_ORIGIN: comma-separated origins such as
// https://temporal.example.com, without a path or a trailing slash.
func ParseOrigins(s string) []string {
	var out []string
	for o := range strings.SplitSeq(s, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// UIOrigins are the origins a browser gives pages of a web UI served at
// host:port: http://host:port, and for a loopback or wildcard host also
// http://127.0.0.1:port and http://localhost:port. "" gives none.
func UIOrigins(uiAddr string) []string {
	if uiAddr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(uiAddr)
	if err != nil {
		return nil
	}
	out := []string{"http://" + uiAddr}
	a, err := netip.ParseAddr(host)
	if host == "localhost" || (err == nil && (a.IsLoopback() || a.IsUnspecified())) {
		for _, h := range []string{"127.0.0.1", "localhost"} {
			if o := "http://" + net.JoinHostPort(h, port); !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

// Server serves a codec handler under /codec/ on its own listener: the worker's
// codec server (--codec-listen).
type Server struct {
	ln       net.Listener
	http     *http.Server
	done     chan struct{}
	timeouts timeouts
}

type timeouts struct{ readHeader, read, write, idle time.Duration }

var defaultTimeouts = timeouts{ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout}

// Listen binds addr (host:port; port 0 picks one) for a codec server. Without
// tokens the address must be a loopback one: the server would otherwise decrypt
// payloads for anyone who can reach it. Call Serve, then Close.
func Listen(addr string, tokens bool) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("codec server address %q: %w; want host:port, e.g. 127.0.0.1:8234", addr, err)
	}
	if !tokens && !isLoopbackHost(host) {
		return nil, fmt.Errorf("codec server address %s is not a loopback address and IMAGO_API_TOKENS is empty, "+
			"so anyone reaching it could decrypt payloads; set IMAGO_API_TOKENS or listen on 127.0.0.1", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("codec server: %w", err)
	}
	return &Server{ln: ln, done: make(chan struct{}), timeouts: defaultTimeouts}, nil
}

// Addr is the bound host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Endpoint is the codec endpoint to give the web UI and the temporal CLI:
// http://host:port/codec. A wildcard host is given as 127.0.0.1. A nil Server
// has none ("").
func (s *Server) Endpoint() string {
	if s == nil {
		return ""
	}
	a := s.ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port)) + "/codec"
}

// The codec server's timeouts: a slow or idle client cannot hold a connection.
// A request may wait for the keeper (keeperTimeout) to unwrap another writer's
// data key, so the write deadline leaves room for that.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = keeperTimeout + 30*time.Second
	IdleTimeout       = 2 * time.Minute
)

// Serve serves h under /codec/ in the background.
func (s *Server) Serve(h http.Handler) {
	mux := http.NewServeMux()
	mux.Handle("/codec/", h)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: s.timeouts.readHeader,
		ReadTimeout:       s.timeouts.read,
		WriteTimeout:      s.timeouts.write,
		IdleTimeout:       s.timeouts.idle,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		defer close(s.done)
		_ = s.http.Serve(s.ln) // http.ErrServerClosed on Close
	}()
}

// Close stops serving and releases the listener.
func (s *Server) Close() error {
	if s.http == nil {
		return s.ln.Close()
	}
	err := s.http.Close()
	<-s.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
