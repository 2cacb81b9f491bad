package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/provider"
)

func instanceIDs(f contract.Fleet) []string {
	var out []string
	for _, in := range f.Instances {
		out = append(out, in.ID)
	}
	return out
}

// checkFleet checks that f has exactly the instances numbered nums, all running
// and answering version, and that they are the only processes of the fleet.
func (e *testEnv) checkFleet(f contract.Fleet, version string, nums ...int) {
	e.t.Helper()
	var want []string
	for _, n := range nums {
		want = append(want, fmt.Sprintf("%s-%d", f.ID, n))
	}
	if got := instanceIDs(f); fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Fatalf("instances %v, want %v", got, want)
	}
	for _, in := range f.Instances {
		if in.State != contract.InstanceRunning || in.PID == 0 || in.Address == "" {
			e.t.Fatalf("instance %+v, want running", in)
		}
		waitBody(e.t, "http://"+in.Address+"/", version)
		if pid, id := whoami(e.t, in.Address); pid != in.PID || id != in.ID {
			e.t.Fatalf("instance %s at %s is pid %d (%s), recorded pid %d", in.ID, in.Address, pid, id, in.PID)
		}
	}
	if ps := e.fleetProcesses(f.ID); len(ps) != len(nums) {
		e.t.Fatalf("processes of fleet %s: %+v, want %d", f.ID, ps, len(nums))
	}
	d, err := e.d.Describe(context.Background(), f.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if fmt.Sprint(instanceIDs(d)) != fmt.Sprint(want) {
		e.t.Fatalf("Describe: instances %v, want %v", instanceIDs(d), want)
	}
}

func TestResize(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := provider.New("local", e.d)
	img := e.image("v1")
	req := contract.ProvisionRequest{Token: "tok-r", Service: "web", Environment: "test", ImageID: img.ID, Size: 2}
	f0 := e.provision(req.Token, img.ID, 2)

	// Grow: the first instances stay, new ones are numbered after them.
	f, err := p.Resize(ctx, f0.ID, 4)
	if err != nil {
		t.Fatal(err)
	}
	e.checkFleet(f, "v1", 1, 2, 3, 4)
	if fmt.Sprint(fleetPIDs(f)[:2]) != fmt.Sprint(fleetPIDs(f0)) {
		t.Fatalf("grow replaced instances: pids %v, were %v", fleetPIDs(f), fleetPIDs(f0))
	}
	// The same size again changes nothing.
	again, err := p.Resize(ctx, f0.ID, 4)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fleetPIDs(again)) != fmt.Sprint(fleetPIDs(f)) {
		t.Fatalf("repeated resize: pids %v, want %v", fleetPIDs(again), fleetPIDs(f))
	}

	// Shrink: the highest-numbered instances stop gracefully and are forgotten.
	small, err := p.Resize(ctx, f0.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.checkFleet(small, "v1", 1)
	if small.Instances[0].PID != f0.Instances[0].PID {
		t.Fatalf("shrink replaced instance 1: pid %d, was %d", small.Instances[0].PID, f0.Instances[0].PID)
	}
	for _, in := range f.Instances[1:] {
		if alive(in.PID, 0) {
			t.Fatalf("instance %s (pid %d) alive after the shrink", in.ID, in.PID)
		}
		if data, _ := os.ReadFile(filepath.Join(e.home, "logs", f.ID, in.ID+".log")); !strings.Contains(string(data), "shutting down") {
			t.Errorf("instance %s did not stop gracefully; its log:\n%s", in.ID, data)
		}
	}

	// Grow again: numbered after the highest remaining instance.
	f3, err := p.Resize(ctx, f0.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	e.checkFleet(f3, "v1", 1, 2, 3)

	// A Provision retry with the original request does not undo the Resize; nor
	// does one that asks for the resized size. Another size is refused.
	for _, size := range []int{2, 3} {
		r := req
		r.Size = size
		got, err := e.d.Provision(ctx, r)
		if err != nil {
			t.Fatalf("provision retry with size %d after the resize: %v", size, err)
		}
		if fmt.Sprint(fleetPIDs(got)) != fmt.Sprint(fleetPIDs(f3)) {
			t.Fatalf("provision retry with size %d: pids %v, want %v", size, fleetPIDs(got), fleetPIDs(f3))
		}
	}
	e.checkFleet(f3, "v1", 1, 2, 3)
	bad := req
	bad.Size = 5
	if _, err := e.d.Provision(ctx, bad); provider.ErrorCode(err) != provider.InvalidArgument || !strings.Contains(err.Error(), "resized to 3") {
		t.Fatalf("provision with a reused token and another size: %v, want InvalidArgument naming the resize", err)
	}

	// A dead instance is restarted by Resize, as by Provision.
	killAndWait(t, f3.Instances[1].PID)
	f4, err := p.Resize(ctx, f0.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if f4.Instances[1].PID == f3.Instances[1].PID || f4.Instances[0].PID != f3.Instances[0].PID {
		t.Fatalf("repair by resize: pids %v, were %v", fleetPIDs(f4), fleetPIDs(f3))
	}
	e.checkFleet(f4, "v1", 1, 2, 3)

	// Errors.
	if _, err := p.Resize(ctx, f0.ID, 0); provider.ErrorCode(err) != provider.InvalidArgument {
		t.Fatalf("resize to 0: %v, want InvalidArgument", err)
	}
	if _, err := e.d.Resize(ctx, f0.ID, -1); provider.ErrorCode(err) != provider.InvalidArgument {
		t.Fatalf("driver resize to -1: %v, want InvalidArgument", err)
	}
	if _, err := p.Resize(ctx, "fl-nothere", 2); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("resize an unknown fleet: %v, want NotFound", err)
	}
	if _, err := p.Resize(ctx, "../x", 2); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("resize a bad fleet ID: %v, want NotFound", err)
	}
	noResize := provider.New("plain", struct{ provider.Driver }{e.d}) // hides Resize
	if _, err := noResize.Resize(ctx, f0.ID, 2); provider.ErrorCode(err) != provider.FailedPrecondition {
		t.Fatalf("resize on a driver without Resizer: %v, want FailedPrecondition", err)
	}

	if err := p.Terminate(ctx, f0.ID); err != nil {
		t.Fatal(err)
	}
	if ps, _ := e.d.Processes(); len(ps) != 0 {
		t.Fatalf("processes after Terminate: %+v", ps)
	}
}

// TestResizeInterruptedGrow simulates a worker that crashed after it started a
// new instance of a growing fleet and before it recorded the pid: a retry (a
// Resize with the same size or a Provision retry with the original request)
// adopts the process instead of starting a second one.
func TestResizeInterruptedGrow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image("v1")
	req := contract.ProvisionRequest{Token: "tok-g", Service: "web", Environment: "test", ImageID: img.ID, Size: 1}
	f0 := e.provision(req.Token, img.ID, 1)

	crash := errors.New("simulated crash")
	e.d.afterSpawn = func(id string) error {
		if strings.HasSuffix(id, "-3") {
			return crash
		}
		return nil
	}
	if _, err := e.d.Resize(ctx, f0.ID, 4); !errors.Is(err, crash) {
		t.Fatalf("resize: %v, want the simulated crash", err)
	}
	st, err := e.d.readState(f0.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != 4 || st.RequestSize != 1 || len(st.Fleet.Instances) != 4 {
		t.Fatalf("state after the crash: size %d, request size %d, instances %+v", st.Size, st.RequestSize, st.Fleet.Instances)
	}
	planned := st.Fleet.Instances[2]
	if planned.PID != 0 || planned.Address == "" || st.Fleet.Instances[3].Address != "" || st.Fleet.Instances[1].PID == 0 {
		t.Fatalf("instances after the crash: %+v", st.Fleet.Instances)
	}
	var orphan int
	for _, p := range e.fleetProcesses(f0.ID) {
		if p.InstanceID == planned.ID {
			orphan = p.PID
		}
	}
	if orphan == 0 {
		t.Fatalf("no running process for planned instance %s", planned.ID)
	}

	// A new worker retries the Provision activity of the original request: it
	// finishes the Resize, adopting the orphan.
	d2, err := Open(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d2.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if f.Instances[2].PID != orphan || f.Instances[2].Address != planned.Address {
		t.Fatalf("instance 3: %+v, want the orphan pid %d at %s adopted", f.Instances[2], orphan, planned.Address)
	}
	e.checkFleet(f, "v1", 1, 2, 3, 4)

	// The Resize retry finds nothing to do.
	f2, err := d2.Resize(ctx, f0.ID, 4)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fleetPIDs(f2)) != fmt.Sprint(fleetPIDs(f)) {
		t.Fatalf("resize retry: pids %v, want %v", fleetPIDs(f2), fleetPIDs(f))
	}

	// A Resize retry adopts too: crash again while growing to 5, retry with 5.
	e.d.afterSpawn = func(id string) error {
		if strings.HasSuffix(id, "-5") {
			return crash
		}
		return nil
	}
	if _, err := e.d.Resize(ctx, f0.ID, 5); !errors.Is(err, crash) {
		t.Fatalf("resize: %v, want the simulated crash", err)
	}
	var orphan5 int
	for _, p := range e.fleetProcesses(f0.ID) {
		if strings.HasSuffix(p.InstanceID, "-5") {
			orphan5 = p.PID
		}
	}
	f5, err := d2.Resize(ctx, f0.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	if orphan5 == 0 || f5.Instances[4].PID != orphan5 {
		t.Fatalf("instance 5: %+v, want the orphan pid %d adopted", f5.Instances[4], orphan5)
	}
	e.checkFleet(f5, "v1", 1, 2, 3, 4, 5)

	if err := d2.Terminate(ctx, f0.ID); err != nil {
		t.Fatal(err)
	}
	if ps, _ := e.d.Processes(); len(ps) != 0 {
		t.Fatalf("processes after Terminate: %+v", ps)
	}
}

// TestResizeInterruptedShrink simulates a crash after a shrinking Resize
// recorded the new size and before it stopped the surplus instances: a Provision
// retry of the original request finishes the shrink instead of keeping (or
// restarting) them.
func TestResizeInterruptedShrink(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image("v1")
	req := contract.ProvisionRequest{Token: "tok-s", Service: "web", Environment: "test", ImageID: img.ID, Size: 3}
	f0 := e.provision(req.Token, img.ID, 3)

	st, err := e.d.readState(f0.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Size = 1
	if err := e.d.writeState(st); err != nil {
		t.Fatal(err)
	}
	f, err := e.d.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e.checkFleet(f, "v1", 1)
	if f.Instances[0].PID != f0.Instances[0].PID {
		t.Fatalf("instance 1 replaced: pid %d, was %d", f.Instances[0].PID, f0.Instances[0].PID)
	}
	for _, in := range f0.Instances[1:] {
		if alive(in.PID, 0) {
			t.Fatalf("surplus instance %s alive", in.ID)
		}
	}
	if err := e.d.Terminate(ctx, f0.ID); err != nil {
		t.Fatal(err)
	}
}

// TestResizeOldState: a fleet state file written before Resize existed (no
// size fields) keeps working.
func TestResizeOldState(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image("v1")
	req := contract.ProvisionRequest{Token: "tok-o", Service: "web", Environment: "test", ImageID: img.ID, Size: 2}
	f0 := e.provision(req.Token, img.ID, 2)
	st, err := e.d.readState(f0.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Size, st.RequestSize = 0, 0
	if err := e.d.writeState(st); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(e.d.fleetFile(f0.ID)); strings.Contains(string(data), "size") {
		t.Fatalf("state still has size fields:\n%s", data)
	}
	bad := req
	bad.Size = 3
	if _, err := e.d.Provision(ctx, bad); provider.ErrorCode(err) != provider.InvalidArgument {
		t.Fatalf("provision with another size: %v, want InvalidArgument", err)
	}
	if f, err := e.d.Provision(ctx, req); err != nil || fmt.Sprint(fleetPIDs(f)) != fmt.Sprint(fleetPIDs(f0)) {
		t.Fatalf("provision retry: %v %v, want pids %v", fleetPIDs(f), err, fleetPIDs(f0))
	}
	f, err := e.d.Resize(ctx, f0.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	e.checkFleet(f, "v1", 1, 2, 3)
	if f, err := e.d.Provision(ctx, req); err != nil || len(f.Instances) != 3 {
		t.Fatalf("provision retry after the resize: %v %v", instanceIDs(f), err)
	}
	if err := e.d.Terminate(ctx, f0.ID); err != nil {
		t.Fatal(err)
	}
}

func TestResizeConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image("v1")
	f0 := e.provision("tok-c", img.ID, 1)
	var wg sync.WaitGroup
	fleets := make([]contract.Fleet, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			d, err := Open(e.cfg) // as several workers would
			if err != nil {
				errs[i] = err
				return
			}
			fleets[i], errs[i] = d.Resize(ctx, f0.ID, 3)
		})
	}
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if fmt.Sprint(fleetPIDs(fleets[i])) != fmt.Sprint(fleetPIDs(fleets[0])) {
			t.Fatalf("resize %d got pids %v, resize 0 %v", i, fleetPIDs(fleets[i]), fleetPIDs(fleets[0]))
		}
	}
	e.checkFleet(fleets[0], "v1", 1, 2, 3)
	if err := e.d.Terminate(ctx, f0.ID); err != nil {
		t.Fatal(err)
	}
}

// TestResizeUnderLoad is a rolling step done the safe way, with clients on the
// router all along: grow, wait until the new instances are healthy, add them to
// the route; take instances out of the route, then shrink. No client sees an
// error.
func TestResizeUnderLoad(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := provider.New("local", e.d)
	f := e.provision("tok-l", e.image("v1").ID, 2)
	key := contract.RouteKey{Service: "web", Environment: "test"}
	route := func(f contract.Fleet) {
		t.Helper()
		if err := p.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{{FleetID: f.ID, Weight: 100, Targets: f.Addresses()}}}); err != nil {
			t.Fatal(err)
		}
	}
	route(f)
	r, err := p.Route(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	run := loadgen.Start(ctx, loadgen.Options{URL: "http://" + r.Listen + "/", Clients: 8, Timeout: 5 * time.Second})
	defer run.Stop()
	steady := func(what string) {
		t.Helper()
		n := run.Snapshot().Requests
		waitUntil(t, what, func() bool { return run.Snapshot().Requests >= n+500 })
	}
	steady("load on 2 instances")

	run.Mark("grow")
	big, err := p.Resize(ctx, f.ID, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range big.Instances {
		waitBody(t, "http://"+in.Address+"/healthz", "ok")
	}
	route(big)
	steady("load on 4 instances")

	run.Mark("shrink")
	route(contract.Fleet{ID: f.ID, Instances: big.Instances[:1]})
	small, err := p.Resize(ctx, f.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	steady("load on 1 instance")
	rep := run.Stop()
	for _, ph := range rep.Phases {
		t.Log(ph)
		if ph.Failures() != 0 || ph.Requests < 500 || ph.Bodies["v1"] != ph.Requests {
			t.Errorf("phase %s: %d requests, %d failures %q, bodies %v", ph.Name, ph.Requests, ph.Failures(), ph.ErrorSamples, ph.Bodies)
		}
	}
	e.checkFleet(small, "v1", 1)
	if err := e.d.StopRouter(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Terminate(ctx, f.ID); err != nil { // the driver's: the route still names the fleet
		t.Fatal(err)
	}
}
