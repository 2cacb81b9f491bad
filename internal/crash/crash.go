// Package crash is a test hook, not a feature: a Temporal worker interceptor that
// kills its own process with SIGKILL at one chosen activity boundary, so the crash
// suite can kill -9 a worker at an exact point of a rollout or bake and check that
// another worker finishes it with nothing leaked, doubled or dropped.
//
// It is armed only by the environment variable IMAGO_CRASH_AT (app.NewWorker
// installs it when the variable is set, and costs nothing otherwise):
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
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// EnvVar names the crash point; unset (the default) means no hook.
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

// FromEnv returns the interceptor IMAGO_CRASH_AT asks for, nil when it is unset,
// and an error when it is malformed.
func FromEnv() (interceptor.WorkerInterceptor, error) {
	v := os.Getenv(EnvVar)
	if v == "" {
		return nil, nil
	}
	p, err := Parse(v)
	if err != nil {
		return nil, err
	}
	return New(p), nil
}

// New returns a worker interceptor that kills this process at p.
func New(p Point) interceptor.WorkerInterceptor {
	return &workerInterceptor{p: p, kill: killSelf, blockLosers: true}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	p     Point
	seen  atomic.Int64
	kill  func(msg string) // never returns in production
	fired atomic.Bool
	// blockLosers parks a second caller of fire (the mid timer racing the
	// activity's return) until the kill lands, so no result is ever reported.
	blockLosers bool
}

func (w *workerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, w: w}
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	w *workerInterceptor
	h *heartbeats // set by Init
}

// heartbeats tells the mid timer that the activity heartbeated.
type heartbeats struct {
	once sync.Once
	ch   chan struct{}
}

type activityOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	h *heartbeats
}

func (o *activityOutbound) RecordHeartbeat(ctx context.Context, details ...interface{}) {
	o.Next.RecordHeartbeat(ctx, details...)
	o.h.once.Do(func() { close(o.h.ch) })
}

func (a *activityInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	a.h = &heartbeats{ch: make(chan struct{})}
	return a.Next.Init(&activityOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: outbound}, h: a.h})
}

func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	w := a.w
	info := activity.GetInfo(ctx)
	if info.ActivityType.Name != w.p.Activity || w.seen.Add(1) != int64(w.p.N) {
		return a.Next.ExecuteActivity(ctx, in)
	}
	where := fmt.Sprintf("%s (workflow %s, activity %s, attempt %d)", w.p, info.WorkflowExecution.ID, info.ActivityID, info.Attempt)
	switch w.p.When {
	case Before:
		w.fire("before it runs: " + where)
	case After:
		res, err := a.Next.ExecuteActivity(ctx, in)
		outcome := "returned"
		if err != nil {
			outcome = "failed: " + err.Error()
		}
		w.fire("after it " + outcome + ", before reporting: " + where)
		return res, err // reached only by tests that replace kill
	}
	// Mid: run it, and kill it from aside once it ran long enough (and heartbeated).
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(w.p.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-done:
			return
		}
		if info.HeartbeatTimeout > 0 {
			select {
			case <-a.h.ch:
			case <-done:
				return
			}
		}
		w.fire("while it runs: " + where)
	}()
	res, err := a.Next.ExecuteActivity(ctx, in)
	close(done)
	w.fire("it returned before the mid point, so before reporting: " + where)
	return res, err
}

// fire kills once.
func (w *workerInterceptor) fire(msg string) {
	if !w.fired.CompareAndSwap(false, true) {
		if w.blockLosers {
			select {}
		}
		return
	}
	w.kill(msg)
}

func killSelf(msg string) {
	fmt.Fprintf(os.Stderr, "imago crash hook (%s): SIGKILL %d %s\n", EnvVar, os.Getpid(), msg)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal lands before this goroutine runs again
}
