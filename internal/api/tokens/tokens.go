// Package tokens reads the bearer tokens of the REST API and the codec server
// and their scopes, from a tokens file (--tokens-file) and IMAGO_API_TOKENS;
// matches a request's token against them in constant time (Set); and says what
// a scope covers. It needs only the standard library, so both servers read and
// check tokens the same way.
package tokens

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"regexp"
	"strings"
)

// MinLength is the shortest bearer token the API accepts.
const MinLength = 16

// Kind is what a scope lets a token do.
type Kind string

// The scopes, from least to most. Every token reads; admin implies the others.
const (
	Read    Kind = "read"    // every GET, the event streams, a reaper dry run
	Deploy  Kind = "deploy"  // start, abort and roll back rollouts; a pipeline's stages (SERVICE/ENV)
	Approve Kind = "approve" // approve and promote rollouts; a pipeline's gates (SERVICE/ENV)
	Bake    Kind = "bake"    // bakes, which run commands on a worker; channel moves (SERVICE)
	Admin   Kind = "admin"   // all of the above, schedules, the reaper's apply, cascading revokes
)

var kinds = []Kind{Read, Deploy, Approve, Bake, Admin}

// Scope is one grant of a token: a kind, which for deploy and approve may be
// limited to services and environments (deploy:hello/staging, approve:*/prod)
// and for bake to services (bake:hello). A "*" in a name matches any run of
// characters (deploy:web-*/staging).
type Scope struct {
	Kind    Kind
	Service string // a name or pattern; "*" for any; "" for read and admin
	Env     string // a name or pattern; "*" for any; "" unless deploy or approve
}

// String is the scope as written in a tokens file: deploy:hello/prod, bake:hello,
// read; "*" for the environment or for everything is left out (deploy:hello, deploy).
func (s Scope) String() string {
	switch s.Kind {
	case Deploy, Approve:
		switch {
		case s.Service == "*" && s.Env == "*":
			return string(s.Kind)
		case s.Env == "*":
			return string(s.Kind) + ":" + s.Service
		}
		return string(s.Kind) + ":" + s.Service + "/" + s.Env
	case Bake:
		if s.Service == "*" {
			return string(s.Kind)
		}
		return string(s.Kind) + ":" + s.Service
	}
	return string(s.Kind)
}

// Covers reports whether s grants need, a scope on one service and environment.
func (s Scope) Covers(need Scope) bool {
	switch {
	case s.Kind == Admin, need.Kind == Read:
		return true
	case s.Kind != need.Kind:
		return false
	}
	return matchName(s.Service, need.Service) && matchName(s.Env, need.Env)
}

// matchName matches a name against a pattern of scopePatternRE: names hold no
// '/', so path.Match's '*' is any run of characters, and nothing else is special.
func matchName(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// scopePatternRE is a service or environment in a scope: the catalog's name
// characters, and '*'.
var scopePatternRE = regexp.MustCompile(`^[A-Za-z0-9._*-]{1,128}$`)

// Token is one accepted bearer token and its scopes. The token itself is kept
// out of its String and its log value.
type Token struct {
	secret string
	digest [sha256.Size]byte
	// Who names the token in logs and records without revealing it: "api:" and
	// the first 8 hex digits of its SHA-256.
	Who    string
	Scopes Scopes // at least one; a token given none has read
	From   string // where it was configured: "/etc/imago/api-tokens line 3"
}

// Secret is the token itself, for a handler that checks it on its own (the codec server).
func (t Token) Secret() string { return t.secret }

// String names the token and its scopes, never the token: "api:1a2b3c4d (deploy:hello/staging, read)".
func (t Token) String() string { return t.Who + " (" + t.Scopes.String() + ")" }

// LogValue is what slog shows of the token.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("who", t.Who), slog.String("scopes", t.Scopes.String()), slog.String("from", t.From))
}

// Scopes are a token's grants, or what a request needs.
type Scopes []Scope

// String lists the scopes as a tokens file would, comma-separated.
func (ss Scopes) String() string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return strings.Join(out, ", ")
}

// Secrets lists the tokens themselves.
func Secrets(tokens []Token) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = t.secret
	}
	return out
}

// Load reads the API's tokens from env (the value of IMAGO_API_TOKENS, see
// ParseEnv) and file (see Parse), either of which may be empty. The
// file must be private to its owner (mode 0600 or stricter): one readable by
// group or others is refused. A token given twice is refused, naming both places.
func Load(env, file string) ([]Token, error) {
	tokens, err := ParseEnv(env)
	if err != nil {
		return nil, err
	}
	if file != "" {
		data, err := readPrivate(file)
		if err != nil {
			return nil, err
		}
		more, err := Parse(data, file)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, more...)
	}
	if err := distinct(tokens); err != nil {
		return nil, err
	}
	return tokens, nil
}

// readPrivate reads a tokens file after checking, on the file it opened, that
// only its owner may read or change it.
func readPrivate(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("read the tokens file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read the tokens file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("the tokens file %s has mode %04o, so its group or others can read or change it; make it private with: chmod 600 %s", file, perm, file)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("read the tokens file: %w", err)
	}
	return string(data), nil
}

// Parse reads a tokens file: one entry a line, TOKEN [SCOPE[,SCOPE…]];
// blank lines and lines starting with # are skipped. An entry of one word, or of
// words separated by commas only (the older format of IMAGO_API_TOKENS), is a
// list of tokens that each read. source names the file in errors, which never
// quote a token.
func Parse(data, source string) ([]Token, error) {
	var entries []entry
	for i, line := range strings.Split(data, "\n") {
		if !skipped(line) {
			entries = append(entries, entry{text: line, where: fmt.Sprintf("%s line %d", source, i+1)})
		}
	}
	return parseEntries(entries)
}

// skipped reports whether an entry is blank or a comment.
func skipped(text string) bool {
	text = strings.TrimSpace(text)
	return text == "" || strings.HasPrefix(text, "#")
}

// ParseEnv reads IMAGO_API_TOKENS: entries as in a tokens file, separated
// by ';' or newlines.
func ParseEnv(value string) ([]Token, error) {
	parts := strings.FieldsFunc(value, func(r rune) bool { return r == ';' || r == '\n' })
	var entries []entry
	for i, p := range parts {
		if skipped(p) {
			continue
		}
		where := "IMAGO_API_TOKENS"
		if len(parts) > 1 {
			where = fmt.Sprintf("IMAGO_API_TOKENS entry %d", i+1)
		}
		entries = append(entries, entry{text: p, where: where})
	}
	return parseEntries(entries)
}

// entry is one line of a tokens file or item of IMAGO_API_TOKENS, neither
// blank nor a comment.
type entry struct{ text, where string }

// closeLists drops the space around commas: "a, b ,c d" is "a,b,c d".
func closeLists(text string) string {
	var b strings.Builder
	prev := ""
	for _, w := range strings.Fields(text) {
		if prev != "" && !strings.HasSuffix(prev, ",") && !strings.HasPrefix(w, ",") {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		prev = w
	}
	return b.String()
}

func parseEntries(entries []entry) ([]Token, error) {
	var out []Token
	for _, e := range entries {
		words := strings.Fields(closeLists(e.text))
		if len(words) == 1 { // a token alone, or the older format: TOKEN[,TOKEN…]; each reads
			items := strings.Split(words[0], ",")
			for i, item := range items {
				if item == "" {
					continue
				}
				where := e.where
				if len(items) > 1 {
					where = fmt.Sprintf("%s item %d", e.where, i+1)
				}
				t, err := newToken(item, where)
				if err != nil {
					return nil, err
				}
				out = append(out, t)
			}
			continue
		}
		// The token first: a line with its words swapped must not quote the token as a scope.
		t, err := newToken(words[0], e.where)
		if err != nil {
			return nil, err
		}
		var scopes []Scope
		for i, w := range strings.FieldsFunc(strings.Join(words[1:], ","), func(r rune) bool { return r == ',' }) {
			s, err := ParseScope(w)
			if err != nil {
				return nil, fmt.Errorf("%s: the %s scope %w", e.where, ordinal(i+1), err)
			}
			scopes = append(scopes, s)
		}
		if len(scopes) > 0 {
			t.Scopes = scopes
		}
		out = append(out, t)
	}
	return out, nil
}

// newToken checks a token and gives it read.
func newToken(secret, where string) (Token, error) {
	// Only the first of a list is quoted: what follows a comma may be a token.
	if first, _, _ := strings.Cut(secret, ","); Kind(first).Valid() || looksLikeScope(first) {
		return Token{}, fmt.Errorf("%s starts with the scope %q where its token should be; write TOKEN SCOPE[,SCOPE…], e.g. made with: openssl rand -hex 32", where, first)
	}
	if len(secret) < MinLength {
		return Token{}, fmt.Errorf("the API token in %s is %d characters; use at least %d, e.g. made with: openssl rand -hex 32", where, len(secret), MinLength)
	}
	d := sha256.Sum256([]byte(secret))
	return Token{secret: secret, digest: d, Who: "api:" + hex.EncodeToString(d[:4]), Scopes: []Scope{{Kind: Read}}, From: where}, nil
}

// looksLikeScope reports whether a word is a kind followed by ':', which a
// message may quote: a token is no such word.
func looksLikeScope(w string) bool {
	k, _, ok := strings.Cut(w, ":")
	return ok && Kind(k).Valid()
}

// Valid reports whether k is one of the five kinds.
func (k Kind) Valid() bool {
	for _, known := range kinds {
		if k == known {
			return true
		}
	}
	return false
}

// ParseScope reads one scope: read, admin, deploy[:SERVICE[/ENV]],
// approve[:SERVICE[/ENV]] or bake[:SERVICE]. A missing SERVICE or ENV is "*".
// Its error quotes w only when w cannot be a token.
func ParseScope(w string) (Scope, error) {
	k, target, restricted := strings.Cut(w, ":")
	s := Scope{Kind: Kind(k)}
	switch s.Kind {
	case Read, Admin:
		if restricted {
			return s, fmt.Errorf("%s: %s takes no SERVICE/ENV, it is for everything; give deploy, approve or bake scopes for one service", quote(w), k)
		}
		return s, nil
	case Bake:
		s.Service = "*"
		if !restricted {
			return s, nil
		}
		if !scopePatternRE.MatchString(target) {
			return s, fmt.Errorf("%s: want bake:SERVICE, with SERVICE a service name or a pattern with * (e.g. bake:hello)", quote(w))
		}
		s.Service = target
		return s, nil
	case Deploy, Approve:
		s.Service, s.Env = "*", "*"
		if !restricted {
			return s, nil
		}
		svc, env, withEnv := strings.Cut(target, "/")
		if !withEnv {
			env = "*"
		}
		if !scopePatternRE.MatchString(svc) || !scopePatternRE.MatchString(env) {
			return s, fmt.Errorf("%s: want %s:SERVICE/ENV, each a name or a pattern with * (e.g. %s:hello/staging or %s:*/prod)", quote(w), k, k, k)
		}
		s.Service, s.Env = svc, env
		return s, nil
	}
	return s, fmt.Errorf("%s is not one of read, deploy, approve, bake, admin", quote(w))
}

// quote is w quoted for a message, unless it could be a token.
func quote(w string) string {
	if len(w) < MinLength || looksLikeScope(w) {
		return fmt.Sprintf("%q", w)
	}
	return "(not quoted: it may be a token)"
}

// distinct refuses a token configured twice: its scopes would be ambiguous.
func distinct(tokens []Token) error {
	seen := map[[sha256.Size]byte]string{}
	for _, t := range tokens {
		if first, ok := seen[t.digest]; ok {
			return fmt.Errorf("the API token in %s is the one in %s too; give each token one entry with all its scopes", t.From, first)
		}
		seen[t.digest] = t.From
	}
	return nil
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
