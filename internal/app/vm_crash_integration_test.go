package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/crash"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// TestVMWorkerKilledWhileProvisioningAdoptsTheVMs: the imago-worker process
// running a rollout of 2 VMs (qemu provider, TCG, 128 MB guests) is killed
// with SIGKILL while its Provision activity runs: by the test as soon as the
// first VM's QEMU process exists, or at the latest by the crash hook when
// Provision returns (after:Provision), so the activity's result is never
// reported. A second worker retries Provision with the same token: it adopts
// the VMs the first one started and starts only the missing ones. The rollout
// finishes with exactly 2 QEMU processes (counted in /proc, and as the
// provider reports them), none doubled, one router.
func TestVMWorkerKilledWhileProvisioningAdoptsTheVMs(t *testing.T) {
	began := time.Now()
	bin := workerBinary(t, crashTag)
	t.Logf("imago-worker -tags %s: %s", crashTag, time.Since(began).Round(time.Millisecond))
	e := newEnv(t)
	e.openQemu()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	start := func(name, at string) *crashWorker {
		return e.startProcess(bin, name, []string{"--log-level", "warn"}, append(os.Environ(),
			"TEMPORAL_ADDRESS="+e.cfg.TemporalAddress, "TEMPORAL_NAMESPACE="+e.cfg.Namespace, "IMAGO_HOME="+e.cfg.Home,
			"IMAGO_PROVIDER_URL="+qemuURL, crash.EnvVar+"="+at))
	}

	w0 := start("setup", "")
	res, err := e.bake(helloVMBake(t, "v1", nil))
	requireOK(t, err)
	w0.kill()
	t.Logf("VM bake on worker 0 done %s after the start", time.Since(began).Round(time.Millisecond))

	w1 := start("crash", "after:Provision")
	r := e.spec(res.ImageID, func(r *spec.Rollout) {
		r.Service, r.Provider = "hello-vm", "qemu"
		r.Fleet.Size = 2
		r.Health.Timeout = contract.Duration(3 * time.Minute)
		r.Checks = []contract.Check{{Path: "/", ExpectBody: "v1"}}
	})
	rolloutStart := time.Now()
	run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "vm-crash-test"})
	require.NoError(t, err)

	// Kill worker 1 as soon as a VM of the new fleet runs (or find the hook
	// killed it first).
	deadline := time.Now().Add(2 * time.Minute)
	var atKill int
	for {
		select {
		case <-w1.exited:
		default:
			if n := len(qemuProcs(t, e.cfg.Home)); n == 0 {
				require.True(t, time.Now().Before(deadline), "no VM started within 2m")
				time.Sleep(5 * time.Millisecond)
				continue
			}
			w1.kill()
		}
		break
	}
	died := time.Now()
	atKill = len(qemuProcs(t, e.cfg.Home))
	logged, err := os.ReadFile(w1.log)
	require.NoError(t, err)
	by := "the test, with SIGKILL, as the first VM appeared"
	if bytes.Contains(logged, []byte("imago crash hook")) {
		by = "the crash hook (after:Provision, before its result was reported)"
	}
	t.Logf("worker 1 killed %s after the rollout started, by %s, with %d VM(s) running", died.Sub(rolloutStart).Round(time.Millisecond), by, atKill)
	require.Positive(t, atKill, "a VM ran when worker 1 died")
	adopted := qemuProcs(t, e.cfg.Home)

	w2 := start("resume", "")
	var out contract.RolloutResult
	err = run.Get(ctx, &out)
	require.NoError(t, err, "the rollout must survive a kill -9 during Provision: %s", errReason(err))
	t.Logf("rollout finished %s after the kill (%s after its start)", time.Since(died).Round(time.Millisecond), time.Since(rolloutStart).Round(time.Millisecond))

	assert.Equal(t, res.ImageID, out.ImageID)
	assert.Equal(t, 2, out.Instances)
	assert.Equal(t, "hello from v1", e.get())
	procs := qemuProcs(t, e.cfg.Home)
	assert.Len(t, procs, 2, "exactly 2 QEMU processes: none doubled, none leaked: %v", procs)
	for pid := range adopted {
		assert.Contains(t, procs, pid, "the VM worker 1 started (pid %d) was adopted, not replaced", pid)
	}
	byFleet, routers := e.instances()
	assert.Equal(t, map[string]int{out.FleetID: 2}, byFleet, "the provider's view: the new fleet's 2 VMs")
	assert.Equal(t, 1, routers)
	assert.Equal(t, []string{out.FleetID}, e.fleetIDs(), "one fleet: the retried Provision made no second one")
	fleet, err := e.deps.Provider.Describe(ctx, out.FleetID)
	require.NoError(t, err)
	require.Len(t, fleet.Instances, 2)
	for _, in := range fleet.Instances {
		assert.Equal(t, contract.InstanceRunning, in.State, "%+v", in)
		assert.Contains(t, procs, in.PID, "instance %s is a QEMU process of this home", in.ID)
	}
	w2.kill()
	t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
}

// qemuProcs finds the QEMU processes booting disks under home (by their
// command lines in /proc, not by imago's markers): pid → command line.
func qemuProcs(t *testing.T, home string) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	out := map[int]string{}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if filepath.Base(args[0]) == "qemu-system-x86_64" && strings.Contains(string(data), filepath.Join(home, "vms")+"/") {
			out[pid] = strings.Join(args, " ")
		}
	}
	return out
}
