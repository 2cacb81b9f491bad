package tokens

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetMatchesByDigest(t *testing.T) {
	toks, err := Parse("tok-ops-0123456789 admin\ntok-ui-0123456789", "FILE")
	require.NoError(t, err)
	set := NewSet(toks)
	assert.Equal(t, 2, set.Len())
	for secret, want := range map[string]string{"tok-ops-0123456789": "FILE line 1", "tok-ui-0123456789": "FILE line 2"} {
		tok, ok := set.Match(secret)
		assert.True(t, ok, secret)
		assert.Equal(t, want, tok.From, secret)
	}
	for _, secret := range []string{"", "tok-ops-012345678", "tok-ops-01234567890", "TOK-OPS-0123456789", "tok-ops-0123456789 admin"} {
		tok, ok := set.Match(secret)
		assert.False(t, ok, "%q", secret)
		assert.Equal(t, Token{}, tok, "%q", secret)
	}
	_, ok := NewSet(nil).Match("")
	assert.False(t, ok, "an empty set matches nothing, not even the empty token")
}

func TestBearer(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc":     "abc",
		"bearer abc":     "abc",
		"BEARER  abc ":   "abc",
		"Bearer ":        "",
		"Bearer":         "",
		"Basic dXNlcg==": "",
		"":               "",
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		got, ok := Bearer(r)
		assert.Equal(t, want, got, "%q", header)
		assert.Equal(t, want != "", ok, "%q", header)
	}
}

func TestScopesAllow(t *testing.T) {
	deployer := Scopes{{Kind: Deploy, Service: "hello", Env: "staging"}, {Kind: Bake, Service: "*"}}
	assert.True(t, deployer.Allow(Scope{Kind: Read}))
	assert.True(t, deployer.Allow(Scope{Kind: Deploy, Service: "hello", Env: "staging"}))
	assert.True(t, deployer.Allow(Scope{Kind: Bake, Service: "web"}))
	assert.False(t, deployer.Allow(Scope{Kind: Deploy, Service: "hello", Env: "prod"}))
	assert.False(t, deployer.Allow(Scope{Kind: Admin}))
	assert.True(t, Scopes{{Kind: Admin}}.Allow(Scope{Kind: Admin}))
	assert.False(t, Scopes(nil).Allow(Scope{Kind: Admin}))
}
