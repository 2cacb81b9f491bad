package spec

import (
	"fmt"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// A canary's route rules: setHeaderRoute and setMirrorRoute steps and
// strategy.stickiness (Argo Rollouts' names and shapes). Whether the worker's
// provider can do them is CheckProvider's (capabilities.go).

// DefaultStickyCookie is the cookie of strategy.stickiness when it names none.
const DefaultStickyCookie = "imago-fleet"

// ALBStickyCookie is the cookie an ALB's target-group stickiness sets; it
// cannot be renamed, so the aws provider's stickiness is by this cookie.
const ALBStickyCookie = "AWSALBTG"

// maxALBStickiness is the longest target-group stickiness an ALB keeps (7 days).
const maxALBStickiness = 7 * 24 * time.Hour

// validateHeaderRoute checks one setHeaderRoute step; set are the header
// routes earlier steps set (a route without match removes one of them).
func validateHeaderRoute(add func(field, format string, args ...any), field string, h contract.HeaderRouteStep, set map[string]bool) {
	if !provider.ValidToken(h.Name) {
		add(field+".name", "%q: name the route with letters, digits, '-', '_' or '.', e.g. canary", h.Name)
	}
	if len(h.Match) == 0 {
		if h.Name != "" && !set[h.Name] {
			add(field, "removes header route %q, which no earlier step sets; give match: [{header: X-Canary, exact: \"1\"}] to set it", h.Name)
		}
		delete(set, h.Name)
		return
	}
	set[h.Name] = true
	for j, m := range h.Match {
		mf := fmt.Sprintf("%s.match[%d]", field, j)
		switch {
		case (m.Header == "") == (m.Cookie == ""):
			add(mf, "set exactly one of header and cookie")
		case m.Header != "" && !provider.ValidToken(m.Header):
			add(mf+".header", "%q is not a header name: use letters, digits, '-', '_' or '.'", m.Header)
		case m.Cookie != "" && !provider.ValidToken(m.Cookie):
			add(mf+".cookie", "%q is not a cookie name: use letters, digits, '-', '_' or '.'", m.Cookie)
		}
		if m.Exact == "" {
			add(mf+".exact", "is required: the value the header or cookie must have, e.g. \"1\"")
		} else if !printable(m.Exact) {
			add(mf+".exact", "%q: use printable ASCII without spaces, quotes, ';', ',', '*' or '?'", m.Exact)
		}
	}
}

// validateStickiness checks strategy.stickiness (defaults applied).
func (r *Rollout) validateStickiness(add func(field, format string, args ...any)) {
	s := r.Strategy.Stickiness
	if s == nil {
		return
	}
	if r.Strategy.Type != contract.Canary {
		add("strategy.stickiness", "is for the canary strategy: it keeps a client on the fleet it first got while both take traffic")
		return
	}
	if !provider.ValidToken(s.Cookie) {
		add("strategy.stickiness.cookie", "%q is not a cookie name: use letters, digits, '-', '_' or '.'", s.Cookie)
	} else if r.Provider == "aws" && s.Cookie != ALBStickyCookie {
		add("strategy.stickiness.cookie", "%q: the aws provider's stickiness is the ALB's target-group stickiness, whose cookie is %s and cannot be renamed; leave cookie out (or write %s)",
			s.Cookie, ALBStickyCookie, ALBStickyCookie)
	}
	switch {
	case s.TTL <= 0:
		add("strategy.stickiness.ttl", "must be above 0, e.g. 1h")
	case r.Provider == "aws" && (s.TTL.D() > maxALBStickiness || s.TTL.D() < time.Second):
		add("strategy.stickiness.ttl", "%s: an ALB keeps a client on a target group for 1s to 7 days (168h)", s.TTL)
	}
}

// printable reports whether a match value can be compared as a header and as
// a cookie value, and written in an ALB condition as itself: printable ASCII
// without space, quotes, ';', ',', '\\' and the ALB's wildcards '*' and '?'.
func printable(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c > '~' || c == '"' || c == ';' || c == ',' || c == '\\' || c == '*' || c == '?' {
			return false
		}
	}
	return true
}
