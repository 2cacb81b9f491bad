package spec

import (
	"fmt"
	"sort"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// Need is a capability of the provider that a spec needs, and the field that
// needs it.
type Need struct {
	Capability provider.Capability
	Field      string // strategy.type, strategy.steps[2].setMirrorRoute, analyses.<name>.provider
	What       string // "canary", "setMirrorRoute", "a router analysis"
}

// Needs lists what r needs of its provider beyond the Driver interface, in
// field order: a canary moves weight step by step (weights), a rolling rollout
// moves weight wave by wave and grows and shrinks fleets (weights, resize), a
// router analysis reads the router's per-fleet counters (fleetMetrics); a
// canary's setHeaderRoute, setMirrorRoute and stickiness need headerRoutes,
// mirror and stickiness.
func (r *Rollout) Needs() []Need {
	var out []Need
	switch r.Strategy.Type {
	case contract.Canary:
		out = append(out, Need{provider.CapWeights, "strategy.type", "canary"})
		for i, s := range r.Strategy.Steps {
			field := fmt.Sprintf("strategy.steps[%d]", i)
			switch {
			case s.SetHeaderRoute != nil:
				out = append(out, Need{provider.CapHeaderRoutes, field + ".setHeaderRoute", "setHeaderRoute"})
			case s.SetMirrorRoute != nil:
				out = append(out, Need{provider.CapMirror, field + ".setMirrorRoute", "setMirrorRoute"})
			}
		}
		if r.Strategy.Stickiness != nil {
			out = append(out, Need{provider.CapStickiness, "strategy.stickiness", "stickiness"})
		}
	case contract.Rolling:
		out = append(out, Need{provider.CapWeights, "strategy.type", "rolling"}, Need{provider.CapResize, "strategy.type", "rolling"})
	}
	names := make([]string, 0, len(r.Analyses))
	for name, a := range r.Analyses {
		if a.Provider == analysis.ProviderRouter {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, Need{provider.CapFleetMetrics, "analyses." + name + ".provider", "a router analysis"})
	}
	return out
}

// CheckProvider refuses r when the worker's provider (its name and what it
// can do) cannot run it: a spec for another provider, or a strategy or
// analysis that needs a capability the provider lacks. Every problem comes at
// once, by field (and line, for a spec parsed from YAML that Normalize has not
// yet forgotten the lines of; see LineOf).
func (r *Rollout) CheckProvider(name string, caps provider.Capabilities) error {
	var es contract.FieldErrors
	want := r.Provider
	if want == "" {
		want = DefaultProvider
	}
	if want != name {
		es = append(es, contract.FieldError{Field: "provider", Line: r.src.line("provider"),
			Msg: fmt.Sprintf("%q, but the worker runs provider %s; start a worker with IMAGO_PROVIDER_URL=%s://…, or set provider: %s", want, name, want, name)})
	}
	for _, n := range r.Needs() {
		if caps.Has(n.Capability) {
			continue
		}
		msg := fmt.Sprintf("%s needs a provider with %s (%s), which the worker's provider %s does not have (it has: %s)",
			n.What, n.Capability.Describe(), n.Capability, name, caps)
		switch n.Capability {
		case provider.CapWeights, provider.CapResize:
			msg += "; use strategy blueGreen, or a worker whose provider has it"
		case provider.CapFleetMetrics:
			msg += "; measure with a prometheus or http analysis instead"
		case provider.CapMirror:
			msg += "; leave the step out, or send chosen requests to the canary with setHeaderRoute"
		default:
			msg += "; leave it out, or use a worker whose provider has it"
		}
		es = append(es, contract.FieldError{Field: n.Field, Line: r.src.line(n.Field), Msg: msg})
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// LineOf returns the line of field (or of its nearest enclosing field) in
// the YAML file r was parsed from; 0 when r did not come from YAML or
// Normalize has since forgotten the lines. Keep a copy of a parsed spec to
// find lines after normalizing it.
func (r *Rollout) LineOf(field string) int { return r.src.line(field) }
