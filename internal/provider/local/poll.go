package local

import (
	"context"
	"time"
)

// pollMax is the longest wait between two tries of poll.
const pollMax = 50 * time.Millisecond

// poll calls try until it is done or fails, waiting first between the first two
// tries and twice as long after each (at most pollMax): what the driver waits
// for (a router applying a route, a child writing its run file, processes
// exiting) is usually there within milliseconds, and sometimes takes seconds.
// When ctx ends poll tries once more, so a deadline still sees the latest
// state, then returns ctx's error; try's own error ends it at once.
func poll(ctx context.Context, first time.Duration, try func() (done bool, err error)) error {
	wait := time.NewTimer(first)
	defer wait.Stop()
	for tick := first; ; tick = min(tick*2, pollMax) {
		done, err := try()
		if done || err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait.Reset(tick)
		select {
		case <-ctx.Done():
		case <-wait.C:
		}
	}
}
