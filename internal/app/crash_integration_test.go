package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/crash"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// The crash suite: the real imago-worker binary is killed with SIGKILL at exact
// activity boundaries (before an activity runs, after it returned but before its
// result was reported, or in the middle of a long one) by the internal/crash hook
// (IMAGO_CRASH_AT), and another worker is started. Every rollout or bake must end
// in the right state: the right image live, exactly the new fleet's instances
// alive (none leaked, none doubled), one inventory record per run, one image per
// input digest, and no request of the load running through the router failing.
//
// A result lost with a killed worker is retried only after the activity's
// timeout: 30 s StartToClose for quick activities, 20 s of heartbeat for Provision, the
// heartbeat timeout (5–30 s) for long ones. So the points run in groups, one
// Temporal server and IMAGO_HOME per group, groups in parallel, the points of a
// group one after another (rollouts alternate between v1 and v2).

// crashPoint is one IMAGO_CRASH_AT value, as a subtest.
type crashPoint struct {
	at   string
	slow bool // roll out v2slow (4 s to start), so WaitHealthy runs long enough to die in the middle
}

// crashTiming is what one point measured.
type crashTiming struct {
	group, at string
	toCrash   time.Duration // start of the rollout or bake → worker 1 dead
	recovery  time.Duration // worker 1 dead → rollout or bake finished on worker 2
	total     time.Duration
	requests  int
}

type crashTimings struct {
	mu   sync.Mutex
	list []crashTiming
}

func (c *crashTimings) add(t crashTiming) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, t)
}

func TestCrashSuite(t *testing.T) {
	start := time.Now()
	bin := workerBinary(t, crashTag) // the hook is compiled in only with the tag
	t.Logf("built imago-worker -tags %s in %s", crashTag, time.Since(start).Round(time.Millisecond))
	require.True(t, hasCrashHook(t, bin), "the crash suite's worker was built without the hook")

	timings := &crashTimings{}
	t.Cleanup(func() {
		sort.Slice(timings.list, func(i, j int) bool {
			if timings.list[i].group != timings.list[j].group {
				return timings.list[i].group < timings.list[j].group
			}
			return timings.list[i].at < timings.list[j].at
		})
		var b strings.Builder
		fmt.Fprintf(&b, "%d crash points, suite took %s\n", len(timings.list), time.Since(start).Round(time.Second))
		fmt.Fprintf(&b, "%-10s %-28s %10s %10s %10s %9s\n", "group", "IMAGO_CRASH_AT", "to crash", "recovery", "total", "requests")
		for _, p := range timings.list {
			fmt.Fprintf(&b, "%-10s %-28s %10s %10s %10s %9d\n", p.group, p.at,
				p.toCrash.Round(100*time.Millisecond), p.recovery.Round(100*time.Millisecond), p.total.Round(100*time.Millisecond), p.requests)
		}
		t.Log("\n" + b.String())
	})

	canary := func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{
			{SetWeight: ip(20)}, {Analysis: "errors"}, {SetWeight: ip(60)}, {Pause: &contract.Pause{Duration: durp(time.Second)}},
		}}
		r.Analyses = map[string]contract.Analysis{"errors": {Provider: "router", Metric: "errorRate", Max: f64(0.05),
			Interval: contract.Duration(time.Second), Count: 3, MinRequests: 20}}
	}
	groups := []struct {
		name   string
		mutate func(*spec.Rollout)
		points []crashPoint
	}{
		{"bg-a", nil, []crashPoint{
			{at: "before:Provision"}, {at: "mid:WaitHealthy", slow: true}, {at: "after:Provision"},
			{at: "before:WaitHealthy"}, {at: "before:ResolveImage"},
		}},
		{"bg-b", nil, []crashPoint{
			{at: "after:ReadRoute"}, {at: "after:WaitHealthy"}, {at: "before:RunChecks"}, {at: "after:RunChecks"},
			{at: "before:SetRoute"}, {at: "after:SetRoute"},
		}},
		{"bg-c", nil, []crashPoint{
			{at: "before:Terminate"}, {at: "after:Terminate"}, {at: "after:RecordDeployment"},
		}},
		{"canary", canary, []crashPoint{
			{at: "after:SetRoute#1"}, {at: "mid:RunAnalysis"}, {at: "after:RunAnalysis"},
			{at: "before:SetRoute#2"}, {at: "after:SetRoute#3"},
		}},
	}
	// The groups run side by side, each in its own goroutine (t.Run may be called
	// from several goroutines): most of a point's time is a timeout running out on
	// the Temporal server, not work, and t.Parallel would cap them at -parallel
	// (GOMAXPROCS).
	var wg sync.WaitGroup
	run := func(name string, fn func(t *testing.T)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, fn)
		}()
	}
	for _, g := range groups {
		run(g.name, func(t *testing.T) { crashRollouts(t, bin, g.name, g.mutate, g.points, timings) })
	}
	run("bake", func(t *testing.T) {
		crashBakes(t, bin, []string{
			"before:BakeBuild", "mid:BakeBuild@500ms", "after:BakeBuild", "mid:TestImage@100ms", "after:TestImage",
			"after:PublishImage", "after:MoveChannel",
		}, timings)
	})
	run("dev-mode", func(t *testing.T) { crashDevMode(t, bin) })
	wg.Wait()
}

// crashRollouts runs one group of rollout crash points on one Temporal server
// and home, under load through the router.
func crashRollouts(t *testing.T, bin, group string, mutate func(*spec.Rollout), points []crashPoint, timings *crashTimings) {
	e := newEnv(t)
	images := map[string]string{"v1": e.importImage("v1"), "v2": e.importImage("v2"), "v2slow": e.importImage("v2slow")}
	w0 := e.startCrashWorker(bin, "setup", "")
	_, err := e.rollout(e.spec(images["v1"]))
	require.NoError(t, err)
	w0.kill()
	live := "v1"

	for _, p := range points {
		if !t.Run(p.at, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			next := "v1"
			if live == "v1" {
				next = "v2"
			}
			if p.slow {
				next = "v2slow"
			}
			want := "hello from " + strings.TrimSuffix(next, "slow")
			r := e.spec(images[next], func(r *spec.Rollout) {
				r.Checks = []contract.Check{{Path: "/", ExpectBody: want}}
				if mutate != nil {
					mutate(r)
				}
			})

			w1 := e.startCrashWorker(bin, "crash", p.at)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: 2})
			defer load.Stop()
			e.waitRequests(load, 20)

			began := time.Now()
			run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "crash-suite"})
			require.NoError(t, err)
			died := w1.waitCrash(p.at, 2*time.Minute)
			w2 := e.startCrashWorker(bin, "resume", "")
			var res contract.RolloutResult
			err = run.Get(ctx, &res)
			ended := time.Now()
			if err != nil {
				e.logWhereItWaits(run.GetID(), run.GetRunID())
			}
			require.NoError(t, err, "the rollout must survive a kill -9 at %s: %s", p.at, errReason(err))

			load.Mark("after")
			e.waitRequests(load, 50)
			rep := load.Stop()
			assert.Zero(t, rep.Total.Failures(), "no request may fail across a crash at %s: %s", p.at, rep.Total.String())
			after, _ := rep.Phase("after")
			assert.Equal(t, after.Requests, after.Bodies[want], "after the rollout everything is %s: %s", next, after.String())
			assert.Equal(t, want, e.get())

			assert.Equal(t, images[next], res.ImageID)
			assert.Equal(t, 3, res.Instances)
			byFleet, routers := e.instances()
			assert.Equal(t, map[string]int{res.FleetID: 3}, byFleet, "exactly the new fleet's 3 instances: none leaked, none doubled")
			assert.Equal(t, 1, routers, "one router")
			assert.Equal(t, []string{res.FleetID}, e.fleetIDs())
			e.assertOneRecord(run.GetRunID())
			w2.kill()

			timings.add(crashTiming{group: group, at: p.at, toCrash: died.Sub(began), recovery: ended.Sub(died), total: ended.Sub(began), requests: rep.Total.Requests})
			t.Logf("%s: crashed %s after the start, recovered in %s", p.at, died.Sub(began).Round(time.Millisecond), ended.Sub(died).Round(time.Millisecond))
			live = next
		}) {
			// A failed point may leave the next one a running rollout: stop here.
			t.Fatalf("stopping group %s after %s failed", group, p.at)
		}
		e.t = t
	}
}

// assertOneRecord checks the inventory holds exactly one record of a run: a
// RecordDeployment retried after a crash must not record it twice.
func (e *env) assertOneRecord(runID string) {
	hist, err := e.deps.Catalog.History(context.Background(), "hello", "test", 0)
	require.NoError(e.t, err)
	n := 0
	for _, d := range hist {
		if d.RunID == runID {
			n++
			assert.Equal(e.t, contract.OutcomeSucceeded, d.Outcome)
		}
	}
	assert.Equal(e.t, 1, n, "one inventory record of run %s", runID)
}

// crashBakes bakes examples/hello once per point, each with its own VERSION (so
// its own input digest and a real build), killing the worker at the point.
func crashBakes(t *testing.T, bin string, points []string, timings *crashTimings) {
	e := newEnv(t)
	digests := map[string]string{} // input digest → image
	for i, at := range points {
		t.Run(at, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			b := helloBake(t)
			version := fmt.Sprintf("v2-crash-%d", i)
			b.Variables = map[string]string{"VERSION": version}
			require.NoError(t, b.Normalize())

			w1 := e.startCrashWorker(bin, "crash", at)
			began := time.Now()
			run, err := bakes.Start(ctx, e.client, b, "crash-suite")
			require.NoError(t, err)
			died := w1.waitCrash(at, 2*time.Minute)
			w2 := e.startCrashWorker(bin, "resume", "")
			var res contract.BakeResult
			err = run.Get(ctx, &res)
			ended := time.Now()
			if err != nil {
				e.logWhereItWaits(run.GetID(), run.GetRunID())
			}
			require.NoError(t, err, "the bake must survive a kill -9 at %s: %s", at, errReason(err))

			assert.False(t, res.Cached)
			assert.True(t, res.Tested)
			img, err := e.deps.Catalog.Get(ctx, res.ImageID)
			require.NoError(t, err)
			assert.Equal(t, res.InputDigest, img.InputDigest)
			latest, err := e.deps.Catalog.Channel(ctx, "hello", "latest")
			require.NoError(t, err)
			assert.Equal(t, res.ImageID, latest.ImageID, "the channel moved to the new image")
			digests[res.InputDigest] = res.ImageID
			imgs, err := e.deps.Catalog.List(ctx, "hello")
			require.NoError(t, err)
			per := map[string][]string{}
			for _, im := range imgs {
				per[im.InputDigest] = append(per[im.InputDigest], im.ID)
			}
			for d, ids := range per {
				assert.Len(t, ids, 1, "one image per input digest %s: %v", d, ids)
				assert.Contains(t, digests, d, "an image no bake returned: %v", ids)
			}
			assert.Len(t, imgs, len(digests), "one image per bake")
			byFleet, _ := e.instances()
			assert.Empty(t, byFleet, "the image test's instance must be terminated")
			assert.Empty(t, e.fleetIDs())
			w2.kill()

			timings.add(crashTiming{group: "bake", at: at, toCrash: died.Sub(began), recovery: ended.Sub(died), total: ended.Sub(began)})
			t.Logf("%s: crashed %s after the start, recovered in %s", at, died.Sub(began).Round(time.Millisecond), ended.Sub(died).Round(time.Millisecond))
		})
		e.t = t
	}
}

// crashDevMode kills the whole dev-mode imago-worker (embedded Temporal server on
// SQLite + worker) while a rollout waits for its fleet to become healthy, and
// again while a rollout soaks, and starts it again on the same home: the rollouts
// resume from the SQLite history and end with exactly the new fleet, and the load
// through the (detached) router never fails.
func crashDevMode(t *testing.T, bin string) {
	home := fleetHome(t)
	addr := freeAddr(t)
	cfg := Config{Home: home, TemporalAddress: addr}
	cfg.fill()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	deps, err := OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	e := &env{t: t, cfg: cfg, deps: deps, listen: freeAddr(t)}

	start := func(name string) (*crashWorker, time.Duration) {
		began := time.Now()
		w := e.startDevProcess(bin, name, addr)
		c, err := dialRetry(ctx, cfg)
		require.NoError(t, err)
		if e.client != nil {
			e.client.Close()
		}
		e.client = c
		return w, time.Since(began)
	}
	w, took := start("dev-1")
	t.Cleanup(func() {
		if e.client != nil {
			e.client.Close()
		}
	})
	t.Logf("dev mode: server + worker answering after %s", took)
	v1, v2 := e.importImage("v1"), e.importImage("v2slow")
	_, err = e.rollout(e.spec(v1))
	require.NoError(t, err)

	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + e.listen + "/", Clients: 2})
	defer load.Stop()
	e.waitRequests(load, 20)
	for i, step := range []struct {
		image, want string
		phase       contract.Phase
	}{
		{v2, "hello from v2", contract.PhaseWaitingHealthy},
		{v1, "hello from v1", contract.PhaseSoaking},
	} {
		run, err := rollouts.Start(ctx, e.client, e.spec(step.image, func(r *spec.Rollout) {
			r.Checks = []contract.Check{{Path: "/", ExpectBody: step.want}}
			s := contract.Duration(3 * time.Second)
			r.Soak = &s
		}), rollouts.StartOptions{StartedBy: "crash-suite"})
		require.NoError(t, err)
		e.waitPhase(step.phase)
		w.kill()
		killed := time.Now()
		var took time.Duration
		w, took = start(fmt.Sprintf("dev-%d", i+2))
		var res contract.RolloutResult
		err = e.client.GetWorkflow(ctx, run.GetID(), run.GetRunID()).Get(ctx, &res)
		require.NoError(t, err, "the rollout must resume after the whole process died in %s: %s", step.phase, errReason(err))
		t.Logf("dev mode killed in %s: restarted in %s, rollout finished %s after the kill",
			step.phase, took.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
		assert.Equal(t, step.want, e.get())
		byFleet, routers := e.instances()
		assert.Equal(t, map[string]int{res.FleetID: 3}, byFleet, "exactly the new fleet's 3 instances")
		assert.Equal(t, 1, routers)
		assert.Equal(t, []string{res.FleetID}, e.fleetIDs())
		e.assertOneRecord(run.GetRunID())
	}
	rep := load.Stop()
	assert.Zero(t, rep.Total.Failures(), "the router outlives the process: no request may fail: %s", rep.Total.String())
	w.kill()
}

// crashWorker is an imago-worker process of the crash suite.
type crashWorker struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func (e *env) startCrashWorker(bin, name, crashAt string) *crashWorker {
	return e.startProcess(bin, name, []string{"--log-level", "warn"}, append(os.Environ(),
		"TEMPORAL_ADDRESS="+e.cfg.TemporalAddress, "TEMPORAL_NAMESPACE="+e.cfg.Namespace, "IMAGO_HOME="+e.cfg.Home,
		crash.EnvVar+"="+crashAt))
}

// startDevProcess runs imago-worker in dev mode: no TEMPORAL_ADDRESS, so it embeds
// a Temporal server on SQLite under the home.
func (e *env) startDevProcess(bin, name, listen string) *crashWorker {
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, crash.EnvVar+"=") {
			environ = append(environ, kv)
		}
	}
	return e.startProcess(bin, name, []string{"--log-level", "warn", "--dev-listen", listen, "--ui-listen", ""},
		append(environ, "IMAGO_HOME="+e.cfg.Home))
}

func (e *env) startProcess(bin, name string, args, environ []string) *crashWorker {
	t := e.t
	cmd := exec.Command(bin, args...)
	cmd.Env = environ
	logf, err := os.CreateTemp(e.cfg.Home, "worker-"+name+"-*.log")
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	w := &crashWorker{t: t, name: name, cmd: cmd, log: logf.Name(), exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Logf("wait for worker %s: %v", name, err)
		}
		logf.Close()
		close(w.exited)
	}()
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			data, _ := os.ReadFile(w.log)
			t.Logf("worker %s log:\n%s", name, data)
		}
	})
	return w
}

// kill sends SIGKILL to the worker's process group and reaps it.
func (w *crashWorker) kill() {
	select {
	case <-w.exited:
		return
	default:
	}
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	<-w.exited
}

// waitCrash waits until the worker killed itself at the crash point and returns when.
func (w *crashWorker) waitCrash(at string, limit time.Duration) time.Time {
	t := w.t
	select {
	case <-w.exited:
	case <-time.After(limit):
		t.Fatalf("worker %s did not crash at %s within %s", w.name, at, limit)
	}
	died := time.Now()
	ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "worker %s ended with %s, not by SIGKILL", w.name, w.cmd.ProcessState)
	data, err := os.ReadFile(w.log)
	require.NoError(t, err)
	p, err := crash.Parse(at)
	require.NoError(t, err)
	require.Contains(t, string(data), "imago crash hook", "the hook killed the worker")
	require.Contains(t, string(data), p.String())
	if p.When == crash.Mid {
		require.Contains(t, string(data), "while it runs", "the activity was killed in its middle, not after it")
	}
	return died
}

// dialRetry dials until the dev-mode server answers.
func dialRetry(ctx context.Context, cfg Config) (client.Client, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := net.DialTimeout("tcp", cfg.TemporalAddress, time.Second)
		if err == nil {
			conn.Close()
			c, err := cfg.Dial(ctx)
			if err == nil {
				if _, err = c.CheckHealth(ctx, &client.CheckHealthRequest{}); err == nil {
					return c, nil
				}
				c.Close()
			}
			if time.Now().After(deadline) {
				return nil, err
			}
		} else if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// errReason is rollouts.Reason, or "" for no error.
func errReason(err error) string {
	if err == nil {
		return ""
	}
	return rollouts.Reason(err)
}
