// Package crash is a test hook, not a feature: a Temporal worker interceptor that
// kills its own process with SIGKILL at one chosen activity boundary, so the crash
// suite can kill -9 a worker at an exact point of a rollout or bake and check that
// another worker finishes it with nothing leaked, doubled or dropped.
//
// It is compiled only into binaries built with the build tag imago_crash (the
// crash suite builds its imago-worker with -tags imago_crash); in every other
// build FromEnv returns nil and IMAGO_CRASH_AT does nothing. In a tagged build it
// is armed by the environment variable IMAGO_CRASH_AT (app.NewWorker installs it
// when the variable is set):
//
//	IMAGO_CRASH_AT=before:Provision     kill when the activity task arrived, before the activity runs
//	IMAGO_CRASH_AT=after:SetRoute#2     kill when the 2nd SetRoute of this process returned, before its result is reported
//	IMAGO_CRASH_AT=mid:WaitHealthy      kill while the activity runs: after 1 s and, if it heartbeats, its first heartbeat
//	IMAGO_CRASH_AT=mid:BakeBuild@3s     the same after 3 s
//
// The form is WHEN:ACTIVITY[#N][@DELAY]: WHEN is before, after or mid; ACTIVITY an
// activity type name (ResolveImage, Provision, SetRoute, BakeBuild, ...); #N the
// Nth execution of that activity type in this process (attempts and retries
// count; default 1); @DELAY, for mid only, how long the activity runs first
// (default 1s). A mid activity that returns before its delay is killed right
// there, before its result is reported, and says so on stderr.
//
// Just before the kill the hook writes one line to stderr naming the point and the
// workflow, so a worker log shows where it died.
package crash

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvVar names the crash point; unset (the default) means no hook, and so does
// a build without the imago_crash tag.
const EnvVar = "IMAGO_CRASH_AT"

// When an activity is killed, relative to its execution.
const (
	Before = "before"
	After  = "after"
	Mid    = "mid"
)

// DefaultMidDelay is how long a mid activity runs before the kill.
const DefaultMidDelay = time.Second

// Point is one crash point.
type Point struct {
	When     string        // Before, After or Mid
	Activity string        // activity type name
	N        int           // the Nth execution of Activity in this process, from 1
	Delay    time.Duration // Mid only
}

func (p Point) String() string {
	s := fmt.Sprintf("%s:%s#%d", p.When, p.Activity, p.N)
	if p.When == Mid {
		s += "@" + p.Delay.String()
	}
	return s
}

// Parse reads WHEN:ACTIVITY[#N][@DELAY].
func Parse(s string) (Point, error) {
	bad := func(why string) (Point, error) {
		return Point{}, fmt.Errorf("%s=%q: %s; want WHEN:ACTIVITY[#N][@DELAY] with WHEN before, after or mid, e.g. after:SetRoute#2", EnvVar, s, why)
	}
	when, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return bad("no ':'")
	}
	p := Point{When: when, N: 1}
	switch when {
	case Before, After, Mid:
	default:
		return bad(fmt.Sprintf("unknown WHEN %q", when))
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		if when != Mid {
			return bad("@DELAY is for mid only")
		}
		d, err := time.ParseDuration(rest[i+1:])
		if err != nil || d < 0 {
			return bad(fmt.Sprintf("bad delay %q", rest[i+1:]))
		}
		p.Delay, rest = d, rest[:i]
	} else if when == Mid {
		p.Delay = DefaultMidDelay
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil || n < 1 {
			return bad(fmt.Sprintf("bad count %q", rest[i+1:]))
		}
		p.N, rest = n, rest[:i]
	}
	if rest == "" {
		return bad("no activity name")
	}
	p.Activity = rest
	return p, nil
}
