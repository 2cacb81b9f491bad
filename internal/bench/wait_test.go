package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// fakeDriver is a fake provider driver that describes one fleet.
type fakeDriver struct{ fleet contract.Fleet }

func (d *fakeDriver) Provision(context.Context, contract.ProvisionRequest) (contract.Fleet, error) {
	return d.fleet, nil
}
func (d *fakeDriver) Describe(context.Context, string) (contract.Fleet, error) { return d.fleet, nil }
func (d *fakeDriver) Terminate(context.Context, string) error                  { return nil }
func (d *fakeDriver) SetRoute(context.Context, contract.RouteKey, contract.Route) error {
	return nil
}
func (d *fakeDriver) Route(context.Context, contract.RouteKey) (contract.Route, error) {
	return contract.Route{}, nil
}
func (d *fakeDriver) ListFleets(context.Context, provider.Filter) ([]contract.Fleet, error) {
	return nil, nil
}
func (d *fakeDriver) Close() error { return nil }

// The bench's health wait passes when every instance answers 2xx and times out,
// counting the healthy ones, while one does not (an exited one, one answering 503).
func TestWaitHealthyWaitsForEveryInstance(t *testing.T) {
	srv := func(status int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
		t.Cleanup(s.Close)
		return s.Listener.Addr().String()
	}
	ok, down := srv(http.StatusOK), srv(http.StatusServiceUnavailable)
	f := contract.Fleet{ID: "fl-b", Instances: []contract.Instance{
		{ID: "fl-b-1", Address: ok, State: contract.InstanceRunning},
		{ID: "fl-b-2", Address: ok, State: contract.InstanceRunning},
	}}
	d := &fakeDriver{fleet: f}
	p := provider.New("fake", d)
	hc := &http.Client{Timeout: 5 * time.Second}
	ctx := context.Background()
	if err := WaitHealthy(ctx, p, hc, f.ID, "/healthz", 10*time.Millisecond, time.Minute); err != nil {
		t.Fatalf("all healthy: %v", err)
	}
	for _, extra := range []contract.Instance{
		{ID: "fl-b-3", Address: ok, State: contract.InstanceExited},
		{ID: "fl-b-3", Address: down, State: contract.InstanceRunning},
	} {
		d.fleet.Instances = append(f.Instances[:2:2], extra)
		err := WaitHealthy(ctx, p, hc, f.ID, "/healthz", 10*time.Millisecond, 100*time.Millisecond)
		if want := "fleet fl-b not healthy within 100ms: 2 of 3 pass /healthz"; err == nil || err.Error() != want {
			t.Errorf("with %+v: %v, want %q", extra, err, want)
		}
	}
}
