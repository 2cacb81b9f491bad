// Package watch draws a running workflow's progress for a person following it:
// on a terminal a block of lines redrawn in place (plain ANSI cursor moves, no TUI
// library); anywhere else (a pipe, a CI log) one line each time something changed.
//
// A Frame is one look at the progress; RolloutFrame and BakeFrame make one from the
// answer of the workflows' progress query. A Display shows frames one after the
// other.
package watch

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Frame is one look at a workflow's progress.
type Frame struct {
	Title   string    // what is watched, e.g. "rollout/dev/hello"
	Started time.Time // when it started, for the elapsed time on a terminal; zero hides it
	Ended   bool      // the workflow has ended: the elapsed time stops at the last event
	Rows    []Row     // in display order
}

// Row is one labelled line of a frame. A row with an empty Value shows "-" on a
// terminal (so the block keeps its shape) and is left out of a plain line.
type Row struct {
	Label string
	Value string
}

// Value returns the value of the row labelled label, "" when there is none.
func (f Frame) Value(label string) string {
	for _, r := range f.Rows {
		if r.Label == label {
			return r.Value
		}
	}
	return ""
}

// ANSI control sequences of the terminal mode.
const (
	cursorUp    = "\x1b[%dA" // move the cursor up n lines
	clearToEnd  = "\x1b[J"   // clear from the cursor to the end of the screen
	clearLine   = "\x1b[2K"  // clear the whole current line
	escapeStart = "\x1b["
)

// Options configure a Display.
type Options struct {
	// Terminal redraws the frame in place; otherwise each changed frame is one line.
	Terminal bool
	// Width is the terminal's width in columns; longer lines are cut so that they
	// do not wrap (a wrapped line would break the redraw). 0: no limit.
	Width int
	// Now is the clock (default time.Now); tests fix it.
	Now func() time.Time
}

// Display shows a sequence of frames on one writer. It is not safe for concurrent use.
type Display struct {
	w     io.Writer
	opts  Options
	drawn int    // lines drawn by the last terminal frame
	last  string // the last plain line, without its time
}

// New returns a display writing to w.
func New(w io.Writer, o Options) *Display {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Display{w: w, opts: o}
}

// Show draws f: on a terminal it replaces the previous frame; otherwise it prints
// one line when f differs from the last frame printed, and nothing when it does not.
func (d *Display) Show(f Frame) error {
	if d.opts.Terminal {
		return d.redraw(f)
	}
	line := PlainLine(f)
	if line == d.last {
		return nil
	}
	d.last = line
	_, err := fmt.Fprintf(d.w, "%s  %s\n", d.opts.Now().Local().Format("15:04:05"), line)
	return err
}

func (d *Display) redraw(f Frame) error {
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, cursorUp, d.drawn)
		b.WriteString(clearToEnd)
	}
	lines := d.terminalLines(f)
	for _, l := range lines {
		b.WriteString(clearLine)
		b.WriteString(cut(l, d.opts.Width))
		b.WriteByte('\n')
	}
	d.drawn = len(lines)
	_, err := io.WriteString(d.w, b.String())
	return err
}

func (d *Display) terminalLines(f Frame) []string {
	head := f.Title
	if !f.Started.IsZero() && !f.Ended {
		head += " · " + elapsed(d.opts.Now().Sub(f.Started))
	}
	lines := []string{head}
	width := 0
	for _, r := range f.Rows {
		width = max(width, len(r.Label))
	}
	for _, r := range f.Rows {
		v := r.Value
		if v == "" {
			v = "-"
		}
		lines = append(lines, fmt.Sprintf("  %-*s  %s", width+1, r.Label+":", v))
	}
	return lines
}

// PlainLine is the one-line form of f: its non-empty rows, "label value", joined
// by " · ", without the title or anything that changes with the clock alone. The
// phase row, when first, shows as its bare value.
func PlainLine(f Frame) string {
	var parts []string
	for i, r := range f.Rows {
		switch {
		case r.Value == "":
		case i == 0 && r.Label == LabelPhase:
			parts = append(parts, r.Value)
		default:
			parts = append(parts, strings.ToLower(r.Label)+" "+r.Value)
		}
	}
	return strings.Join(parts, " · ")
}

// HasEscapes reports whether s holds an ANSI control sequence.
func HasEscapes(s string) bool { return strings.Contains(s, escapeStart) }

// cut shortens s to fewer than width columns (counting runes), marking the cut.
func cut(s string, width int) string {
	if width <= 1 || utf8.RuneCountInString(s) < width {
		return s
	}
	r := []rune(s)
	return string(r[:width-2]) + "…"
}

// elapsed formats d as 45s, 3m07s or 1h02m.
func elapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
