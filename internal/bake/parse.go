// Package bake runs `packer build -machine-readable` for HCL2 templates and
// turns its output into a [Result].
//
// The parsing half ([ParseLine], [Artifacts], [ParseManifest],
// [ParseArtifactID], [ResultFrom]) is pure and works for any builder
// (amazon-ebs, ...). The running half ([RunPacker]) validates the template,
// runs the build in its own process group, streams progress and
// cross-checks the manifest post-processor's output against the artifacts
// packer reported.
package bake

import (
	"strconv"
	"strings"
	"time"
)

// Event is one line of `packer -machine-readable` output:
//
//	timestamp,target,type,data...
//
// Target is empty for global lines (e.g. "ui") and names the build
// (e.g. "file.x" or "mybuild.amazon-ebs.ubuntu") otherwise.
type Event struct {
	Time   time.Time
	Target string
	Type   string
	Data   []string
}

// Common machine-readable types and ui sub-types.
const (
	TypeUI            = "ui"
	TypeArtifact      = "artifact"
	TypeArtifactCount = "artifact-count"
	TypeError         = "error"
	TypeErrorCount    = "error-count"

	UISay     = "say"
	UIMessage = "message"
	UIError   = "error"
)

// UI returns the ui sub-type ("say", "message", "error") and its text when
// e is a `ui` line.
func (e Event) UI() (kind, text string, ok bool) {
	if e.Type != TypeUI || len(e.Data) == 0 {
		return "", "", false
	}
	return e.Data[0], strings.Join(e.Data[1:], ","), true
}

// maxTimestampDigits keeps the timestamp within int64.
const maxTimestampDigits = 18

// unescaper undoes packer's escaping of machine-readable data fields
// (packer/ui.go MachineReadableUi.Machine): "," -> "%!(PACKER_COMMA)",
// "\r" -> `\r`, "\n" -> `\n`. Packer does not escape backslashes, so the
// encoding is lossy for data that literally contains `\n`.
var unescaper = strings.NewReplacer(
	"%!(PACKER_COMMA)", ",",
	`\n`, "\n",
	`\r`, "\r",
)

// ParseLine parses one machine-readable line (with or without its trailing
// newline). Data fields are unescaped. Lines that are not machine-readable
// (plain text from a crashing plugin, panics, blank lines) return false.
func ParseLine(line string) (Event, bool) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if strings.ContainsAny(line, "\r\n") {
		return Event{}, false
	}
	parts := strings.SplitN(line, ",", 4)
	if len(parts) < 3 {
		return Event{}, false
	}
	ts := parts[0]
	if ts == "" || len(ts) > maxTimestampDigits || !allDigits(ts) {
		return Event{}, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Event{}, false
	}
	if !validType(parts[2]) {
		return Event{}, false
	}
	ev := Event{Time: time.Unix(sec, 0).UTC(), Target: parts[1], Type: parts[2]}
	if len(parts) == 4 {
		fields := strings.Split(parts[3], ",")
		ev.Data = make([]string, len(fields))
		for i, f := range fields {
			ev.Data[i] = unescaper.Replace(f)
		}
	}
	return ev, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validType accepts the identifiers packer uses as types ("ui",
// "artifact-count", "version-prerelease", ...).
func validType(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// ArtifactLine is one artifact as reported by `<target>,artifact,N,...`
// lines. Build is the machine-readable target (e.g. "file.x").
type ArtifactLine struct {
	Build     string
	Index     int
	ID        string
	BuilderID string
	String    string
	Files     []string
	// Nil is set when packer reported the artifact as nil.
	Nil bool
}

// Artifacts collects the `artifact,N,key,value` lines of events into one
// ArtifactLine per (target, N), in order of first appearance. Post-processors
// that keep their input (like manifest) make packer list the same artifact
// more than once, under consecutive indexes.
func Artifacts(events []Event) []ArtifactLine {
	type key struct {
		build string
		index int
	}
	var out []ArtifactLine
	pos := map[key]int{}
	for _, e := range events {
		if e.Type != TypeArtifact || len(e.Data) < 2 {
			continue
		}
		idx, err := strconv.Atoi(e.Data[0])
		if err != nil || idx < 0 {
			continue
		}
		k := key{e.Target, idx}
		i, ok := pos[k]
		if !ok {
			i = len(out)
			pos[k] = i
			out = append(out, ArtifactLine{Build: e.Target, Index: idx})
		}
		a := &out[i]
		rest := strings.Join(e.Data[2:], ",")
		switch e.Data[1] {
		case "id":
			a.ID = rest
		case "builder-id":
			a.BuilderID = rest
		case "string":
			a.String = rest
		case "file":
			// file,<n>,<name>
			if len(e.Data) >= 4 {
				a.Files = append(a.Files, strings.Join(e.Data[3:], ","))
			}
		case "nil":
			a.Nil = true
		}
	}
	return out
}
