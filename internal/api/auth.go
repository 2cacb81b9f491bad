package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/contract"
)

// CheckAuth is the rule for starting the API: with tokens it serves anywhere;
// without any it refuses, unless insecureNoAuth is set and listen is a loopback
// address (127.0.0.0/8, ::1, localhost), where only this host can reach it.
func CheckAuth(toks []tokens.Token, insecureNoAuth bool, listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q is not host:port, e.g. 127.0.0.1:8080", listen)
	}
	switch {
	case len(toks) > 0 && insecureNoAuth:
		return fmt.Errorf("--insecure-no-auth was given but API tokens are configured too; drop --insecure-no-auth to require them, or unset the tokens")
	case len(toks) > 0:
		return nil
	case !insecureNoAuth:
		return fmt.Errorf("no API token is configured, so the API would be open to anyone: set IMAGO_API_TOKENS='TOKEN SCOPE[,SCOPE...]' or pass --tokens-file FILE (one such line per token, see docs/security.md) (make a token with: openssl rand -hex 32); for local development only, --insecure-no-auth serves without tokens on a loopback address")
	case !isLoopback(host):
		return fmt.Errorf("--insecure-no-auth serves without authentication, so only on a loopback address (127.0.0.1, ::1 or localhost), and --listen %s is not one; configure tokens (IMAGO_API_TOKENS or --tokens-file) to listen there", listen)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const invalidTokenType = "https://imago.dev/problems/invalid-token"

// grant is who made a request and what they may do.
type grant struct {
	who    string
	scopes tokens.Scopes
}

// anonymous is everyone in --insecure-no-auth mode (loopback only).
var anonymous = grant{who: "api:anonymous", scopes: []tokens.Scope{{Kind: tokens.Admin}}}

// authenticator checks bearer tokens in constant time.
type authenticator struct {
	tokens tokens.Set
	open   bool // no tokens and insecureNoAuth: anyone, as admin
}

func newAuthenticator(toks []tokens.Token, insecureNoAuth bool) *authenticator {
	return &authenticator{tokens: tokens.NewSet(toks), open: len(toks) == 0 && insecureNoAuth}
}

// check returns who made the request ("api:" and the first 8 hex digits of the
// token's SHA-256, so logs and decisions name a token without revealing it) with
// the token's scopes, or the 401 problem. The token is matched in constant time
// (tokens.Set).
func (a *authenticator) check(r *http.Request) (grant, Problem, bool) {
	if a.open {
		return anonymous, Problem{}, true
	}
	tok, ok := tokens.Bearer(r)
	if !ok {
		return grant{}, Problem{Type: "https://imago.dev/problems/unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "this endpoint needs a bearer token: send the header Authorization: Bearer TOKEN (one of the server's IMAGO_API_TOKENS or --tokens-file)"}, false
	}
	t, ok := a.tokens.Match(tok)
	if !ok {
		return grant{}, Problem{Type: invalidTokenType, Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "the bearer token is not one this server accepts; check the token against the server's IMAGO_API_TOKENS or --tokens-file"}, false
	}
	return grant{who: t.Who, scopes: t.Scopes}, Problem{}, true
}

// missing lists what of needs the grant lacks.
func (g grant) missing(needs []tokens.Scope) tokens.Scopes {
	var out tokens.Scopes
	for _, n := range needs {
		if !g.scopes.Allow(n) {
			out = append(out, n)
		}
	}
	return out
}

// hasKind reports whether the grant holds a scope of kind k on anything.
func (g grant) hasKind(k tokens.Kind) bool {
	return k == tokens.Read || slices.ContainsFunc(g.scopes, func(s tokens.Scope) bool { return s.Kind == k || s.Kind == tokens.Admin })
}

// require refuses (403) what the grant lacks of needs, naming each missing scope.
func (g grant) require(needs ...tokens.Scope) error {
	m := g.missing(needs)
	if len(m) == 0 {
		return nil
	}
	what := "the scope " + m.String()
	if len(m) > 1 {
		what = "the scopes " + m.String()
	}
	return g.forbidden(what)
}

func (g grant) forbidden(lacks string) error {
	return problem(http.StatusForbidden, "forbidden", "Forbidden",
		"this token lacks %s; it has %s (%s), and scopes are granted in the server's tokens file or IMAGO_API_TOKENS (see docs/security.md)",
		lacks, g.scopes, g.who)
}

// authorize refuses (403) a request whose token lacks any of needs: handlers
// whose service and environment come from the body or the catalog call it once
// they know them.
func authorize(r *http.Request, needs ...tokens.Scope) error { return grantOf(r).require(needs...) }

// checkRoute is a route's scope check before its handler runs: read and admin
// as they are, deploy and approve on the path's {service}/{env}; for a route
// whose target is in the body (inBody), that the token has that kind of scope at
// all, its handler checking the rest.
func checkRoute(rt route, g grant, r *http.Request) error {
	switch {
	case rt.inBody:
		if !g.hasKind(rt.scope) {
			return g.forbidden(fmt.Sprintf("any %s scope, and %s %s needs %s on what it acts on", rt.scope, rt.method, rt.path, tokens.Scope{Kind: rt.scope, Service: "SERVICE", Env: "ENV"}))
		}
		return nil
	case rt.scope == tokens.Deploy, rt.scope == tokens.Approve:
		// {env} may be a region's deployment, ENV@REGION: the environment's scope covers it.
		env, _ := contract.SplitPlace(r.PathValue("env"))
		return g.require(tokens.Scope{Kind: rt.scope, Service: r.PathValue("service"), Env: env})
	}
	return g.require(tokens.Scope{Kind: rt.scope})
}

// The browser checks. A web page can make a browser send a "simple" request to
// any address (a POST with Content-Type text/plain, no preflight), and a DNS name
// it controls can be re-pointed at 127.0.0.1; these refuse both.

// checkHost refuses, in --insecure-no-auth mode, a request whose Host is not a
// loopback address: a page that re-points its own name at 127.0.0.1 (DNS
// rebinding) sends its own name as the Host.
func (s *Server) checkHost(r *http.Request) *Problem {
	if !s.auth.open {
		return nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if isLoopback(host) {
		return nil
	}
	return &Problem{Type: "https://imago.dev/problems/host-not-loopback", Title: "Host not served", Status: http.StatusForbidden,
		Detail: fmt.Sprintf("without tokens (--insecure-no-auth) this server answers only requests for a loopback host (127.0.0.1, ::1 or localhost), and this one is for %q; a web page may have pointed its own name at this address (DNS rebinding)", r.Host)}
}

// checkOrigin refuses a request sent by a web page whose origin is not one of
// the server's IMAGO_UI_ORIGIN: an Origin header that is not allowed, or, from
// a browser that sends no Origin, Sec-Fetch-Site saying another site sent it.
// Requests without either (the CLI, curl) pass.
func (s *Server) checkOrigin(r *http.Request) *Problem {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if slices.Contains(s.cfg.Origins, strings.TrimSuffix(origin, "/")) {
			return nil
		}
		return &Problem{Type: "https://imago.dev/problems/cross-origin", Title: "Origin not allowed", Status: http.StatusForbidden,
			Detail: fmt.Sprintf("a web page at %q sent this request, and the server's IMAGO_UI_ORIGIN does not allow that origin; add it there to allow it", origin)}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return &Problem{Type: "https://imago.dev/problems/cross-origin", Title: "Origin not allowed", Status: http.StatusForbidden,
			Detail: fmt.Sprintf("a web page on another site sent this request (Sec-Fetch-Site: %s) without an Origin the server's IMAGO_UI_ORIGIN allows", site)}
	}
	return nil
}

// checkMediaType refuses (415) a POST, PUT, PATCH or DELETE that does not say
// Content-Type: application/json, with or without a body: the types a page can
// send without a preflight are exactly the others.
func checkMediaType(r *http.Request) *Problem {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	got := "none"
	if ct != "" {
		got = fmt.Sprintf("%q", ct)
	}
	return &Problem{Type: "https://imago.dev/problems/unsupported-media-type", Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
		Detail: fmt.Sprintf("%s needs the header Content-Type: application/json, even without a body (got %s): other types are what a web page can make a browser send across sites", r.Method, got)}
}
