package activities

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// With AtLeast (a canary's minHealthyPercent), WaitHealthy ends as soon as
// that many instances pass, though another never will; asking for more than
// pass fails at the health timeout, saying how many were needed.
func TestWaitHealthyAtLeastEndsWhenEnoughPass(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	addr := strings.TrimPrefix(ok.URL, "http://")
	f := fakeFleet() // fl-fake-1 refuses connections
	f.Instances = append(f.Instances,
		contract.Instance{ID: "fl-fake-2", Address: addr, State: contract.InstanceRunning},
		contract.Instance{ID: "fl-fake-3", Address: addr, State: contract.InstanceRunning})

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &Activities{Provider: provider.New("fake", &fakeDriver{fleet: f})}
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.WaitHealthy, contract.WaitHealthyInput{FleetID: f.ID, Path: "/healthz",
		Interval: 50 * time.Millisecond, Timeout: time.Hour, AtLeast: 2})
	if err != nil {
		t.Fatalf("WaitHealthy with 2 of 3 passing and AtLeast 2: %v", err)
	}
	var res contract.WaitHealthyResult
	if err := val.Get(&res); err != nil || res.Healthy != 2 {
		t.Fatalf("result %+v (%v), want 2 healthy", res, err)
	}

	typ, msg := waitHealthy(t, f, contract.WaitHealthyInput{Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond, AtLeast: 3})
	if typ != contract.ErrHealthTimeout || !strings.Contains(msg, "2 of 3 instances pass /healthz; fewer than the 3 the rollout needs") {
		t.Fatalf("failure %s: %q, want %s saying 3 were needed", typ, msg, contract.ErrHealthTimeout)
	}
}
