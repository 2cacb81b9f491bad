package httpx_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/imago/imago/internal/httpx"
)

func TestTokensMatchByDigest(t *testing.T) {
	set := httpx.NewTokens([]string{"tok-ops-0123456789", "tok-ui-0123456789"})
	assert.Equal(t, 2, set.Len())
	for tok, want := range map[string]int{
		"tok-ops-0123456789": 0,
		"tok-ui-0123456789":  1,
	} {
		i, ok := set.Match(tok)
		assert.True(t, ok, tok)
		assert.Equal(t, want, i, tok)
	}
	for _, tok := range []string{"", "tok-ops-012345678", "tok-ops-01234567890", "TOK-OPS-0123456789"} {
		i, ok := set.Match(tok)
		assert.False(t, ok, "%q", tok)
		assert.Equal(t, -1, i, "%q", tok)
	}
	_, ok := httpx.NewTokens(nil).Match("")
	assert.False(t, ok, "an empty set matches nothing, not even the empty token")

	assert.Len(t, httpx.TokenID("tok-ops-0123456789"), 8)
	assert.NotEqual(t, httpx.TokenID("tok-ops-0123456789"), httpx.TokenID("tok-ui-0123456789"))
	assert.NotContains(t, httpx.TokenID("tok-ops-0123456789"), "tok")
}

func TestBearerToken(t *testing.T) {
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
		got, ok := httpx.BearerToken(r)
		assert.Equal(t, want, got, "%q", header)
		assert.Equal(t, want != "", ok, "%q", header)
	}
}
