package spec

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

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
	var es contract.FieldErrors
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
