package local

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

func TestPollTriesUntilDone(t *testing.T) {
	n := 0
	err := poll(context.Background(), time.Millisecond, func() (bool, error) {
		n++
		return n == 5, nil
	})
	if err != nil || n != 5 {
		t.Fatalf("poll = %v after %d tries, want nil after 5", err, n)
	}
}

func TestPollStopsAtTryError(t *testing.T) {
	boom := errors.New("router exited")
	n := 0
	err := poll(context.Background(), time.Millisecond, func() (bool, error) {
		n++
		if n == 3 {
			return false, boom
		}
		return false, nil
	})
	if !errors.Is(err, boom) || n != 3 {
		t.Fatalf("poll = %v after %d tries, want %v after 3", err, n, boom)
	}
}

// When the context ends while poll waits, poll tries once more (a deadline
// sees the latest state) and then returns the context's error.
func TestPollTriesOnceMoreWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	lastSawEnd := false
	err := poll(ctx, time.Millisecond, func() (bool, error) {
		lastSawEnd = ctx.Err() != nil
		return false, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) || !lastSawEnd {
		t.Fatalf("poll = %v, last try after the deadline: %v; want DeadlineExceeded and true", err, lastSawEnd)
	}
	err = poll(ctx, time.Millisecond, func() (bool, error) { return true, nil })
	if err != nil {
		t.Fatalf("a try that is done on an ended context: poll = %v, want nil", err)
	}
}

// The driver's waits (through poll) end at once, saying why, when the process
// they wait for exits: a router or sim host command that does not serve.
func TestWaitsEndWhenTheChildExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := newEnv(t)
	d, err := Open(Config{Home: e.home, Images: testCatalog, RouterCommand: []string{"false"}, SimCommand: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	key := contract.RouteKey{Environment: "test", Service: "web"}
	err = d.SetRoute(ctx, key, contract.Route{})
	if err == nil || !strings.Contains(err.Error(), "router test/web could not start") || !strings.Contains(err.Error(), "it exited (exit status 1)") {
		t.Fatalf("SetRoute with a router command that exits: %v", err)
	}
	img := e.simImage("s1", false)
	_, err = d.Provision(ctx, contract.ProvisionRequest{Token: "sim-exits", Service: "web", Environment: "test", ImageID: img.ID, Size: 1})
	if err == nil || !strings.Contains(err.Error(), "sim host of fleet") || !strings.Contains(err.Error(), "exited at once") {
		t.Fatalf("Provision with a sim command that exits: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the waits ran into the test's deadline instead of ending at the exit")
	}
}
