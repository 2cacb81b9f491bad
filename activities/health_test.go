package activities

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// waitHealthy runs WaitHealthy on the fake provider's fleet and returns the
// type and message of its failure.
func waitHealthy(t *testing.T, f contract.Fleet, in contract.WaitHealthyInput) (string, string) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &Activities{Provider: provider.New("fake", &fakeDriver{fleet: f})}
	env.RegisterActivity(a)
	in.FleetID, in.Path = f.ID, "/healthz"
	_, err := env.ExecuteActivity(a.WaitHealthy, in)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("WaitHealthy: %v, want an application error", err)
	}
	if !ae.NonRetryable() {
		t.Errorf("WaitHealthy failed retryably: %v", ae)
	}
	return ae.Type(), ae.Error()
}

func exitedInstance(id, exit, log string, tail ...string) contract.Instance {
	return contract.Instance{ID: id, Address: "127.0.0.1:1", State: contract.InstanceExited, Exit: exit, Log: log, LogTail: tail}
}

// When every instance has exited, WaitHealthy says so at once, with how each
// ended and how its log ends, instead of probing until the health timeout.
func TestWaitHealthyFailsAtOnceWhenEveryInstanceExited(t *testing.T) {
	f := fakeFleet()
	f.Instances = []contract.Instance{
		exitedInstance("fl-fake-1", "exit status 3", "/home/logs/fl-fake/fl-fake-1.log", "listening on :8080", "panic: no config"),
		exitedInstance("fl-fake-2", "", ""),
		exitedInstance("fl-fake-3", "signal: killed", "/home/logs/fl-fake/fl-fake-3.log"),
	}
	typ, msg := waitHealthy(t, f, contract.WaitHealthyInput{Interval: time.Second, Timeout: time.Hour})
	if typ != contract.ErrInstancesExited {
		t.Fatalf("failure type %s (%s), want %s", typ, msg, contract.ErrInstancesExited)
	}
	for _, want := range []string{
		"fleet fl-fake cannot become healthy: every instance has exited",
		"instance fl-fake-1 exited (exit status 3); its log /home/logs/fl-fake/fl-fake-1.log ends with:\n  listening on :8080\n  panic: no config",
		"instance fl-fake-2 exited (exit status not known)",
		"instance fl-fake-3 exited (signal: killed); its log /home/logs/fl-fake/fl-fake-3.log has nothing since it started",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q does not say %q", msg, want)
		}
	}
}

// A rolling wave waits only on the instances it added: when those have all
// exited, it fails at once too, however the older ones are.
func TestWaitHealthyFromFailsAtOnceWhenTheAddedInstancesExited(t *testing.T) {
	f := fakeFleet()
	f.Instances = append(f.Instances, exitedInstance("fl-fake-2", "exit status 1", ""))
	typ, msg := waitHealthy(t, f, contract.WaitHealthyInput{Interval: time.Second, Timeout: time.Hour, From: 1})
	if typ != contract.ErrInstancesExited || !strings.Contains(msg, "instance fl-fake-2 exited (exit status 1)") || strings.Contains(msg, "fl-fake-1") {
		t.Fatalf("failure %s: %q, want %s naming fl-fake-2 only", typ, msg, contract.ErrInstancesExited)
	}
}

// While one instance may still come up, an exited one is one more unhealthy
// instance: WaitHealthy waits for the health timeout.
func TestWaitHealthyWaitsWhileSomeInstanceMayComeUp(t *testing.T) {
	f := fakeFleet() // fl-fake-1 runs but refuses connections
	f.Instances = append(f.Instances, exitedInstance("fl-fake-2", "exit status 1", ""))
	typ, msg := waitHealthy(t, f, contract.WaitHealthyInput{Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if typ != contract.ErrHealthTimeout || !strings.Contains(msg, "fl-fake-2 is exited") {
		t.Fatalf("failure %s: %q, want %s listing fl-fake-2 as exited", typ, msg, contract.ErrHealthTimeout)
	}
}
