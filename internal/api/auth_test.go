package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckAuthRefusesToServeWithoutTokensExceptOnLoopback(t *testing.T) {
	tokens := mustTokens(t, testToken)
	for _, tc := range []struct {
		tokens   []Token
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

// scopesOf is each token's scopes as written, by the token's place.
func scopesOf(toks []Token) map[string]string {
	out := map[string]string{}
	for _, t := range toks {
		out[t.From] = scopeList(t.Scopes)
	}
	return out
}

func TestLoadTokensFromTheEnvironmentAndAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("# API tokens\n\n  ci-0123456789abcdef   deploy:hello/staging, approve:*/prod\n"+
		"# ops\nops-0123456789abcdef admin\nviewer-0123456789ab\nbaker-0123456789abc bake:hello,bake:web-*\n"), 0o600))
	toks, err := LoadTokens(" a-0123456789abcdef , ,b-0123456789abcdef", file)
	require.NoError(t, err)
	assert.Equal(t, []string{"a-0123456789abcdef", "b-0123456789abcdef", "ci-0123456789abcdef", "ops-0123456789abcdef", "viewer-0123456789ab", "baker-0123456789abc"}, Secrets(toks))
	assert.Equal(t, map[string]string{
		"IMAGO_API_TOKENS item 1": "read", "IMAGO_API_TOKENS item 3": "read",
		file + " line 3": "deploy:hello/staging, approve:*/prod", file + " line 5": "admin",
		file + " line 6": "read", file + " line 7": "bake:hello, bake:web-*",
	}, scopesOf(toks), "a token alone, or the older comma-separated list, is read")
	for _, tok := range toks {
		assert.Regexp(t, `^api:[0-9a-f]{8}$`, tok.Who)
		assert.NotContains(t, tok.String(), tok.Secret(), "String never shows the token")
		assert.NotContains(t, fmt.Sprint(tok.LogValue()), tok.Secret(), "nor does its log value")
	}

	// IMAGO_API_TOKENS gives scopes as a file does, entries separated by ';' or newlines.
	toks, err = LoadTokens("ci-0123456789abcdef deploy:hello/staging,approve ; ops-0123456789abcdef admin\nviewer-0123456789ab", "")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"IMAGO_API_TOKENS entry 1": "deploy:hello/staging, approve", "IMAGO_API_TOKENS entry 2": "admin",
		"IMAGO_API_TOKENS entry 3": "read"}, scopesOf(toks))

	toks, err = LoadTokens("", "")
	require.NoError(t, err)
	assert.Empty(t, toks)
}

// Every mistake names its place and never quotes a token.
func TestTokenMistakesNameTheirPlaceAndNeverTheToken(t *testing.T) {
	const tok = "secret-0123456789abcdef"
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	for _, tc := range []struct{ env, file, want string }{
		{"short", "", "the API token in IMAGO_API_TOKENS is 5 characters; use at least 16, e.g. made with: openssl rand -hex 32"},
		{tok + ",short", "", "the API token in IMAGO_API_TOKENS item 2 is 5 characters"},
		{tok + " deploy;short admin", "", "the API token in IMAGO_API_TOKENS entry 2 is 5 characters"},
		{"", "# ok\nok-0123456789abcdef\n" + tok + " deplyo\n", `FILE line 3: the 1st scope "deplyo" is not one of read, deploy, approve, bake, admin`},
		{"", tok + " read,deploy:hello/prod/x", `FILE line 1: the 2nd scope "deploy:hello/prod/x": want deploy:SERVICE/ENV, each a name or a pattern with * (e.g. deploy:hello/staging or deploy:*/prod)`},
		{"", tok + " approve:/prod", `the 1st scope "approve:/prod": want approve:SERVICE/ENV`},
		{"", tok + " bake:hello/prod", `the 1st scope "bake:hello/prod": want bake:SERVICE, with SERVICE a service name or a pattern with * (e.g. bake:hello)`},
		{"", tok + " read:hello", `the 1st scope "read:hello": read takes no SERVICE/ENV, it is for everything`},
		{"", tok + " admin:*/prod", `admin takes no SERVICE/ENV`},
		{"", "deploy:hello/prod " + tok, `FILE line 1 starts with the scope "deploy:hello/prod" where its token should be; write TOKEN SCOPE[,SCOPE…]`},
		{"", "read", `FILE line 1 starts with the scope "read" where its token should be`},
		// A second token where a scope should be is not quoted.
		{"", tok + " other-0123456789abcdef", "FILE line 1: the 1st scope (not quoted: it may be a token) is not one of read, deploy, approve, bake, admin"},
		{tok, tok + " admin", "the API token in FILE line 1 is the one in IMAGO_API_TOKENS too; give each token one entry with all its scopes"},
		{"", tok + " read\n\n" + tok + " deploy", "the API token in FILE line 3 is the one in FILE line 1 too"},
	} {
		f := ""
		if tc.file != "" {
			require.NoError(t, os.WriteFile(file, []byte(tc.file), 0o600))
			f = file
		}
		_, err := LoadTokens(tc.env, f)
		if !assert.Error(t, err, "%q %q", tc.env, tc.file) {
			continue
		}
		msg := strings.ReplaceAll(err.Error(), file, "FILE")
		assert.Contains(t, msg, tc.want)
		assert.NotContains(t, msg, "0123456789abcdef", "no token is quoted")
	}
	_, err := LoadTokens("", filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "read the tokens file: open ")
}

// A tokens file its group or others can read is refused, saying how to fix it.
func TestATokensFileOthersCanReadIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte(testToken+" admin\n"), 0o600))
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660} {
		require.NoError(t, os.Chmod(file, mode))
		_, err := LoadTokens("", file)
		assert.EqualError(t, err, fmt.Sprintf("the tokens file %s has mode %04o, so its group or others can read or change it; make it private with: chmod 600 %s", file, mode, file))
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		require.NoError(t, os.Chmod(file, mode))
		toks, err := LoadTokens("", file)
		require.NoError(t, err, "mode %04o", mode)
		assert.Len(t, toks, 1)
	}
}

func TestScopesCoverTheirServicesAndEnvironments(t *testing.T) {
	need := func(k Kind, svc, env string) Scope { return Scope{Kind: k, Service: svc, Env: env} }
	for _, tc := range []struct {
		scope string
		need  Scope
		want  bool
	}{
		{"read", need(ScopeRead, "", ""), true},
		{"deploy:hello/staging", need(ScopeRead, "", ""), true},
		{"read", need(ScopeDeploy, "hello", "staging"), false},
		{"deploy:hello/staging", need(ScopeDeploy, "hello", "staging"), true},
		{"deploy:hello/staging", need(ScopeDeploy, "hello", "prod"), false},
		{"deploy:hello/staging", need(ScopeDeploy, "web", "staging"), false},
		{"deploy:hello/staging", need(ScopeApprove, "hello", "staging"), false},
		{"deploy:hello", need(ScopeDeploy, "hello", "prod"), true},
		{"deploy", need(ScopeDeploy, "web", "prod"), true},
		{"deploy:*/staging", need(ScopeDeploy, "web", "staging"), true},
		{"deploy:web-*/staging", need(ScopeDeploy, "web-eu", "staging"), true},
		{"deploy:web-*/staging", need(ScopeDeploy, "hello", "staging"), false},
		{"approve:*/prod", need(ScopeApprove, "hello", "prod"), true},
		{"approve:*/prod", need(ScopeApprove, "hello", "staging"), false},
		{"bake:hello", need(ScopeBake, "hello", ""), true},
		{"bake:hello", need(ScopeBake, "web", ""), false},
		{"bake", need(ScopeBake, "web", ""), true},
		{"bake", need(ScopeAdmin, "", ""), false},
		{"admin", need(ScopeAdmin, "", ""), true},
		{"admin", need(ScopeBake, "web", ""), true},
		{"admin", need(ScopeDeploy, "hello", "prod"), true},
	} {
		s, err := ParseScope(tc.scope)
		require.NoError(t, err, tc.scope)
		assert.Equal(t, tc.want, s.covers(tc.need), "%s covers %s", tc.scope, tc.need)
		assert.Equal(t, tc.scope, s.String(), "a scope is written back as it was read")
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
		if !assert.True(t, isKind(rt.scope), "%s has a scope", name) {
			continue
		}
		if rt.method == "GET" {
			assert.Equal(t, ScopeRead, rt.scope, "%s reads", name)
		} else if rt.scope == ScopeRead {
			assert.True(t, rt.inBody, "%s changes something: read is enough only when its handler checks more (the reaper's apply)", name)
		}
		if (rt.scope == ScopeDeploy || rt.scope == ScopeApprove) && !rt.inBody {
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

// FuzzParseTokens: any tokens file or IMAGO_API_TOKENS value gives tokens of at
// least MinTokenLength characters, each with scopes that read back as written, or
// an error that names its place and quotes no word that could be a token.
func FuzzParseTokens(f *testing.F) {
	f.Add("# ci\nci-0123456789abcdef deploy:hello/staging, approve:*/prod\nops-0123456789abcdef admin\n", false)
	f.Add("viewer-0123456789ab\nbaker-0123456789abc bake:web-*,read\n\n", false)
	f.Add("a-0123456789abcdef,b-0123456789abcdef", true)
	f.Add("ci-0123456789abcdef deploy:hello;ops-0123456789abcdef admin\nshort", true)
	f.Add("deploy:hello/prod secret-0123456789abcdef\nsecret-0123456789abcdef read:x,deploy:a/b/c,other-0123456789abcdef", false)
	f.Fuzz(func(t *testing.T, data string, env bool) {
		var toks []Token
		var err error
		if env {
			toks, err = ParseTokensEnv(data)
		} else {
			toks, err = ParseTokens(data, "FILE")
		}
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "FILE line ") && !strings.Contains(msg, "IMAGO_API_TOKENS") {
				t.Fatalf("the error names no place: %s", msg)
			}
			words := strings.FieldsFunc(data, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })
			partOfScope := func(w string) bool { // quoted as part of a scope that is not a token
				return strings.Contains("IMAGO_API_TOKENS", w) || slices.ContainsFunc(words, func(s string) bool { return looksLikeScope(s) && strings.Contains(s, w) })
			}
			for _, w := range words {
				if len(w) >= MinTokenLength && strings.Contains(msg, w) && !partOfScope(w) {
					t.Fatalf("the error quotes %q, which could be a token: %s", w, msg)
				}
			}
			return
		}
		for _, tok := range toks {
			if len(tok.Secret()) < MinTokenLength || strings.ContainsAny(tok.Secret(), " \t\n") {
				t.Fatalf("accepted the token %q", tok.Secret())
			}
			if len(tok.Scopes) == 0 {
				t.Fatalf("%s has no scope", tok.From)
			}
			if strings.Contains(tok.String(), tok.Secret()) {
				t.Fatalf("String shows the token: %s", tok)
			}
			for _, s := range tok.Scopes {
				back, err := ParseScope(s.String())
				if err != nil || back != s {
					t.Fatalf("the scope %+v reads back as %+v (%v)", s, back, err)
				}
			}
		}
	})
}
