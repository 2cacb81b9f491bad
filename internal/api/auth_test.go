package api

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckAuthRefusesToServeWithoutTokensExceptOnLoopback(t *testing.T) {
	tokens := []string{testToken}
	for _, tc := range []struct {
		tokens   []string
		insecure bool
		listen   string
		want     string // "" when it may start
	}{
		{tokens, false, "0.0.0.0:8080", ""},
		{tokens, false, "127.0.0.1:8080", ""},
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
		{tokens, true, "127.0.0.1:8080", "--insecure-no-auth was given but API tokens are configured too"},
		{tokens, false, "8080", `--listen "8080" is not host:port, e.g. 127.0.0.1:8080`},
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

func TestLoadTokensFromTheEnvironmentAndAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("# API tokens\n\n  ci-0123456789abcdef  \n# ops\nops-0123456789abcdef\n"), 0o600))
	toks, err := LoadTokens(" a-0123456789abcdef , ,b-0123456789abcdef", file)
	require.NoError(t, err)
	assert.Equal(t, []string{"a-0123456789abcdef", "b-0123456789abcdef", "ci-0123456789abcdef", "ops-0123456789abcdef"}, toks)

	toks, err = LoadTokens("", "")
	require.NoError(t, err)
	assert.Empty(t, toks)

	_, err = LoadTokens("short", "")
	assert.EqualError(t, err, "the API token in IMAGO_API_TOKENS (item 1) is 5 characters; use at least 16, e.g. made with: openssl rand -hex 32")
	require.NoError(t, os.WriteFile(file, []byte("# ok\nok-0123456789abcdef\ntwo words-0123456789\n"), 0o600))
	_, err = LoadTokens("", file)
	assert.EqualError(t, err, "the API token in "+file+" line 3 holds a space; a token is one word, e.g. made with: openssl rand -hex 32")
	_, err = LoadTokens("", filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "read the tokens file: open ")
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
	s = NewServer(Config{Tokens: []string{testToken}, Extra: map[string]http.Handler{"/codec/": teapot, "/debug/": guarded}})
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
