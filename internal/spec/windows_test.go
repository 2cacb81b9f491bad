package spec

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// TestWindowsAt is the next-window arithmetic: open or shut at a time, and
// when that changes, across days, weekends, zones and daylight-saving changes.
func TestWindowsAt(t *testing.T) {
	berlin, ny, utc := zone(t, "Europe/Berlin"), zone(t, "America/New_York"), time.UTC
	office := Windows{{Days: "Mon-Fri", Start: "09:00", End: "16:00", Timezone: "Europe/Berlin"}}
	tests := []struct {
		name   string
		ws     Windows
		at     time.Time
		open   bool
		change time.Time
	}{
		{"no windows: always open", nil, time.Date(2026, 12, 5, 3, 0, 0, 0, utc), true, time.Time{}},
		{"inside: open until the end", office, time.Date(2026, 12, 3, 10, 0, 0, 0, berlin), true, time.Date(2026, 12, 3, 16, 0, 0, 0, berlin)},
		{"at the start: open", office, time.Date(2026, 12, 3, 9, 0, 0, 0, berlin), true, time.Date(2026, 12, 3, 16, 0, 0, 0, berlin)},
		{"at the end: shut until tomorrow", office, time.Date(2026, 12, 3, 16, 0, 0, 0, berlin), false, time.Date(2026, 12, 4, 9, 0, 0, 0, berlin)},
		{"before the start: today", office, time.Date(2026, 12, 3, 7, 59, 0, 0, berlin), false, time.Date(2026, 12, 3, 9, 0, 0, 0, berlin)},
		{"friday evening: monday morning", office, time.Date(2026, 12, 4, 17, 0, 0, 0, berlin), false, time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)},
		{"saturday: monday", office, time.Date(2026, 12, 5, 12, 0, 0, 0, berlin), false, time.Date(2026, 12, 7, 9, 0, 0, 0, berlin)},
		{"other zone: 08:30 UTC is 09:30 in Berlin (winter)", office, time.Date(2026, 12, 3, 8, 30, 0, 0, utc), true, time.Date(2026, 12, 3, 15, 0, 0, 0, utc)},
		{"other zone: 07:30 UTC is 09:30 in Berlin (summer)", office, time.Date(2026, 7, 2, 7, 30, 0, 0, utc), true, time.Date(2026, 7, 2, 14, 0, 0, 0, utc)},
		{"new york evening is the next berlin morning", office, time.Date(2026, 12, 3, 22, 0, 0, 0, ny), false, time.Date(2026, 12, 4, 9, 0, 0, 0, berlin)},
		// Spring forward in Berlin: Sunday 29 March 2026, 02:00 CET → 03:00 CEST.
		{"dst spring: friday evening to monday 09:00 CEST", office, time.Date(2026, 3, 27, 18, 0, 0, 0, berlin), false, time.Date(2026, 3, 30, 7, 0, 0, 0, utc)},
		{"dst spring: 09:00 the day after is 07:00 UTC", Windows{{Start: "09:00", End: "10:00", Timezone: "Europe/Berlin"}},
			time.Date(2026, 3, 28, 9, 30, 0, 0, utc), false, time.Date(2026, 3, 29, 7, 0, 0, 0, utc)},
		{"dst spring: a start in the gap opens when the clocks jump", Windows{{Days: "Sun", Start: "02:30", End: "04:00", Timezone: "Europe/Berlin"}},
			time.Date(2026, 3, 29, 0, 30, 0, 0, utc), false, time.Date(2026, 3, 29, 1, 30, 0, 0, utc)},
		// Fall back in Berlin: Sunday 25 October 2026, 03:00 CEST → 02:00 CET.
		{"dst autumn: 09:00 CEST saturday, 09:00 CET monday", office, time.Date(2026, 10, 23, 17, 0, 0, 0, berlin), false, time.Date(2026, 10, 26, 8, 0, 0, 0, utc)},
		{"dst autumn: the night window is an hour longer", Windows{{Start: "01:00", End: "04:00", Timezone: "Europe/Berlin"}},
			time.Date(2026, 10, 25, 1, 30, 0, 0, utc), true, time.Date(2026, 10, 25, 3, 0, 0, 0, utc)},
		// New York springs forward on 8 March 2026.
		{"dst spring in new york", Windows{{Days: "Mon-Fri", Start: "09:00", End: "17:00", Timezone: "America/New_York"}},
			time.Date(2026, 3, 6, 23, 0, 0, 0, utc), false, time.Date(2026, 3, 9, 13, 0, 0, 0, utc)},
		{"across midnight: open after midnight", Windows{{Days: "Sat", Start: "22:00", End: "02:00"}},
			time.Date(2026, 12, 6, 1, 0, 0, 0, utc), true, time.Date(2026, 12, 6, 2, 0, 0, 0, utc)},
		{"across midnight: shut after it closes", Windows{{Days: "Sat", Start: "22:00", End: "02:00"}},
			time.Date(2026, 12, 6, 3, 0, 0, 0, utc), false, time.Date(2026, 12, 12, 22, 0, 0, 0, utc)},
		{"until midnight", Windows{{Days: "Thu", Start: "20:00", End: "24:00"}},
			time.Date(2026, 12, 3, 21, 0, 0, 0, utc), true, time.Date(2026, 12, 4, 0, 0, 0, 0, utc)},
		{"wrapping range Fri-Mon, on a tuesday", Windows{{Days: "Fri-Mon", Start: "10:00", End: "11:00"}},
			time.Date(2026, 12, 1, 12, 0, 0, 0, utc), false, time.Date(2026, 12, 4, 10, 0, 0, 0, utc)},
		{"list of days", Windows{{Days: "Sat,Sun", Start: "06:00", End: "08:00"}},
			time.Date(2026, 12, 3, 12, 0, 0, 0, utc), false, time.Date(2026, 12, 5, 6, 0, 0, 0, utc)},
		{"two windows: the nearer opens", Windows{office[0], {Days: "Sat", Start: "10:00", End: "12:00", Timezone: "America/New_York"}},
			time.Date(2026, 12, 4, 17, 0, 0, 0, berlin), false, time.Date(2026, 12, 5, 15, 0, 0, 0, utc)},
		{"overlapping windows: open until the later end", Windows{{Start: "09:00", End: "12:00"}, {Start: "11:00", End: "13:00"}},
			time.Date(2026, 12, 3, 11, 30, 0, 0, utc), true, time.Date(2026, 12, 3, 13, 0, 0, 0, utc)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, change, _ := tt.ws.At(tt.at)
			assert.Equal(t, tt.open, open)
			assert.True(t, tt.change.Equal(change), "change at %s, want %s", change.UTC(), tt.change.UTC())
		})
	}
}

func TestParseDays(t *testing.T) {
	days := func(ds ...time.Weekday) (set [7]bool) {
		for _, d := range ds {
			set[d] = true
		}
		return set
	}
	for in, want := range map[string][7]bool{
		"Mon-Fri":          days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday),
		"Sat,Sun":          days(time.Saturday, time.Sunday),
		"sat, sunday":      days(time.Saturday, time.Sunday),
		"Fri-Mon":          days(time.Friday, time.Saturday, time.Sunday, time.Monday),
		"Mon,Wed-Thu":      days(time.Monday, time.Wednesday, time.Thursday),
		"":                 days(0, 1, 2, 3, 4, 5, 6),
		"Tuesday-Tuesday":  days(time.Tuesday),
		"MON-FRI, SAT,SUN": days(0, 1, 2, 3, 4, 5, 6),
	} {
		got, err := ParseDays(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"Mo-Fr", "Mon-", "weekdays", "Mon,,Fri"} {
		_, err := ParseDays(bad)
		assert.Error(t, err, bad)
	}
}

// TestWindowValidationNamesFieldAndLine: every problem of a window, with its
// field path and YAML line, among the spec's others.
func TestWindowValidationNamesFieldAndLine(t *testing.T) {
	r, err := ParseRollout([]byte(`service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
windows:
  - days: Mon-Fri
    start: "09:00"
    end: "16:00"
    timezone: Europe/Berlin
  - days: Mo-Fr
    start: "9am"
    end: "25:00"
    timezone: Mars/Olympus
  - start: "10:00"
    end: "10:00"
`))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	var es Errors
	require.ErrorAs(t, err, &es)
	got := map[string]int{}
	for _, e := range es {
		got[e.Field] = e.Line
	}
	assert.Equal(t, map[string]int{
		"windows[1].days": 9, "windows[1].start": 10, "windows[1].end": 11, "windows[1].timezone": 12,
		"windows[2].end": 14,
	}, got)
	assert.Contains(t, err.Error(), `windows[1].timezone: line 12: "Mars/Olympus" is not an IANA time zone`)
	assert.Contains(t, err.Error(), `windows[1].days: line 9: "Mo" is not a day`)
}

func TestWindowsParseAndDescribe(t *testing.T) {
	r, err := ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\n" +
		"windows: [{days: Mon-Fri, start: \"09:00\", end: \"16:00\", timezone: Europe/Berlin}, {days: Sat, start: \"10:00\", end: \"12:00\"}]\n"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, "Mon-Fri 09:00-16:00 Europe/Berlin; Sat 10:00-12:00 UTC", r.Windows.String())
}

// TestREADMEWindowsExampleIsValid: the README's windows example is a spec
// that validates, and says what the README says it does.
func TestREADMEWindowsExampleIsValid(t *testing.T) {
	src, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(src), "\n## Deployment windows and freezes\n")
	require.True(t, ok, "the README has a Deployment windows and freezes section")
	_, block, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok)
	block, _, _ = strings.Cut(block, "```")
	r, err := ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\n" + block))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, "Mon-Fri 09:00-16:00 Europe/Berlin; Sat,Sun 10:00-11:00 UTC", r.Windows.String())
}
