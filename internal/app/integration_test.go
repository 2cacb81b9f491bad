package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/devserver"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// These integration tests run a real Temporal server in-process (temporaltest), the
// real worker code, and the local provider: real instance processes and a real
// router process (started by re-executing this test binary, as imago-worker
// re-executes itself).

var helloBuilds string // directory with v1/, v2/, v2slow/, v2slowhealth/ builds of examples/hello

func TestMain(m *testing.M) {
	OwnerOnly() // as imago and imago-worker do: the tests import images and start routers like them
	router.RunIfChild()
	local.RunSimIfChild() // sim fleets' hosts re-execute this test binary
	dir, err := os.MkdirTemp("", "imago-hello-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helloBuilds = dir
	code := func() int {
		defer os.RemoveAll(dir)
		for name, flags := range map[string]string{
			"v1":     "-X main.version=v1",
			"v2":     "-X main.version=v2",
			"v2slow": "-X main.version=v2 -X main.startDelay=4s",
			// /healthz answers in 2 s: a health check that asks its database.
			"v2slowhealth": "-X main.version=v2 -X main.healthLatency=2s",
		} {
			cmd := exec.Command("go", "build", "-ldflags", flags, "-o", filepath.Join(dir, name, "hello"), "github.com/imago/imago/examples/hello")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build hello %s: %v\n%s", name, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// env is one test's imago: a Temporal server, a home, and its dependencies.
type env struct {
	t      *testing.T
	ts     *temporaltest.TestServer
	client client.Client
	cfg    Config
	deps   *Deps
	listen string
	last   client.WorkflowRun // the last rollout, bake or reaper started through rollout(), bake() or reap()
}

// fleetHome is a temporary IMAGO_HOME whose instances and routers (detached
// processes that outlive the test otherwise) are killed when the test ends.
func fleetHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Cleanup(func() {
		if err := local.KillAll(home); err != nil {
			t.Errorf("kill processes of %s: %v", home, err)
		}
	})
	return home
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	home := fleetHome(t)
	// The test's clients and in-process workers seal payloads and failures, and
	// refuse plaintext, as imago-worker processes under home do (Config.Dial).
	dc, fc, err := Config{Home: home}.Converters(ctx)
	require.NoError(t, err)
	// The server runs with the embedded server's settings (one partition per
	// task queue, a quick transfer queue), as imago-worker's own does.
	// temporaltest's workers fail a workflow on any panic, so that a
	// nondeterminism fails the test; the SDK's deadlock detector (a workflow
	// goroutine that did not yield for 1 s) would then fail a rollout whose
	// worker was only starved of CPU by the rest of the suite (seen in CI under
	// load). A deadlock still fails, after 10 s.
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(client.Options{DataConverter: dc, FailureConverter: fc}),
		temporaltest.WithBaseWorkerOptions(worker.Options{DeadlockDetectionTimeout: 10 * time.Second}),
		temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(devserver.DynamicConfig())))
	c := ts.GetDefaultClient()
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)
	cfg := Config{Home: home, TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), Packer: packerBinary(t)}
	cfg.fill()
	deps, err := OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	return &env{t: t, ts: ts, client: c, cfg: cfg, deps: deps, listen: freeAddr(t)}
}

// startWorker runs the real worker registration in this process, on both task queues.
func (e *env) startWorker() {
	e.ts.NewWorker(contract.TaskQueue, func(r worker.Registry) { Register(r, e.deps.Activities) })
	e.ts.NewWorker(contract.BakeTaskQueue, func(r worker.Registry) { RegisterBake(r, e.deps.Activities) })
}

func (e *env) importImage(build string) string {
	img, err := e.deps.Catalog.Import(context.Background(), filepath.Join(helloBuilds, build), "hello", []string{"./hello"}, nil)
	require.NoError(e.t, err)
	return img.ID
}

func (e *env) spec(imageID string, mutate ...func(*spec.Rollout)) spec.Rollout {
	soak := contract.Duration(time.Second)
	r := spec.Rollout{Rollout: contract.Rollout{
		Service: "hello", Environment: "test", Image: contract.ImageRef{ID: imageID},
		Fleet: contract.FleetSpec{Size: 3}, Listen: e.listen,
		Health: contract.Health{Interval: contract.Duration(200 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
		Checks: []contract.Check{{Path: "/"}},
		Soak:   &soak,
	}}
	for _, m := range mutate {
		m(&r)
	}
	require.NoError(e.t, r.Normalize())
	return r
}

func (e *env) rollout(r spec.Rollout) (contract.RolloutResult, error) {
	return e.rolloutWithin(r, 2*time.Minute)
}

// rolloutWithin runs a rollout to its end, waiting at most d.
func (e *env) rolloutWithin(r spec.Rollout, d time.Duration) (contract.RolloutResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(e.t, err)
	e.last = run
	var res contract.RolloutResult
	err = run.Get(ctx, &res)
	return res, err
}

// get asks the router for / and returns the body.
func (e *env) get() string {
	resp, err := http.Get("http://" + e.listen + "/")
	require.NoError(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "router answered %s", body)
	return strings.TrimSpace(string(body))
}

// instances returns the live instance processes by fleet, and the number of routers.
func (e *env) instances() (map[string]int, int) {
	procs, err := e.deps.Local.Processes()
	require.NoError(e.t, err)
	byFleet, routers := map[string]int{}, 0
	for _, p := range procs {
		if p.Router != "" {
			routers++
			continue
		}
		byFleet[p.FleetID]++
	}
	return byFleet, routers
}

func (e *env) fleetIDs() []string {
	fleets, err := e.deps.Provider.ListFleets(context.Background(), provider.Filter{})
	require.NoError(e.t, err)
	var ids []string
	for _, f := range fleets {
		ids = append(ids, f.ID)
	}
	sort.Strings(ids)
	return ids
}

// packerBinary is the pinned packer from `make tools` (IMAGO_PACKER overrides).
func packerBinary(t *testing.T) string {
	if p := os.Getenv("IMAGO_PACKER"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "bin", "packer")
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestRolloutV1ThenV2ThroughTheRouter(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")

	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	assert.Equal(t, "hello from v1", e.get())
	assert.Equal(t, 3, res1.Instances)

	// While v2 soaks, a second rollout of the same service is refused by name.
	ctx := context.Background()
	run, err := rollouts.Start(ctx, e.client, e.spec(v2, func(r *spec.Rollout) {
		r.Checks = []contract.Check{{Path: "/", ExpectBody: "v2"}}
		s := contract.Duration(3 * time.Second)
		r.Soak = &s
	}), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	_, err = rollouts.Start(ctx, e.client, e.spec(v2), rollouts.StartOptions{StartedBy: "someone-else"})
	var running *rollouts.AlreadyRunningError
	require.ErrorAs(t, err, &running)
	assert.Equal(t, run.GetRunID(), running.RunID)
	assert.Contains(t, err.Error(), "rollout/test/hello is already running (run "+run.GetRunID()+")")

	var res2 contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res2))
	e.recordHistory("rollout-bluegreen-v1-to-v2", run.GetID(), run.GetRunID())
	assert.Equal(t, v2, res2.ImageID)
	assert.Equal(t, []string{res1.FleetID}, res2.Decommissioned)

	for i := 0; i < 20; i++ {
		require.Equal(t, "hello from v2", e.get())
	}
	byFleet, routers := e.instances()
	assert.Equal(t, map[string]int{res2.FleetID: 3}, byFleet, "only v2's three instances may be alive")
	assert.Equal(t, 1, routers)
	assert.Equal(t, []string{res2.FleetID}, e.fleetIDs())

	st, err := rollouts.Get(ctx, e.client, "hello", "test")
	require.NoError(t, err)
	assert.Equal(t, "Succeeded", st.Status)
	require.NotNil(t, st.Progress)
	assert.Equal(t, contract.PhaseSucceeded, st.Progress.Phase)

	list, err := rollouts.List(ctx, e.client, rollouts.ListOptions{Service: "hello"})
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, v2, list[0].Image)
	assert.Equal(t, contract.PhaseSucceeded, list[0].Phase)
}

func TestFailedSmokeCheckLeavesTheOldFleetServing(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	_, err = e.rollout(e.spec(v2, func(r *spec.Rollout) { r.Checks = []contract.Check{{Path: "/", ExpectBody: "v3"}} }))
	require.Error(t, err)
	e.recordHistory("rollout-failed-smoke-check", e.last.GetID(), e.last.GetRunID())
	msg := rollouts.Reason(err)
	assert.Contains(t, msg, "failed while validating the new fleet")
	assert.Contains(t, msg, `want a body containing "v3", got "hello from v2"`)
	assert.Contains(t, msg, "the previous fleet keeps serving")

	assert.Equal(t, "hello from v1", e.get())
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res1.FleetID: 3}, byFleet, "the v2 fleet must be torn down")
	assert.Equal(t, []string{res1.FleetID}, e.fleetIDs())
}

func TestHealthTimeoutTearsDownTheNewFleet(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v1 := e.importImage("v1")
	_, err := e.rollout(e.spec(v1, func(r *spec.Rollout) {
		r.Health.Path = "/missing"
		r.Health.Timeout = contract.Duration(2 * time.Second)
	}))
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "not healthy within 2s: 0 of 3 instances pass /missing")
	byFleet, routers := e.instances()
	assert.Empty(t, byFleet)
	assert.Zero(t, routers, "no route was ever set, so no router runs")
}

// A fleet of 3 whose /healthz answers in 2 s rolls out, and no activity of the
// rollout timed out or needed a second attempt on the way: the health wait
// heartbeats while its probes are in flight, not only after a round of them.
func TestASlowHealthEndpointRollsOutWithNoActivityTimeout(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	v2 := e.importImage("v2slowhealth")

	res, err := e.rollout(e.spec(v2))
	require.NoError(t, err)
	assert.Equal(t, "hello from v2", e.get())
	assert.Equal(t, 3, res.Instances)
	assert.Empty(t, e.activityRetries(e.last.GetID(), e.last.GetRunID()), "activities of the rollout that timed out or were retried")
	e.recordHistory("rollout-slow-health", e.last.GetID(), e.last.GetRunID())
}

// TestWorkerKilledMidRolloutResumesOnAnotherWorker runs the real imago-worker
// binary, kills it (SIGKILL) while the rollout waits for a slow fleet to become
// healthy, and starts another: the rollout completes with exactly one fleet of
// the right size.
func TestWorkerKilledMidRolloutResumesOnAnotherWorker(t *testing.T) {
	e := newEnv(t)
	bin := workerBinary(t, "")

	v1, v2 := e.importImage("v1"), e.importImage("v2slow")
	w1 := e.startWorkerProcess(bin, "first")
	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	ctx := context.Background()
	run, err := rollouts.Start(ctx, e.client, e.spec(v2), rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)
	e.waitPhase(contract.PhaseWaitingHealthy)
	w1.kill()

	e.startWorkerProcess(bin, "second")
	var res2 contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res2))
	assert.Equal(t, 3, res2.Instances)
	assert.Equal(t, "hello from v2", e.get())
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res2.FleetID: 3}, byFleet)
	assert.Equal(t, []string{res2.FleetID}, e.fleetIDs())
	assert.NotEqual(t, res1.FleetID, res2.FleetID)
}

type workerProcess struct {
	t   *testing.T
	cmd *exec.Cmd
}

// startWorkerProcess runs the imago-worker binary bin against the test's server
// and home, with env added to its environment. It starts from a shell's usual
// umask 022, so what it creates is owner-only only if imago makes it so.
func (e *env) startWorkerProcess(bin, name string, env ...string) *workerProcess {
	cmd := exec.Command("/bin/sh", "-c", `umask 022 && exec "$0" "$@"`, bin, "--log-level", "warn")
	cmd.Env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+e.cfg.TemporalAddress, "TEMPORAL_NAMESPACE="+e.cfg.Namespace, "IMAGO_HOME="+e.cfg.Home)
	cmd.Env = append(cmd.Env, env...)
	logf, err := os.Create(filepath.Join(e.cfg.Home, "worker-"+name+".log"))
	require.NoError(e.t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(e.t, cmd.Start())
	w := &workerProcess{t: e.t, cmd: cmd}
	e.t.Cleanup(func() {
		w.kill()
		logf.Close()
		if e.t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			e.t.Logf("worker %s log:\n%s", name, data)
		}
	})
	return w
}

// kill sends SIGKILL to the worker's process group and reaps it.
func (w *workerProcess) kill() {
	if w.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	err := w.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		w.t.Logf("wait for worker: %v", err)
	}
}

func (e *env) waitPhase(phase contract.Phase) {
	e.waitProgress("reach phase "+phase.String(), func(st rollouts.Status) bool {
		return st.Status == "Running" && st.Progress.Phase == phase
	})
}

// waitProgress polls the rollout's progress query until ok holds, for a minute.
func (e *env) waitProgress(what string, ok func(rollouts.Status) bool) {
	e.waitProgressOf("hello", time.Minute, what, ok)
}

// waitProgressOf polls the progress query of service's rollout in test until
// ok holds, for at most within.
func (e *env) waitProgressOf(service string, within time.Duration, what string, ok func(rollouts.Status) bool) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st, err := rollouts.Get(context.Background(), e.client, service, "test")
		if err == nil && st.Progress != nil && ok(st) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("rollout of %s did not %s within %s", service, what, within)
}
