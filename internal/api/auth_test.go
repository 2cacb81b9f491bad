package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/imago/imago/internal/api/tokens"
)

func TestCheckAuthRefusesToServeWithoutTokensExceptOnLoopback(t *testing.T) {
	toks := mustTokens(t, testToken)
	for _, tc := range []struct {
		tokens   []tokens.Token
		insecure bool
		listen   string
		want     string // "" when it may start
	}{
		{toks, false, "0.0.0.0:8080", ""},
		{toks, false, "127.0.0.1:8080", ""},
		{nil, false, "127.0.0.1:8080", "no API token is configured, so the API would be open to anyone: set IMAGO_API_TOKENS"},
		{nil, true, "127.0.0.1:8080", ""},
		{nil, true, "127.10.0.3:8080", ""},
		{nil, true, "[::1]:8080", ""},
		{nil, true, "localhost:8080", ""},
		{nil, true, "0.0.0.0:8080", "--insecure-no-auth serves without authentication, so only on a loopback address (127.0.0.1, ::1 or localhost), and --listen 0.0.0.0:8080 is not one"},
		{nil, true, ":8080", "and --listen :8080 is not one"},
		{nil, true, "[::]:8080", "is not one"},
		{nil, true, "192.168.1.5:8080", "is not one"},
		{nil, true, "api.example.com:8080", "is not one"},
		{toks, true, "127.0.0.1:8080", "--insecure-no-auth was given but API tokens are configured too"},
		{toks, false, "8080", `--listen "8080" is not host:port, e.g. 127.0.0.1:8080`},
	} {
		err := CheckAuth(tc.tokens, tc.insecure, tc.listen)
		if tc.want == "" {
			assert.NoError(t, err, "%+v", tc)
			continue
		}
		if assert.Error(t, err, "%+v", tc) {
			assert.Contains(t, err.Error(), tc.want, "%+v", tc)
		}
	}
}

// Every route but the public ones names its scope in the table, and a route whose
// scope is on a service and environment has them in its path or checks them in
// its handler.
func TestEveryRouteHasAScope(t *testing.T) {
	public := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /v1/openapi.json": true}
	for _, rt := range NewServer(Config{}).table {
		name := rt.method + " " + rt.path
		if public[name] {
			assert.True(t, rt.public, name)
			assert.Empty(t, rt.scope, "%s is public: it has no scope", name)
			continue
		}
		assert.False(t, rt.public, "%s is not one of the public routes", name)
		if !assert.True(t, rt.scope.Valid(), "%s has a scope", name) {
			continue
		}
		if rt.method == "GET" {
			assert.Equal(t, tokens.Read, rt.scope, "%s reads", name)
		} else if rt.scope == tokens.Read {
			assert.True(t, rt.inBody || rt.computes, "%s changes something: read is enough only when its handler checks more (the reaper's apply) or it changes nothing (a plan)", name)
		}
		if (rt.scope == tokens.Deploy || rt.scope == tokens.Approve) && !rt.inBody {
			assert.Contains(t, rt.path, "{service}/{env}", "%s takes its %s scope's service and environment from the path", name, rt.scope)
		}
	}
}

// Without tokens and without --insecure-no-auth the handler fails closed.
func TestAServerWithoutTokensRefusesEveryone(t *testing.T) {
	h := NewServer(Config{})
	for _, hdr := range []string{"", "Bearer ", "Bearer anything-at-all-0123"} {
		req := httptest.NewRequest("GET", "/v1/rollouts", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusUnauthorized, rec.Code, "%q", hdr)
	}
}

// Extra handlers are mounted as they are (the codec server answers CORS
// preflights, which carry no token); RequireToken puts one behind the API's tokens.
func TestExtraHandlersAreMountedAsGivenOrBehindTheTokens(t *testing.T) {
	teapot := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(principal(r)))
	})
	var s *Server
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.RequireToken(teapot).ServeHTTP(w, r) })
	s = NewServer(Config{Tokens: mustTokens(t, testToken), Extra: map[string]http.Handler{"/codec/": teapot, "/debug/": guarded}})
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"OPTIONS", "/codec/decode", "", http.StatusTeapot},
		{"POST", "/codec/decode", "", http.StatusTeapot},
		{"GET", "/debug/vars", "", http.StatusUnauthorized},
		{"GET", "/debug/vars", "wrong-0123456789abcdef", http.StatusUnauthorized},
		{"GET", "/debug/vars", testToken, http.StatusTeapot},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		assert.Equal(t, tc.want, rec.Code, "%s %s with %q", tc.method, tc.path, tc.token)
		if tc.want == http.StatusUnauthorized {
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
			assert.Equal(t, `Bearer realm="imago"`, rec.Header().Get("WWW-Authenticate")[:len(`Bearer realm="imago"`)])
		}
		if tc.path == "/debug/vars" && tc.want == http.StatusTeapot {
			assert.Regexp(t, `^api:[0-9a-f]{8}$`, rec.Body.String(), "the guarded handler knows who called")
		}
	}
}
