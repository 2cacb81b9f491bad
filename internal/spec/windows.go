package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // windows name IANA zones: the same zone data on every worker and CLI
)

// Window is a deployment window: the days of the week (in Timezone) and the
// time of day a rollout may provision and move traffic. Outside every window
// of its spec a rollout waits (phase waiting-window) until the next one opens.
type Window struct {
	// Days are day names, ranges and lists: "Mon-Fri", "Sat,Sun", "Fri-Mon".
	// Empty: every day.
	Days string `yaml:"days" json:"days,omitempty"`
	// Start and End are the time of day, "09:00" and "16:00"; End "24:00" is
	// midnight, and an End before Start closes the next day (22:00-02:00),
	// counting as the day it opened.
	Start string `yaml:"start" json:"start"`
	End   string `yaml:"end" json:"end"`
	// Timezone is an IANA zone (Europe/Berlin); default UTC. Start and End are
	// wall-clock times there, across daylight-saving changes.
	Timezone string `yaml:"timezone" json:"timezone,omitempty"`
}

// Windows are a rollout's deployment windows; none: it may run at any time.
type Windows []Window

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// parseDay parses "Mon" or "Monday" in any case.
func parseDay(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 3 {
		return 0, false
	}
	for i, d := range dayNames {
		full := strings.ToLower(time.Weekday(i).String())
		if s == d || s == full {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// ParseDays parses a days field into the set of weekdays it names.
func ParseDays(s string) ([7]bool, error) {
	var set [7]bool
	if strings.TrimSpace(s) == "" {
		for i := range set {
			set[i] = true
		}
		return set, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := parseDay(from)
		if !ok {
			return set, fmt.Errorf("%q is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri and lists such as Sat,Sun", strings.TrimSpace(from))
		}
		b := a
		if isRange {
			if b, ok = parseDay(to); !ok {
				return set, fmt.Errorf("%q is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri and lists such as Sat,Sun", strings.TrimSpace(to))
			}
		}
		for d := a; ; d = (d + 1) % 7 { // a range may wrap: Fri-Mon
			set[d] = true
			if d == b {
				break
			}
		}
	}
	return set, nil
}

// parseClock parses "HH:MM" (00:00 to 24:00) into minutes after midnight.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 24 || mm > 59 || hh < 0 || mm < 0 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day such as \"09:00\" (00:00-24:00)", s)
	}
	return hh*60 + mm, nil
}

// location is the window's zone (UTC when unset).
func (w Window) location() (*time.Location, error) {
	if w.Timezone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(w.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone such as Europe/Berlin or America/New_York", w.Timezone)
	}
	return loc, nil
}

// String is the window as people write it: "Mon-Fri 09:00-16:00 Europe/Berlin".
func (w Window) String() string {
	days := w.Days
	if days == "" {
		days = "every day"
	}
	tz := w.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return fmt.Sprintf("%s %s-%s %s", days, w.Start, w.End, tz)
}

// String lists the windows, "; " between them.
func (ws Windows) String() string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.String()
	}
	return strings.Join(out, "; ")
}

// validate reports the window's problems under field (windows[0]).
func (w Window) validate(field string, add func(field, format string, args ...any)) {
	if _, err := ParseDays(w.Days); err != nil {
		add(field+".days", "%v", err)
	}
	start, serr := parseClock(w.Start)
	if serr != nil {
		add(field+".start", "%v", serr)
	}
	end, eerr := parseClock(w.End)
	if eerr != nil {
		add(field+".end", "%v", eerr)
	}
	if serr == nil && eerr == nil && (start == end || start == 24*60) {
		add(field+".end", "%s to %s is an empty window; an end before the start closes the next day (22:00 to 02:00)", w.Start, w.End)
	}
	if _, err := w.location(); err != nil {
		add(field+".timezone", "%v", err)
	}
}

func (r *Rollout) validateWindows(add func(field, format string, args ...any)) {
	for i, w := range r.Windows {
		w.validate(fmt.Sprintf("windows[%d]", i), add)
	}
}

// Open is an opening of a window: from Start to End.
type Open struct {
	Start, End time.Time
	Window     Window
}

// openings are the openings of w that begin on the days around t (from the
// day before, for one that crosses midnight, to a week after), in order.
func (w Window) openings(t time.Time) []Open {
	days, err := ParseDays(w.Days)
	start, err1 := parseClock(w.Start)
	end, err2 := parseClock(w.End)
	loc, err3 := w.location()
	if err != nil || err1 != nil || err2 != nil || err3 != nil {
		return nil // Validate refused it
	}
	if end <= start {
		end += 24 * 60
	}
	local := t.In(loc)
	var out []Open
	for off := -1; off <= 8; off++ {
		// time.Date normalises the day (the 32nd is the 1st of the next month)
		// and keeps wall-clock times across DST changes: 09:00 is 09:00 in
		// summer and winter. A start in a spring-forward gap (02:30 on the
		// change's night) becomes the time the clocks show after it (03:30).
		day := time.Date(local.Year(), local.Month(), local.Day()+off, 0, 0, 0, 0, loc)
		if !days[day.Weekday()] {
			continue
		}
		y, m, d := day.Date()
		out = append(out, Open{
			Start:  time.Date(y, m, d, start/60, start%60, 0, 0, loc),
			End:    time.Date(y, m, d, end/60, end%60, 0, 0, loc),
			Window: w,
		})
	}
	return out
}

// At says whether t falls in one of the windows, and when that changes: when
// open, the end of the opening t is in (the latest, when windows overlap);
// when shut, the start of the next opening. No windows: always open, with a
// zero time. A pure function of its arguments, so workflows call it.
func (ws Windows) At(t time.Time) (open bool, change time.Time, in Window) {
	if len(ws) == 0 {
		return true, time.Time{}, Window{}
	}
	var next Open
	for _, w := range ws {
		for _, o := range w.openings(t) {
			switch {
			case !o.Start.After(t) && t.Before(o.End):
				if !open || o.End.After(change) {
					open, change, in = true, o.End, o.Window
				}
			case o.Start.After(t) && (next.Start.IsZero() || o.Start.Before(next.Start)):
				next = o
			}
		}
	}
	if open {
		return true, change, in
	}
	return false, next.Start, next.Window
}
