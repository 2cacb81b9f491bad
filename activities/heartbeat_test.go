package activities

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/imago/imago/internal/analysis"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/provider"
)

// Every heartbeating activity heartbeats while its first slow step is still
// in flight: at once, and again on a ticker. One that heartbeats only after a
// step is taken for a dead worker whenever the step outlasts its heartbeat
// timeout, and each retry starts the step over.
func TestHeartbeatingActivitiesBeatWhileAStepIsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run starts the activity; its first slow step blocks until release
		// is closed; inFlight reports that the step is under way.
		run func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (inFlight func() bool, err func() error)
	}{
		{"WaitHealthy probes three instances at once", func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (func() bool, func() error) {
			probes := &blockingServer{release: release}
			d := &fakeDriver{fleet: probes.fleet(t, 3)}
			a := &Activities{Provider: provider.New("fake", d)}
			env.RegisterActivity(a)
			// All three probes in flight at once: probed one by one, the first never lets the next start.
			return func() bool { return probes.inFlight.Load() == 3 },
				run(env, a.WaitHealthy, contract.WaitHealthyInput{FleetID: d.fleet.ID, Path: "/healthz", Interval: time.Second, Timeout: time.Minute})
		}},
		{"Provision", func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (func() bool, func() error) {
			d := &fakeDriver{fleet: fakeFleet(), block: map[string]chan struct{}{"provision": release}}
			a := &Activities{Provider: provider.New("fake", d)}
			env.RegisterActivity(a)
			return d.blocked("provision"), run(env, a.Provision, contract.ProvisionRequest{Token: "tok", Service: "web", Environment: "test", ImageID: "img-1", Size: 1})
		}},
		{"Terminate", func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (func() bool, func() error) {
			d := &fakeDriver{fleet: fakeFleet(), block: map[string]chan struct{}{"terminate": release}}
			a := &Activities{Provider: provider.New("fake", d)}
			env.RegisterActivity(a)
			return d.blocked("terminate"), run(env, a.Terminate, contract.TerminateInput{FleetID: d.fleet.ID})
		}},
		{"TerminateByToken", func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (func() bool, func() error) {
			d := &fakeDriver{fleet: fakeFleet(), block: map[string]chan struct{}{"list": release}}
			a := &Activities{Provider: provider.New("fake", d)}
			env.RegisterActivity(a)
			return d.blocked("list"), run(env, a.TerminateByToken, contract.TerminateByTokenInput{Token: d.fleet.Token, Service: "web", Environment: "test"})
		}},
		{"TestImage", func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (func() bool, func() error) {
			healthy := &blockingServer{release: make(chan struct{})}
			close(healthy.release)
			d := &fakeDriver{fleet: healthy.fleet(t, 1), block: map[string]chan struct{}{"provision": release}}
			a := &Activities{Provider: provider.New("fake", d)}
			env.RegisterActivity(a)
			return d.blocked("provision"), run(env, a.TestImage, contract.TestImageInput{
				Image: contract.Image{ID: "img-1", Service: "web"}, Token: "bake/run/test",
				Health: contract.Health{Path: "/healthz", Interval: contract.Duration(time.Second), Timeout: contract.Duration(time.Minute)},
			})
		}},
		{"RunAnalysis", func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (func() bool, func() error) {
			stats := &blockingServer{release: release, body: `{"errorRate":0.01}`}
			srv := stats.start(t)
			a := &Activities{Analysis: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)}
			env.RegisterActivity(a)
			return func() bool { return stats.inFlight.Load() == 1 }, run(env, a.RunAnalysis, contract.AnalysisInput{Name: "stats", FleetID: "fl-1", Spec: contract.AnalysisSpec{
				Provider: analysis.ProviderHTTP, URL: srv.URL + "/stats", Field: "errorRate", Max: f64(0.05), Interval: time.Second, Count: 1,
			}})
		}},
		{"BakeBuild", func(t *testing.T, env *testsuite.TestActivityEnvironment, release chan struct{}) (func() bool, func() error) {
			dir := t.TempDir()
			src, started, done := filepath.Join(dir, "main.txt"), filepath.Join(dir, "started"), filepath.Join(dir, "release")
			if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o700); err != nil {
				t.Fatal(err)
			}
			go func() { <-release; _ = os.WriteFile(done, nil, 0o600) }()
			a := &Activities{Home: t.TempDir()}
			env.RegisterActivity(a)
			// A provisioning step that prints nothing until the test releases it: a long, silent compile.
			b := contract.Bake{Service: "web", Builder: contract.BuilderLocal, Files: []string{src}, Entrypoint: []string{"./main.txt"},
				Variables: map[string]string{"STARTED": started, "RELEASE": done},
				Provision: contract.ShellSteps(`touch "$STARTED"; while [ ! -e "$RELEASE" ]; do sleep 0.05; done`)}
			return func() bool { _, err := os.Stat(started); return err == nil },
				run(env, a.BakeBuild, contract.BakeBuildInput{Spec: b, InputDigest: "sha256:" + strings.Repeat("ab", 32), BuildID: "bake/web/run-1"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			beats := &heartbeatCounter{}
			env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{beats}})
			release := make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free)
			inFlight, wait := tc.run(t, env, release)

			ok := poll(15*time.Second, func() bool { return inFlight() && beats.n.Load() >= 2 })
			n, stepInFlight := beats.n.Load(), inFlight()
			free()
			if err := wait(); err != nil {
				t.Fatalf("activity failed: %v", err)
			}
			if !ok {
				t.Fatalf("while the first step was in flight (%v): %d heartbeats, want the first one and one from the ticker", stepInFlight, n)
			}
		})
	}
}

// run starts an activity in the background and returns a function that waits
// for its error.
func run(env *testsuite.TestActivityEnvironment, fn any, in any) func() error {
	errc := make(chan error, 1)
	go func() {
		_, err := env.ExecuteActivity(fn, in)
		errc <- err
	}()
	return func() error { return <-errc }
}

// poll reports whether ok held within d, checking every 20 ms.
func poll(d time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

// heartbeatCounter counts every RecordHeartbeat of the activities it sees and
// keeps their details (the test environment's heartbeat listener sees only
// those the SDK would send: the first, then one per throttle interval).
type heartbeatCounter struct {
	interceptor.WorkerInterceptorBase
	n       atomic.Int64
	mu      sync.Mutex
	details []any
}

// all returns the details of every heartbeat so far.
func (c *heartbeatCounter) all() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.details...)
}

func (c *heartbeatCounter) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &heartbeatInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, c: c}
}

type heartbeatInbound struct {
	interceptor.ActivityInboundInterceptorBase
	c *heartbeatCounter
}

func (i *heartbeatInbound) Init(out interceptor.ActivityOutboundInterceptor) error {
	return i.Next.Init(&heartbeatOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: out}, c: i.c})
}

type heartbeatOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	c *heartbeatCounter
}

func (o *heartbeatOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	o.c.mu.Lock()
	o.c.details = append(o.c.details, details...)
	o.c.mu.Unlock()
	o.c.n.Add(1)
	o.Next.RecordHeartbeat(ctx, details...)
}

// blockingServer answers every request with 200 and body once release is closed.
type blockingServer struct {
	release  chan struct{}
	body     string
	inFlight atomic.Int64
}

func (b *blockingServer) start(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.inFlight.Add(1)
		defer b.inFlight.Add(-1)
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, b.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fleet starts n servers and returns a fleet of them.
func (b *blockingServer) fleet(t *testing.T, n int) contract.Fleet {
	f := fakeFleet()
	f.Instances = nil
	for i := range n {
		addr := strings.TrimPrefix(b.start(t).URL, "http://")
		f.Instances = append(f.Instances, contract.Instance{ID: fmt.Sprintf("%s-%d", f.ID, i+1), Address: addr, State: contract.InstanceRunning})
	}
	return f
}

func fakeFleet() contract.Fleet {
	return contract.Fleet{ID: "fl-fake", Service: "web", Environment: "test", ImageID: "img-1", Token: "tok",
		Instances: []contract.Instance{{ID: "fl-fake-1", Address: "127.0.0.1:1", State: contract.InstanceRunning}}}
}

// fakeDriver is a fake provider driver with one fleet; the calls named in
// block wait until their channel is closed.
type fakeDriver struct {
	fleet contract.Fleet
	block map[string]chan struct{}

	mu      sync.Mutex
	waiting map[string]bool
	gone    bool
}

func (d *fakeDriver) wait(ctx context.Context, call string) error {
	ch := d.block[call]
	if ch == nil {
		return nil
	}
	d.mu.Lock()
	if d.waiting == nil {
		d.waiting = map[string]bool{}
	}
	d.waiting[call] = true
	d.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *fakeDriver) blocked(call string) func() bool {
	return func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.waiting[call]
	}
}

func (d *fakeDriver) Provision(ctx context.Context, _ contract.ProvisionRequest) (contract.Fleet, error) {
	return d.fleet, d.wait(ctx, "provision")
}

func (d *fakeDriver) Describe(context.Context, string) (contract.Fleet, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %s not found", d.fleet.ID)
	}
	return d.fleet, nil
}

func (d *fakeDriver) Terminate(ctx context.Context, _ string) error {
	if err := d.wait(ctx, "terminate"); err != nil {
		return err
	}
	d.mu.Lock()
	d.gone = true
	d.mu.Unlock()
	return nil
}

func (d *fakeDriver) SetRoute(context.Context, contract.RouteKey, contract.Route) error { return nil }

func (d *fakeDriver) Route(context.Context, contract.RouteKey) (contract.Route, error) {
	return contract.Route{}, nil
}

func (d *fakeDriver) ListFleets(ctx context.Context, _ provider.Filter) ([]contract.Fleet, error) {
	if err := d.wait(ctx, "list"); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return nil, nil
	}
	return []contract.Fleet{d.fleet}, nil
}

func (d *fakeDriver) Close() error { return nil }
