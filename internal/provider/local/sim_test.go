package local

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// simImage imports a sim image answering version; byLabel marks it with the
// imago.kind label instead of the imago-sim entrypoint.
func (e *testEnv) simImage(version string, byLabel bool) contract.Image {
	e.t.Helper()
	dir := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("sim "+version+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	entry, labels := []string{SimEntrypoint}, map[string]string{"version": version}
	if byLabel {
		entry, labels[SimKindLabel] = []string{"./not-run"}, SimKind
	}
	img, err := testCatalog.Import(context.Background(), dir, "web", entry, labels)
	if err != nil {
		e.t.Fatal(err)
	}
	if !IsSimImage(img) {
		e.t.Fatalf("image %+v is not a sim image", img)
	}
	return img
}

// checkSim checks that f has exactly the instances numbered nums, all running on
// one sim host answering version, and that the host is the fleet's only process.
func (e *testEnv) checkSim(f contract.Fleet, version string, nums ...int) {
	e.t.Helper()
	var want []string
	for _, n := range nums {
		want = append(want, fmt.Sprintf("%s-%d", f.ID, n))
	}
	if got := instanceIDs(f); fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Fatalf("instances %v, want %v", got, want)
	}
	ps := e.fleetProcesses(f.ID)
	if len(ps) != 1 || !ps[0].Sim || ps[0].InstanceID != "" {
		e.t.Fatalf("processes of fleet %s: %+v, want one sim host", f.ID, ps)
	}
	addrs := map[string]bool{}
	for _, in := range f.Instances {
		if in.State != contract.InstanceRunning || in.PID != ps[0].PID || in.Address == "" {
			e.t.Fatalf("instance %+v, want running on sim host %d", in, ps[0].PID)
		}
		if addrs[in.Address] {
			e.t.Fatalf("address %s used twice", in.Address)
		}
		addrs[in.Address] = true
		waitBody(e.t, "http://"+in.Address+"/", version+"\n")
		waitBody(e.t, "http://"+in.Address+"/healthz", "ok\n")
	}
	d, err := e.d.Describe(context.Background(), f.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if fmt.Sprint(d.Addresses()) != fmt.Sprint(f.Addresses()) {
		e.t.Fatalf("Describe: addresses %v, want %v", d.Addresses(), f.Addresses())
	}
}

func refused(addr string) bool {
	_, _, err := httpGet("http://" + addr + "/healthz")
	return err != nil
}

func TestSimFleetLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.simImage("s1", false)
	req := contract.ProvisionRequest{Token: "sim-1", Service: "web", Environment: "test", ImageID: img.ID, Size: 4}

	f, err := e.d.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e.checkSim(f, "s1", 1, 2, 3, 4)

	// A retry adopts the fleet: same host, same addresses.
	again, err := e.d.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again.Addresses()) != fmt.Sprint(f.Addresses()) || again.Instances[0].PID != f.Instances[0].PID {
		t.Fatalf("retry changed the fleet: %+v, was %+v", again, f)
	}

	// Grow: the old listeners stay where they are.
	grown, err := e.d.Resize(ctx, f.ID, 7)
	if err != nil {
		t.Fatal(err)
	}
	e.checkSim(grown, "s1", 1, 2, 3, 4, 5, 6, 7)
	if fmt.Sprint(grown.Addresses()[:4]) != fmt.Sprint(f.Addresses()) {
		t.Fatalf("grow moved instances: %v, were %v", grown.Addresses()[:4], f.Addresses())
	}
	// The same Resize again changes nothing.
	if same, err := e.d.Resize(ctx, f.ID, 7); err != nil || fmt.Sprint(same.Addresses()) != fmt.Sprint(grown.Addresses()) {
		t.Fatalf("resize retry: %v %v, want %v", same.Addresses(), err, grown.Addresses())
	}

	// Shrink: the highest-numbered listeners close, the host stays.
	shrunk, err := e.d.Resize(ctx, f.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	e.checkSim(shrunk, "s1", 1, 2)
	if shrunk.Instances[0].PID != f.Instances[0].PID {
		t.Fatalf("shrink restarted the host")
	}
	for _, addr := range grown.Addresses()[2:] {
		if !refused(addr) {
			t.Fatalf("%s still answers after the shrink", addr)
		}
	}
	// A Provision retry with the original size keeps the resized fleet.
	if again, err = e.d.Provision(ctx, req); err != nil || len(again.Instances) != 2 {
		t.Fatalf("provision after resize: %d instances, %v", len(again.Instances), err)
	}

	// The host dies: every instance has exited; a retry starts a new host.
	killAndWait(t, f.Instances[0].PID)
	dead, err := e.d.Describe(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range dead.Instances {
		if in.State != contract.InstanceExited {
			t.Fatalf("instance %+v, want exited", in)
		}
	}
	repaired, err := e.d.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e.checkSim(repaired, "s1", 1, 2)
	if repaired.Instances[0].PID == f.Instances[0].PID {
		t.Fatalf("repaired fleet has the dead host's pid")
	}

	// Terminate stops the host and forgets the fleet and its run file.
	if err := e.d.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if ps := e.fleetProcesses(f.ID); len(ps) != 0 {
		t.Fatalf("processes left: %+v", ps)
	}
	for _, addr := range repaired.Addresses() {
		if !refused(addr) {
			t.Fatalf("%s still answers after Terminate", addr)
		}
	}
	if _, err := os.Stat(e.d.simRunFile(f.ID)); !os.IsNotExist(err) {
		t.Fatalf("run file: %v", err)
	}
	if _, err := e.d.Describe(ctx, f.ID); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("Describe after Terminate: %v", err)
	}
}

// TestSimInterruptedSync: a crash after the host opened listeners but before
// the driver recorded them leaves planned instances; the retry re-syncs the host
// by instance ID and never doubles an instance.
func TestSimInterruptedSync(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.simImage("s2", true)
	f, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: "sim-2", Service: "web", Environment: "test", ImageID: img.ID, Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Forget the pids, as if the driver died before recording them.
	st, err := e.d.readState(f.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range st.Fleet.Instances {
		st.Fleet.Instances[i].PID = 0
	}
	if err := e.d.writeState(st); err != nil {
		t.Fatal(err)
	}
	again, err := e.d.Resize(ctx, f.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	e.checkSim(again, "s2", 1, 2, 3)
	for _, addr := range f.Addresses() {
		if !refused(addr) && !contains(again.Addresses(), addr) {
			t.Fatalf("old listener %s still answers but is not recorded", addr)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestSimThousand: 1,000 instances in one process, grown and shrunk in waves.
func TestSimThousand(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.simImage("s3", false)
	start := time.Now()
	f, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: "sim-3", Service: "web", Environment: "test", ImageID: img.ID, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	for size := 200; size <= 1000; size += 100 {
		if f, err = e.d.Resize(ctx, f.ID, size); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("1,000 sim instances in %s", time.Since(start))
	if len(f.Instances) != 1000 {
		t.Fatalf("%d instances", len(f.Instances))
	}
	for i, in := range f.Instances {
		if in.State != contract.InstanceRunning {
			t.Fatalf("instance %+v not running", in)
		}
		if i%50 == 0 {
			waitBody(t, "http://"+in.Address+"/", "s3\n")
		}
	}
	if ps := e.fleetProcesses(f.ID); len(ps) != 1 {
		t.Fatalf("processes: %d, want 1 sim host", len(ps))
	}
	if f, err = e.d.Resize(ctx, f.ID, 10); err != nil || len(f.Instances) != 10 {
		t.Fatalf("shrink: %d instances, %v", len(f.Instances), err)
	}
	e.checkSim(f, "s3", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
}

// Two sim fleets of 10,000 run at once, as when a rolling rollout of 10,000
// reverts (the old fleet grows back before the new one is torn down): each
// fleet listens on its own loopback address, so neither runs out of ports.
// (Ports the kernel picks come from about 7,000 of the ephemeral range.)
func TestSimTwoFleetsOfTenThousand(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.simImage("s4", false)
	for _, token := range []string{"sim-4a", "sim-4b"} {
		f, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: token, Service: "web", Environment: "test", ImageID: img.ID, Size: 10000})
		if err != nil {
			t.Fatal(err)
		}
		ip := simIP(f.ID)
		addrs := map[string]bool{}
		for i, in := range f.Instances {
			host, _, _ := net.SplitHostPort(in.Address)
			if in.State != contract.InstanceRunning || host != ip || addrs[in.Address] {
				t.Fatalf("instance %+v: want running on %s, its address used once", in, ip)
			}
			addrs[in.Address] = true
			if i%500 == 0 {
				waitBody(t, "http://"+in.Address+"/healthz", "ok\n")
			}
		}
	}
}

// TestSimCommandNotASimHost: a program that does not call RunSimIfChild fails
// Provision at once with a clear error, instead of running as itself.
func TestSimCommandNotASimHost(t *testing.T) {
	e := newEnv(t)
	cfg := e.cfg
	cfg.SimCommand = []string{"/bin/true"}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	img := e.simImage("s4", false)
	_, err = d.Provision(context.Background(), contract.ProvisionRequest{Token: "sim-4", Service: "web", Environment: "test", ImageID: img.ID, Size: 1})
	if err == nil || provider.ErrorCode(err) != provider.FailedPrecondition {
		t.Fatalf("err = %v, want FailedPrecondition naming RunSimIfChild", err)
	}
	t.Log(err)
}

// TestSimStrayHostStopped: a fleet whose host log exists had a host started; when
// its run file is gone (the driver died before the host wrote it, say) the next
// start finds the old host by its environment and stops it, so the fleet never
// has two. A fleet that never had a host has no log and nothing to stop.
func TestSimStrayHostStopped(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.simImage("s3", true)
	f, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: "sim-3", Service: "web", Environment: "test", ImageID: img.ID, Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	old := e.fleetProcesses(f.ID)
	if len(old) != 1 {
		t.Fatalf("processes of fleet %s: %+v, want one sim host", f.ID, old)
	}
	if err := os.Remove(e.d.simRunFile(f.ID)); err != nil {
		t.Fatal(err)
	}
	again, err := e.d.Resize(ctx, f.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	e.checkSim(again, "s3", 1, 2, 3)
	if now := e.fleetProcesses(f.ID); now[0].PID == old[0].PID {
		t.Fatalf("sim host %d kept, want a new one after its run file was lost", old[0].PID)
	}
	never := "fleet-never-started"
	if _, err := os.Lstat(e.d.simHostLog(never)); !os.IsNotExist(err) {
		t.Fatalf("log of a fleet never started: %v, want none", err)
	}
	if err := e.d.stopStraySimHosts(ctx, never, e.d.simHostLog(never)); err != nil {
		t.Fatal(err)
	}
}
