package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// MinTokenLength is the shortest bearer token the API accepts.
const MinTokenLength = 16

// LoadTokens reads the API's bearer tokens from env (the value of
// IMAGO_API_TOKENS: comma-separated) and file (one token per line; blank lines and
// lines starting with # are skipped), either of which may be empty. A token
// shorter than MinTokenLength or holding spaces is refused, with where it came from.
func LoadTokens(env, file string) ([]string, error) {
	var out []string
	add := func(tok, where string) error {
		switch {
		case strings.ContainsAny(tok, " \t"):
			return fmt.Errorf("the API token in %s holds a space; a token is one word, e.g. made with: openssl rand -hex 32", where)
		case len(tok) < MinTokenLength:
			return fmt.Errorf("the API token in %s is %d characters; use at least %d, e.g. made with: openssl rand -hex 32", where, len(tok), MinTokenLength)
		}
		out = append(out, tok)
		return nil
	}
	for i, tok := range strings.Split(env, ",") {
		if tok = strings.TrimSpace(tok); tok == "" {
			continue
		}
		if err := add(tok, fmt.Sprintf("IMAGO_API_TOKENS (item %d)", i+1)); err != nil {
			return nil, err
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read the tokens file: %w", err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := add(line, fmt.Sprintf("%s line %d", file, i+1)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// CheckAuth is the rule for starting the API: with tokens it serves anywhere;
// without any it refuses, unless insecureNoAuth is set and listen is a loopback
// address (127.0.0.0/8, ::1, localhost), where only this host can reach it.
func CheckAuth(tokens []string, insecureNoAuth bool, listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q is not host:port, e.g. 127.0.0.1:8080", listen)
	}
	switch {
	case len(tokens) > 0 && insecureNoAuth:
		return fmt.Errorf("--insecure-no-auth was given but API tokens are configured too; drop --insecure-no-auth to require them, or unset the tokens")
	case len(tokens) > 0:
		return nil
	case !insecureNoAuth:
		return fmt.Errorf("no API token is configured, so the API would be open to anyone: set IMAGO_API_TOKENS=TOKEN[,TOKEN...] or pass --tokens-file FILE (make a token with: openssl rand -hex 32); for local development only, --insecure-no-auth serves without tokens on a loopback address")
	case !isLoopback(host):
		return fmt.Errorf("--insecure-no-auth serves without authentication, so only on a loopback address (127.0.0.1, ::1 or localhost), and --listen %s is not one; configure tokens (IMAGO_API_TOKENS or --tokens-file) to listen there", listen)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const invalidTokenType = "https://imago.dev/problems/invalid-token"

// authenticator checks bearer tokens in constant time.
type authenticator struct {
	digests [][sha256.Size]byte
	open    bool // no tokens and insecureNoAuth: anyone
}

func newAuthenticator(tokens []string, insecureNoAuth bool) *authenticator {
	a := &authenticator{open: len(tokens) == 0 && insecureNoAuth}
	for _, t := range tokens {
		a.digests = append(a.digests, sha256.Sum256([]byte(t)))
	}
	return a
}

// check returns who made the request ("api:" and the first 8 hex digits of the
// token's SHA-256, so logs and decisions name a token without revealing it), or
// the 401 problem. Digests of equal length are compared, with every configured
// token tried, so timing reveals neither a token's length nor which one matched.
func (a *authenticator) check(r *http.Request) (string, Problem, bool) {
	if a.open {
		return "api:anonymous", Problem{}, true
	}
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", Problem{Type: "https://imago.dev/problems/unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "this endpoint needs a bearer token: send the header Authorization: Bearer TOKEN (one of the server's IMAGO_API_TOKENS or --tokens-file)"}, false
	}
	d := sha256.Sum256([]byte(tok))
	match := 0
	for i := range a.digests {
		match |= subtle.ConstantTimeCompare(d[:], a.digests[i][:])
	}
	if match != 1 {
		return "", Problem{Type: invalidTokenType, Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "the bearer token is not one this server accepts; check the token against the server's IMAGO_API_TOKENS or --tokens-file"}, false
	}
	return "api:" + hex.EncodeToString(d[:4]), Problem{}, true
}
