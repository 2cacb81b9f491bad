package watch

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// testdata/canary-rollout.json is the progress query's answers during a real
// canary rollout (2 sim instances; approval before cutover; steps setWeight 25,
// pause 1s, setWeight 50, pause until approved), recorded each time it changed,
// plus the final answer repeated.
func recorded(t *testing.T) []contract.RolloutProgress {
	t.Helper()
	time.Local = time.UTC // event times show in local time
	data, err := os.ReadFile("testdata/canary-rollout.json")
	require.NoError(t, err)
	var seq []contract.RolloutProgress
	require.NoError(t, json.Unmarshal(data, &seq))
	require.Len(t, seq, 8)
	return seq
}

const id = "rollout/dev/hello"

// clock returns a Now that starts at t0 and advances a second per call.
func clock(t0 time.Time) func() time.Time {
	n := 0
	return func() time.Time { n++; return t0.Add(time.Duration(n) * time.Second) }
}

func TestPlainModePrintsOneLinePerChangeWithoutEscapes(t *testing.T) {
	seq := recorded(t)
	var out bytes.Buffer
	d := New(&out, Options{Now: clock(seq[0].StartedAt)})
	for _, p := range seq {
		require.NoError(t, d.Show(RolloutFrame(id, p)))
		require.NoError(t, d.Show(RolloutFrame(id, p))) // a poll that saw nothing new
	}
	assert.False(t, HasEscapes(out.String()), "plain output must hold no escape codes:\n%q", out.String())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 7, "8 answers, the last two equal: 7 changes\n%s", out.String())
	for i, l := range lines {
		assert.Regexp(t, `^15:33:\d\d  \S`, l, "line %d starts with the time", i)
		if i > 0 {
			assert.NotEqual(t, lines[i-1][10:], l[10:], "line %d repeats the one before", i)
		}
	}
	assert.Equal(t, "resolving · image img-59711d842b48 · strategy canary · last event 15:33:13 resolving image img-59711d842b48", lines[0][10:])
	assert.Equal(t, "provisioning · image img-59711d842b48 · strategy canary · fleets old fl-3a437c82fd · traffic fl-3a437c82fd 100% · "+
		"last event 15:33:13 provisioning 2 instances of img-59711d842b48", lines[1][10:])
	assert.Contains(t, lines[2], "validating · image img-59711d842b48 · strategy canary · fleets new fl-d7343839e5 (2 instances); old fl-3a437c82fd")
	assert.Contains(t, lines[3], "awaiting-approval · ")
	assert.Contains(t, lines[3], " · approvals pending: approval before cutover (imago rollout approve hello -e dev) · ")
	assert.Contains(t, lines[4], "paused · step 2/4 pause 1s · ")
	assert.Contains(t, lines[4], " · traffic fl-d7343839e5 25%, fl-3a437c82fd 75% · approvals approval before cutover approved by bob@desk · ")
	assert.Contains(t, lines[5], "paused · step 4/4 pause (until approved) · ")
	assert.Contains(t, lines[5], " · traffic fl-d7343839e5 50%, fl-3a437c82fd 50% · approvals pending: pause 4/4 (imago rollout approve hello -e dev) · ")
	assert.Contains(t, lines[6], "succeeded · step done · ")
	assert.Contains(t, lines[6], " · traffic fl-d7343839e5 100% · ")
	assert.True(t, strings.HasSuffix(lines[6], "last event 15:33:14 img-59711d842b48 serves dev/hello"), lines[6])
}

func TestTerminalModeRedrawsInPlace(t *testing.T) {
	seq := recorded(t)
	var out bytes.Buffer
	d := New(&out, Options{Terminal: true, Width: 100, Now: clock(seq[0].StartedAt)})
	for _, p := range seq {
		require.NoError(t, d.Show(RolloutFrame(id, p)))
	}
	raw := out.String()
	assert.False(t, strings.HasPrefix(raw, "\x1b[9A"), "the first frame draws below what is on screen")
	assert.Equal(t, len(seq)-1, strings.Count(raw, "\x1b[9A\x1b[J"),
		"every later frame moves up over the 9 lines of the one before and clears them:\n%q", raw)

	// What a person sees after the last frame: only that frame, in place.
	screen := emulate(t, raw)
	assert.Equal(t, []string{
		"rollout/dev/hello",
		"  Phase:       succeeded",
		"  Step:        done",
		"  Image:       img-59711d842b48",
		"  Strategy:    canary",
		"  Fleets:      new fl-d7343839e5 (2 instances); old fl-3a437c82fd",
		"  Traffic:     fl-d7343839e5 100%",
		"  Approvals:   pause 4/4 approved by bob@desk",
		"  Last event:  15:33:14 img-59711d842b48 serves dev/hello",
	}, screen)

	// Mid-rollout the title shows the elapsed time and empty rows a dash.
	out.Reset()
	d = New(&out, Options{Terminal: true, Now: func() time.Time { return seq[0].StartedAt.Add(83 * time.Second) }})
	require.NoError(t, d.Show(RolloutFrame(id, seq[3])))
	assert.Equal(t, []string{
		"rollout/dev/hello · 1m23s",
		"  Phase:       awaiting-approval",
		"  Step:        -",
		"  Image:       img-59711d842b48",
		"  Strategy:    canary",
		"  Fleets:      new fl-d7343839e5 (2 instances); old fl-3a437c82fd",
		"  Traffic:     fl-3a437c82fd 100%",
		"  Approvals:   pending: approval before cutover (imago rollout approve hello -e dev)",
		"  Last event:  15:33:13 waiting for approval before cutover (imago rollout approve hello -e dev), at most 5m0s",
	}, emulate(t, out.String()))
}

func TestTerminalModeRedrawsAShorterFrameWithoutLeftovers(t *testing.T) {
	seq := recorded(t)
	failed := seq[5]
	failed.Phase, failed.Error = contract.PhaseFailed, "rollout rollout/dev/hello failed while cutting over: boom"
	var out bytes.Buffer
	d := New(&out, Options{Terminal: true, Now: clock(seq[0].StartedAt)})
	require.NoError(t, d.Show(RolloutFrame(id, failed))) // 10 lines
	require.NoError(t, d.Show(BakeFrame("bake/hello/latest", contract.BakeProgress{Phase: contract.PhaseBuilding})))
	assert.Contains(t, out.String(), "\x1b[10A\x1b[J")
	assert.Equal(t, []string{
		"bake/hello/latest",
		"  Phase:   building",
		"  Inputs:  -",
		"  Image:   -",
		"  Output:  -",
	}, emulate(t, out.String()))
}

func TestTerminalModeCutsLinesToTheWidth(t *testing.T) {
	seq := recorded(t)
	var out bytes.Buffer
	d := New(&out, Options{Terminal: true, Width: 40, Now: clock(seq[0].StartedAt)})
	for _, p := range seq {
		require.NoError(t, d.Show(RolloutFrame(id, p)))
	}
	screen := emulate(t, out.String())
	require.Len(t, screen, 9, "a line longer than the terminal would wrap and break the redraw")
	for _, l := range screen {
		assert.Less(t, utf8.RuneCountInString(l), 40, "%q", l)
	}
	assert.Equal(t, "  Fleets:      new fl-d7343839e5 (2 in…", screen[5])
}

func TestBakeFrames(t *testing.T) {
	time.Local = time.UTC
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seq := []contract.BakeProgress{
		{Phase: contract.PhaseDigest, Service: "hello", StartedAt: t0},
		{Phase: contract.PhaseBuilding, Service: "hello", StartedAt: t0, InputDigest: "sha256:0123456789abcdef0123"},
		{Phase: contract.PhaseBuilding, Service: "hello", StartedAt: t0, InputDigest: "sha256:0123456789abcdef0123"},
		{Phase: contract.PhaseTesting, Service: "hello", StartedAt: t0, InputDigest: "sha256:0123456789abcdef0123"},
		{Phase: contract.PhaseFailed, Service: "hello", StartedAt: t0, InputDigest: "sha256:0123456789abcdef0123",
			Error: "bake of hello failed while testing the image: /healthz answered 500"},
	}
	var out bytes.Buffer
	d := New(&out, Options{Now: clock(t0)})
	for _, p := range seq {
		require.NoError(t, d.Show(BakeFrame("bake/hello/latest", p)))
	}
	assert.Equal(t, `12:00:01  digest
12:00:02  building · inputs sha256:0123456789ab
12:00:03  testing · inputs sha256:0123456789ab
12:00:04  failed · inputs sha256:0123456789ab · error bake of hello failed while testing the image: /healthz answered 500
`, out.String())

	cached := BakeFrame("bake/hello/latest", contract.BakeProgress{Phase: contract.PhaseSucceeded, ImageID: "img-3f2a1c9d0b7e", Cached: true})
	assert.Equal(t, "img-3f2a1c9d0b7e (cached: built before from the same inputs)", cached.Value(LabelImage))
	assert.True(t, cached.Ended)

}

func TestApprovalsPendingOnlyWhileTheGateIsOpen(t *testing.T) {
	seq := recorded(t)
	var got []string
	for _, p := range seq {
		got = append(got, RolloutFrame(id, p).Value(LabelApprovals))
	}
	assert.Equal(t, []string{
		"", "", "",
		"pending: approval before cutover (imago rollout approve hello -e dev)",
		"approval before cutover approved by bob@desk",
		"pending: pause 4/4 (imago rollout approve hello -e dev)",
		"pause 4/4 approved by bob@desk",
		"pause 4/4 approved by bob@desk",
	}, got)

	// Approved, the rollout has not moved on yet: the gate is closed.
	p := seq[3]
	p.Events = append(p.Events, contract.ProgressEvent{Phase: p.Phase, Message: "approval before cutover approved by bob@desk"})
	p.Approvals = append(p.Approvals, contract.Approval{Gate: "approval before cutover", Decision: contract.Decision{By: "bob@desk"}})
	assert.Equal(t, "approval before cutover approved by bob@desk", RolloutFrame(id, p).Value(LabelApprovals))
}

// emulate plays raw on a tiny terminal that knows what Display writes (newlines,
// cursor up, clear to the end of the screen, clear line) and returns the screen.
func emulate(t *testing.T, raw string) []string {
	t.Helper()
	var screen []string
	row := 0
	ctl := regexp.MustCompile(`^\x1b\[(\d*)([A-Za-z])`)
	line := strings.Builder{}
	flush := func() {
		for len(screen) <= row {
			screen = append(screen, "")
		}
		screen[row] += line.String()
		line.Reset()
	}
	for len(raw) > 0 {
		if m := ctl.FindStringSubmatch(raw); m != nil {
			flush()
			n, _ := strconv.Atoi(m[1])
			switch m[2] {
			case "A":
				row -= n
				require.GreaterOrEqual(t, row, 0, "cursor moved above the first line")
			case "J":
				screen = screen[:min(row, len(screen))]
			case "K":
				require.Equal(t, "2", m[1])
				if row < len(screen) {
					screen[row] = ""
				}
			default:
				t.Fatalf("unexpected control sequence %q", m[0])
			}
			raw = raw[len(m[0]):]
			continue
		}
		if raw[0] == '\n' {
			flush()
			row++
			raw = raw[1:]
			continue
		}
		require.NotEqual(t, byte('\x1b'), raw[0], "unknown escape in %q", raw)
		line.WriteByte(raw[0])
		raw = raw[1:]
	}
	flush()
	// The cursor sits on the empty line below the frame; anything below it is a leftover.
	if len(screen) == row+1 && screen[row] == "" {
		screen = screen[:row]
	}
	return screen
}
