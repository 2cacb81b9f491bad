//go:build imago_crash

package crash

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// Enabled tells whether this binary has the hook (built with -tags imago_crash).
const Enabled = true

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
