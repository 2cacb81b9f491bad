package watch

import (
	"fmt"
	"strings"

	"github.com/imago/imago/internal/contract"
)

// Row labels.
const (
	LabelPhase     = "Phase"
	LabelStep      = "Step"
	LabelImage     = "Image"
	LabelStrategy  = "Strategy"
	LabelFleets    = "Fleets"
	LabelTraffic   = "Traffic"
	LabelApprovals = "Approvals"
	LabelLast      = "Last event"
	LabelHeld      = "Held" // waiting for a deployment window or a freeze
	LabelError     = "Error"
	LabelInputs    = "Inputs"
	LabelOutput    = "Output"
)

// RolloutFrame is one look at a rollout (workflow id) from its progress: phase,
// canary step or wave, fleets, route weights, approvals pending, the last event.
func RolloutFrame(id string, p contract.RolloutProgress) Frame {
	f := Frame{Title: id, Started: p.StartedAt, Ended: RolloutEnded(p.Phase)}
	f.Rows = []Row{
		{LabelPhase, p.Phase.String()},
		{LabelStep, p.Step},
		{LabelImage, p.ImageID},
		{LabelStrategy, p.Strategy},
		{LabelFleets, fleets(p)},
		{LabelTraffic, traffic(p.Weights)},
		{LabelApprovals, approvals(p)},
		{LabelLast, lastEvent(p.Events)},
	}
	if h := p.Hold; h != nil {
		f.Rows = append(f.Rows, Row{LabelHeld, held(*h)})
	}
	if p.Error != "" {
		f.Rows = append(f.Rows, Row{LabelError, p.Error})
	}
	return f
}

// held says why a rollout waits on a window or a freeze, and until when.
func held(h contract.Hold) string {
	if h.Until == nil {
		return h.Why + "; until the freeze ends"
	}
	return h.Why + "; until " + h.Until.Local().Format("Mon 2006-01-02 15:04 MST")
}

// RolloutEnded reports whether a rollout in phase has ended.
func RolloutEnded(phase contract.Phase) bool {
	switch phase {
	case contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseAborted, contract.PhaseRolledBack, contract.PhaseCanceled:
		return true
	}
	return false
}

// BakeFrame is one look at a bake (workflow id) from its progress.
func BakeFrame(id string, p contract.BakeProgress) Frame {
	f := Frame{Title: id, Started: p.StartedAt, Ended: p.Phase == contract.PhaseSucceeded || p.Phase == contract.PhaseFailed || p.Phase == contract.PhaseCanceled}
	img := p.ImageID
	if img != "" && p.Cached {
		img += " (cached: built before from the same inputs)"
	}
	f.Rows = []Row{
		{LabelPhase, p.Phase.String()},
		{LabelInputs, shortDigest(p.InputDigest)},
		{LabelImage, img},
		{LabelOutput, p.LastLine},
	}
	if p.Error != "" {
		f.Rows = append(f.Rows, Row{LabelError, p.Error})
	}
	return f
}

func fleets(p contract.RolloutProgress) string {
	var parts []string
	if p.NewFleet != "" {
		n := fmt.Sprintf("%d instances", p.Instances)
		if p.Instances == 1 {
			n = "1 instance"
		}
		parts = append(parts, fmt.Sprintf("new %s (%s)", p.NewFleet, n))
	}
	if p.BaselineFleet != "" {
		parts = append(parts, "baseline "+p.BaselineFleet)
	}
	if len(p.OldFleets) > 0 {
		parts = append(parts, "old "+strings.Join(p.OldFleets, ", "))
	}
	return strings.Join(parts, "; ")
}

func traffic(ws []contract.FleetWeight) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s %d%%", w.FleetID, w.Weight))
	}
	return strings.Join(parts, ", ")
}

// approvals says which gate waits for a person, or else who approved last. A gate
// is open in the awaiting-approval and paused phases while the last event is the
// rollout's "waiting for GATE (imago rollout approve ...)" message (an approval,
// promote or abort adds an event after it).
func approvals(p contract.RolloutProgress) string {
	if gate, how := pendingGate(p); gate != "" {
		return "pending: " + gate + how
	}
	if n := len(p.Approvals); n > 0 {
		a := p.Approvals[n-1]
		return fmt.Sprintf("%s approved by %s", a.Gate, a.By)
	}
	return ""
}

func pendingGate(p contract.RolloutProgress) (gate, how string) {
	if p.Gate != "" {
		return p.Gate, fmt.Sprintf(" (imago rollout approve %s -e %s)", p.Service, p.Environment)
	}
	// Rollouts recorded before Progress.Gate: the gate from the event's wording.
	if (p.Phase != contract.PhaseAwaitingApproval && p.Phase != contract.PhasePaused) || len(p.Events) == 0 {
		return "", ""
	}
	e := p.Events[len(p.Events)-1]
	msg, ok := strings.CutPrefix(e.Message, "waiting for ")
	if e.Phase != p.Phase || !ok {
		return "", ""
	}
	gate, rest, _ := strings.Cut(msg, " (")
	if cmd, _, ok := strings.Cut(rest, ")"); ok && strings.HasPrefix(cmd, "imago ") {
		how = " (" + cmd + ")"
	}
	return gate, how
}

func lastEvent(es []contract.ProgressEvent) string {
	if len(es) == 0 {
		return ""
	}
	e := es[len(es)-1]
	return e.Time.Local().Format("15:04:05") + " " + e.Message
}

func shortDigest(d string) string {
	const n = len("sha256:") + 12
	if len(d) > n {
		return d[:n]
	}
	return d
}
