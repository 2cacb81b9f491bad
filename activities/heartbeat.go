package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeater keeps an activity's heartbeat going: once at start, so even a
// first step that outlasts the heartbeat timeout (a slow probe, a silent
// compile, a load balancer draining) is covered, and then on a ticker with the
// latest details. The heartbeat timeout so tells a dead worker from a slow
// step, and a retried attempt finds the details of the last tick.
//
// Every heartbeating activity uses it; none heartbeats only between steps.
//
// Every heartbeat goes out from the helper's goroutine, the first at once: a
// heartbeat is a call to the server (a write to the workflow's state), and the
// activity's own work does not wait for it.
type heartbeater struct {
	ctx  context.Context
	mu   sync.Mutex
	last any
	kick chan struct{} // one buffered: heartbeat the latest details now
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// startHeartbeat heartbeats details at once (from its goroutine) and keeps
// heartbeating until Stop. Outside an activity (a plain context) it does
// nothing.
func startHeartbeat(ctx context.Context, details any) *heartbeater {
	h := &heartbeater{ctx: ctx, last: details, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if !activity.IsActivity(ctx) {
		close(h.done)
		return h
	}
	h.kick <- struct{}{}
	go h.run(heartbeatEvery(activity.GetInfo(ctx).HeartbeatTimeout))
	return h
}

// heartbeatEvery is the ticker's period: a few beats per heartbeat timeout.
// The SDK sends at most one heartbeat per 80% of the timeout and keeps the
// latest details in between, so beating often costs no extra calls.
func heartbeatEvery(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return time.Second
	}
	return min(max(timeout/4, 50*time.Millisecond), 10*time.Second)
}

func (h *heartbeater) run(every time.Duration) {
	defer close(h.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-h.ctx.Done():
			return
		case <-h.kick:
		case <-t.C:
		}
		h.mu.Lock()
		d := h.last
		h.mu.Unlock()
		activity.RecordHeartbeat(h.ctx, d)
	}
}

// Set makes details what the heartbeats carry and heartbeats them now (from
// the goroutine). (The SDK sends at most one heartbeat per throttle interval,
// with the latest details: setting often costs no extra calls.)
func (h *heartbeater) Set(details any) {
	h.mu.Lock()
	h.last = details
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default: // a heartbeat is due already; it takes these details
	}
}

// Stop ends the heartbeats; it may be called more than once.
func (h *heartbeater) Stop() {
	h.once.Do(func() { close(h.stop) })
	<-h.done
}
