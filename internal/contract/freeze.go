package contract

import "time"

// Freeze is a stop-the-line: while it is in force, rollouts of the services
// and environments it covers wait (phase frozen) before they provision and
// before their next traffic change. Rollbacks and aborts are never frozen.
type Freeze struct {
	// Service and Environment it covers; empty: every one.
	Service     string    `json:"service,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Reason      string    `json:"reason"`
	By          string    `json:"by"`
	Since       time.Time `json:"since"`
	// Until is when it ends by itself; nil: when someone ends it.
	Until *time.Time `json:"until,omitempty"`
}

// Scope is what the freeze covers, as people write it: "prod/web", "prod/*",
// "*/web", "everything".
func (f Freeze) Scope() string { return FreezeScope(f.Service, f.Environment) }

// FreezeScope names the scope of a freeze on service and environment (empty: all).
func FreezeScope(service, environment string) string {
	if service == "" && environment == "" {
		return "everything"
	}
	s, e := service, environment
	if s == "" {
		s = "*"
	}
	if e == "" {
		e = "*"
	}
	return e + "/" + s
}

// Covers reports whether the freeze holds rollouts of service to environment.
func (f Freeze) Covers(service, environment string) bool {
	return (f.Service == "" || f.Service == service) && (f.Environment == "" || f.Environment == environment)
}

// InForce reports whether the freeze holds at t (its Until has not passed).
func (f Freeze) InForce(t time.Time) bool { return f.Until == nil || t.Before(*f.Until) }

// CheckFreezeInput asks which freezes hold a rollout of Service to Environment now.
type CheckFreezeInput struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
}

// CheckFreezeResult are the freezes in force that cover it; none: it may go on.
type CheckFreezeResult struct {
	Freezes []Freeze `json:"freezes,omitempty"`
}

// FreezeRecheck is how often a frozen rollout checks its freezes again
// without being told (SignalFreezeChanged), so a lost signal or an Until
// that passes never strands it for longer.
const FreezeRecheck = 2 * time.Minute

// Hold is why a rollout waits on a gate that no step of its own opens: a
// deployment window (PhaseWaitingWindow) or a freeze (PhaseFrozen).
type Hold struct {
	Phase Phase  `json:"phase"`
	Why   string `json:"why"`
	// Until is when it goes on by itself: the next window opens, the freeze's
	// until; nil: when the freeze is ended.
	Until *time.Time `json:"until,omitempty"`
}

// EndCommand is the command that ends the freeze.
func (f Freeze) EndCommand() string {
	s := "imago freeze end"
	if f.Service != "" {
		s += " --service " + f.Service
	}
	if f.Environment != "" {
		s += " -e " + f.Environment
	}
	return s
}
