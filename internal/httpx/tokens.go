package httpx

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// Tokens is a set of accepted bearer tokens, kept as SHA-256 digests. Match
// compares the digest of a presented token with every accepted one in constant
// time, so timing reveals neither a token's length nor which one matched.
type Tokens struct {
	digests [][sha256.Size]byte
}

// NewTokens returns the set of tokens, in order (Match reports an index into it).
func NewTokens(tokens []string) Tokens {
	t := Tokens{digests: make([][sha256.Size]byte, len(tokens))}
	for i, tok := range tokens {
		t.digests[i] = sha256.Sum256([]byte(tok))
	}
	return t
}

// Len is the number of tokens in the set.
func (t Tokens) Len() int { return len(t.digests) }

// Match reports whether token is in the set, and the index of the matching
// token in the list given to NewTokens. Every token is compared, whatever matches.
func (t Tokens) Match(token string) (int, bool) {
	d := sha256.Sum256([]byte(token))
	index := -1
	for i := range t.digests {
		eq := subtle.ConstantTimeCompare(d[:], t.digests[i][:])
		index = subtle.ConstantTimeSelect(eq, i, index)
	}
	return index, index >= 0
}

// TokenID names a token in logs and records without revealing it: the first 8
// hex digits of its SHA-256.
func TokenID(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:4])
}

// BearerToken returns the token of r's "Authorization: Bearer TOKEN" header
// (the scheme case-insensitive, surrounding spaces trimmed); ok is false when
// there is no such header or the token is empty.
func BearerToken(r *http.Request) (token string, ok bool) {
	scheme, tok, found := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
