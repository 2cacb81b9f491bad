package tokens

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
)

// Set is the tokens a server accepts: the API's, and the codec server's.
type Set struct{ tokens []Token }

// NewSet returns the set of tokens.
func NewSet(tokens []Token) Set { return Set{tokens: slices.Clone(tokens)} }

// Len is the number of tokens in the set.
func (s Set) Len() int { return len(s.tokens) }

// Match returns the accepted token equal to secret. It compares SHA-256
// digests, of equal length, with every token in the set whatever matches, so
// timing reveals neither a token's length nor which one matched.
func (s Set) Match(secret string) (Token, bool) {
	d := sha256.Sum256([]byte(secret))
	match := -1
	for i := range s.tokens {
		match = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(d[:], s.tokens[i].digest[:]), i, match)
	}
	if match < 0 {
		return Token{}, false
	}
	return s.tokens[match], true
}

// Bearer returns the token of r's "Authorization: Bearer TOKEN" header (the
// scheme case-insensitive, surrounding spaces trimmed); ok is false when there
// is no such header or the token is empty.
func Bearer(r *http.Request) (token string, ok bool) {
	scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// Allow reports whether the scopes grant need.
func (ss Scopes) Allow(need Scope) bool {
	return slices.ContainsFunc(ss, func(s Scope) bool { return s.Covers(need) })
}
