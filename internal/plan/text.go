package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imago/imago/internal/contract"
)

// WriteText prints the plan as `imago plan` shows it.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan of %s/%s: image %s, %s, %d instances, simulated from %s; nothing was started\n",
		p.Environment, p.Service, p.Image, p.Strategy, p.Size, p.Start.Format(time.RFC3339))
	if p.Live != nil {
		fmt.Fprintf(&b, "Live fleet: %s (image %s), %d instances (%s)\n", p.Live.FleetID, p.Live.ImageID, p.Live.Instances, p.Live.Source)
	} else {
		fmt.Fprintf(&b, "Live fleet: none (the inventory has no deployment of %s to %s): a first rollout\n", p.Service, p.Environment)
	}

	b.WriteString("\nAssumptions:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, a := range p.Assumptions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Step, show(a.Duration), a.Source)
	}
	tw.Flush()

	b.WriteString("\nTimeline:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  AT\tTAKES\tPHASE\tEVENT")
	for _, s := range p.Timeline {
		fmt.Fprintf(tw, "  +%s\t%s\t%s\t%s\n", show(s.Offset), show(s.Duration), s.Phase, s.Message)
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nPeak: %d instances at +%s; fewest serving at once: %d\n", p.Peak.Instances, show(p.Peak.At), p.Peak.Serving)
	if bu := p.Budget; bu != nil {
		within := "within it"
		if !bu.Within {
			within = "NOT within it"
		}
		fmt.Fprintf(&b, "Capacity budget: maxSurge %d, maxUnavailable %d (at most %d instances, at least %d serving): %s\n",
			bu.MaxSurge, bu.MaxUnavailable, bu.Most, bu.Fewest, within)
	}
	b.WriteString("Approvals it will ask for (granted at once in the simulation; a person's wait is not counted):")
	if len(p.Approvals) == 0 {
		b.WriteString(" none\n")
	} else {
		b.WriteString("\n")
		for _, a := range p.Approvals {
			fmt.Fprintf(&b, "  +%s  %s (%s)\n", show(a.At), a.Gate, a.Phase)
		}
	}
	b.WriteString("Freezes and deployment windows that hold it:")
	if len(p.Conflicts) == 0 {
		b.WriteString(" none\n")
	} else {
		b.WriteString("\n")
		for _, c := range p.Conflicts {
			fmt.Fprintf(&b, "  +%s  %s for %s: %s\n", show(c.At), c.Kind, show(c.Duration), c.Why)
		}
	}
	fmt.Fprintf(&b, "Expected duration: %s (%s)\n", show(p.Duration), p.Outcome)
	if p.Error != "" {
		fmt.Fprintf(&b, "It would end: %s\n", p.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// show is a duration to the millisecond.
func show(d contract.Duration) string { return d.D().Round(time.Millisecond).String() }
