package tokens

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scopesOf is each token's scopes as written, by the token's place.
func scopesOf(toks []Token) map[string]string {
	out := map[string]string{}
	for _, t := range toks {
		out[t.From] = t.Scopes.String()
	}
	return out
}

func TestLoadTokensFromTheEnvironmentAndAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("# API tokens\n\n  ci-0123456789abcdef   deploy:hello/staging, approve:*/prod\n"+
		"# ops\nops-0123456789abcdef admin\nviewer-0123456789ab\nbaker-0123456789abc bake:hello,bake:web-*\n"), 0o600))
	toks, err := Load(" a-0123456789abcdef , ,b-0123456789abcdef", file)
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
	toks, err = Load("ci-0123456789abcdef deploy:hello/staging,approve ; ops-0123456789abcdef admin\nviewer-0123456789ab", "")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"IMAGO_API_TOKENS entry 1": "deploy:hello/staging, approve", "IMAGO_API_TOKENS entry 2": "admin",
		"IMAGO_API_TOKENS entry 3": "read"}, scopesOf(toks))

	toks, err = Load("", "")
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
		// Scopes, then the token after a comma: the message quotes the scope alone.
		{"", "deploy:," + tok + " admin", `FILE line 1 starts with the scope "deploy:" where its token should be`},
		{"", "read," + tok + " admin", `FILE line 1 starts with the scope "read" where its token should be`},
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
		_, err := Load(tc.env, f)
		if !assert.Error(t, err, "%q %q", tc.env, tc.file) {
			continue
		}
		msg := strings.ReplaceAll(err.Error(), file, "FILE")
		assert.Contains(t, msg, tc.want)
		assert.NotContains(t, msg, "0123456789abcdef", "no token is quoted")
	}
	_, err := Load("", filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "read the tokens file: open ")
}

// A tokens file its group or others can read is refused, saying how to fix it.
func TestATokensFileOthersCanReadIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("test-token-0123456789abcdef admin\n"), 0o600))
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660} {
		require.NoError(t, os.Chmod(file, mode))
		_, err := Load("", file)
		assert.EqualError(t, err, fmt.Sprintf("the tokens file %s has mode %04o, so its group or others can read or change it; make it private with: chmod 600 %s", file, mode, file))
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		require.NoError(t, os.Chmod(file, mode))
		toks, err := Load("", file)
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
		{"read", need(Read, "", ""), true},
		{"deploy:hello/staging", need(Read, "", ""), true},
		{"read", need(Deploy, "hello", "staging"), false},
		{"deploy:hello/staging", need(Deploy, "hello", "staging"), true},
		{"deploy:hello/staging", need(Deploy, "hello", "prod"), false},
		{"deploy:hello/staging", need(Deploy, "web", "staging"), false},
		{"deploy:hello/staging", need(Approve, "hello", "staging"), false},
		{"deploy:hello", need(Deploy, "hello", "prod"), true},
		{"deploy", need(Deploy, "web", "prod"), true},
		{"deploy:*/staging", need(Deploy, "web", "staging"), true},
		{"deploy:web-*/staging", need(Deploy, "web-eu", "staging"), true},
		{"deploy:web-*/staging", need(Deploy, "hello", "staging"), false},
		{"approve:*/prod", need(Approve, "hello", "prod"), true},
		{"approve:*/prod", need(Approve, "hello", "staging"), false},
		{"bake:hello", need(Bake, "hello", ""), true},
		{"bake:hello", need(Bake, "web", ""), false},
		{"bake", need(Bake, "web", ""), true},
		{"bake", need(Admin, "", ""), false},
		{"admin", need(Admin, "", ""), true},
		{"admin", need(Bake, "web", ""), true},
		{"admin", need(Deploy, "hello", "prod"), true},
	} {
		s, err := ParseScope(tc.scope)
		require.NoError(t, err, tc.scope)
		assert.Equal(t, tc.want, s.Covers(tc.need), "%s covers %s", tc.scope, tc.need)
		assert.Equal(t, tc.scope, s.String(), "a scope is written back as it was read")
	}
}

// FuzzParseTokens: any tokens file or IMAGO_API_TOKENS value gives tokens of at
// least MinLength characters, each with scopes that read back as written, or
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
			toks, err = ParseEnv(data)
		} else {
			toks, err = Parse(data, "FILE")
		}
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "FILE line ") && !strings.Contains(msg, "IMAGO_API_TOKENS") {
				t.Fatalf("the error names no place: %s", msg)
			}
			// The words the parser sees; those that cannot be tokens may be quoted.
			words := strings.FieldsFunc(data, func(r rune) bool { return r == ',' || env && r == ';' || unicode.IsSpace(r) })
			rest := strings.ReplaceAll(msg, "IMAGO_API_TOKENS", "")
			for _, w := range words {
				if len(w) < MinLength || looksLikeScope(w) {
					rest = strings.ReplaceAll(rest, strconv.Quote(w), "")
				}
			}
			for _, w := range words {
				if len(w) >= MinLength && !looksLikeScope(w) && strings.Contains(rest, w) {
					t.Fatalf("the error quotes %q, which could be a token: %s", w, msg)
				}
			}
			return
		}
		for _, tok := range toks {
			if len(tok.Secret()) < MinLength || strings.ContainsAny(tok.Secret(), " \t\n") {
				t.Fatalf("accepted the token %q", tok.Secret())
			}
			if len(tok.Scopes) == 0 {
				t.Fatalf("%s has no scope", tok.From)
			}
			if tok.String() != tok.Who+" ("+tok.Scopes.String()+")" || len(tok.Who) != len("api:")+8 {
				t.Fatalf("String shows more than the fingerprint and the scopes: %s", tok)
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
