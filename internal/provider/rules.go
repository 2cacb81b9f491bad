package provider

import (
	"fmt"
	"strings"

	"github.com/imago/imago/internal/contract"
)

// checkRules refuses route rules (matches, stickiness, mirror) that are
// malformed, name a fleet the route has no targets for, or need a capability
// the driver lacks.
func checkRules(key contract.RouteKey, route contract.Route, caps Capabilities, driver string) error {
	targets := map[string]bool{}
	for _, b := range route.Backends {
		targets[b.FleetID] = len(b.Targets) > 0
	}
	fleet := func(what, id string) error {
		if !targets[id] {
			return Errorf(InvalidArgument, "route %s: %s names fleet %q, which is not a backend of the route with targets", key, what, id)
		}
		return nil
	}
	need := func(c Capability, what string) error {
		if !caps.Has(c) {
			return Errorf(FailedPrecondition, "route %s: %s needs %s, which the %s provider does not have", key, what, c.Describe(), driver)
		}
		return nil
	}
	for i, m := range route.Matches {
		what := fmt.Sprintf("matches[%d] (%s)", i, m.Name)
		if err := need(CapHeaderRoutes, what); err != nil {
			return err
		}
		if err := fleet(what, m.FleetID); err != nil {
			return err
		}
		if len(m.Match) == 0 {
			return Errorf(InvalidArgument, "route %s: %s has no match rules", key, what)
		}
		for j, r := range m.Match {
			name := r.Header + r.Cookie
			if (r.Header == "") == (r.Cookie == "") || !ValidToken(name) {
				return Errorf(InvalidArgument, "route %s: %s.match[%d]: want exactly one of header and cookie, a name of letters, digits and -_.", key, what, j)
			}
			if r.Exact == "" {
				return Errorf(InvalidArgument, "route %s: %s.match[%d]: exact is empty", key, what, j)
			}
		}
	}
	if s := route.Stickiness; s != nil {
		if err := need(CapStickiness, "stickiness"); err != nil {
			return err
		}
		if !ValidToken(s.Cookie) || s.TTL <= 0 {
			return Errorf(InvalidArgument, "route %s: stickiness: want a cookie name of letters, digits and -_. and a ttl above 0, got %q and %s", key, s.Cookie, s.TTL)
		}
	}
	if m := route.Mirror; m != nil {
		if err := need(CapMirror, "mirror"); err != nil {
			return err
		}
		if err := fleet("mirror", m.FleetID); err != nil {
			return err
		}
		if m.Percent < 1 || m.Percent > 100 {
			return Errorf(InvalidArgument, "route %s: mirror percent is %d, want 1..100", key, m.Percent)
		}
	}
	return nil
}

// ValidToken reports whether s is a header or cookie name we accept: letters,
// digits, '-', '_' and '.', as Kubernetes label names (a subset of RFC 7230's
// tokens and RFC 6265's cookie names).
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// rulesNaming says which route rules send traffic to fleetID, for the
// terminate guard's message.
func rulesNaming(r contract.Route, fleetID string) string {
	var out []string
	for _, m := range r.Matches {
		if m.FleetID == fleetID {
			out = append(out, "header route "+m.Name)
		}
	}
	if r.Mirror != nil && r.Mirror.FleetID == fleetID {
		out = append(out, fmt.Sprintf("mirror %d%%", r.Mirror.Percent))
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, ", ")
}
