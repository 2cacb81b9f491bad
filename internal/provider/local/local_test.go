package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/router"
)

// appDir holds the test application (testdata/hello), built once in TestMain;
// testCatalog is the image catalog shared by the tests (each test has its own Home).
var (
	appDir      string
	testCatalog *catalog.Catalog
	imagesMu    sync.Mutex
	images      = map[string]contract.Image{}
)

func TestMain(m *testing.M) {
	// Routers started by the driver re-execute this test binary.
	router.RunIfChild()
	// Sim hosts too.
	RunSimIfChild()

	tmp, err := os.MkdirTemp("", "imago-local-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	appDir = filepath.Join(tmp, "app")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(appDir, "hello"), "./testdata/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test app: %v\n%s", err, out)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	if testCatalog, err = catalog.Open(context.Background(), "file://"+filepath.Join(tmp, "catalog")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	code := m.Run()
	testCatalog.Close()
	os.RemoveAll(tmp)
	os.Exit(code)
}

type testEnv struct {
	t    *testing.T
	home string
	cfg  Config
	d    *Driver
}

// newEnv opens a driver on a fresh Home. Its cleanup kills
// every process of the Home (even when the test failed half way), checks that
// none is left, and makes the read-only image trees removable for t.TempDir.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	home := t.TempDir()
	e := &testEnv{t: t, home: home, cfg: Config{Home: home, Images: testCatalog}}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, home)
		}
		if err := CleanupHome(home); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if ps, err := processes(home); err != nil || len(ps) != 0 {
			t.Errorf("cleanup: processes left: %+v, %v", ps, err)
		}
	})
	var err error
	if e.d, err = Open(e.cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func dumpLogs(t *testing.T, home string) {
	filepath.WalkDir(filepath.Join(home, "logs"), func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			data, _ := os.ReadFile(p)
			if len(data) > 3000 {
				data = data[len(data)-3000:]
			}
			t.Logf("--- %s:\n%s", p, data)
		}
		return nil
	})
}

// image returns the image of the test app answering version (imported once).
func (e *testEnv) image(version string) contract.Image {
	e.t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if img, ok := images[version]; ok {
		return img
	}
	img, err := testCatalog.Import(context.Background(), appDir, "web", []string{"./hello", "-version=" + version}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	images[version] = img
	return img
}

func (e *testEnv) provision(token, imageID string, size int) contract.Fleet {
	e.t.Helper()
	f, err := e.d.Provision(context.Background(), contract.ProvisionRequest{
		Token: token, Service: "web", Environment: "test", ImageID: imageID, Size: size,
	})
	if err != nil {
		e.t.Fatalf("provision %s: %v", token, err)
	}
	for _, in := range f.Instances {
		waitBody(e.t, "http://"+in.Address+"/healthz", "ok")
	}
	return f
}

var client = &http.Client{Timeout: 10 * time.Second}

func httpGet(url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitBody polls url until it answers 200 with body want.
func waitBody(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, err := httpGet(url)
		if err == nil && code == 200 && body == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %q %v; want 200 %q", url, code, body, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUntil polls cond until it holds or 10s passed.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func whoami(t *testing.T, addr string) (pid int, instance string) {
	t.Helper()
	_, body, err := httpGet("http://" + addr + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		PID      int    `json:"pid"`
		Instance string `json:"instance"`
	}
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("whoami %s: %q: %v", addr, body, err)
	}
	return w.PID, w.Instance
}

func fleetPIDs(f contract.Fleet) []int {
	var out []int
	for _, in := range f.Instances {
		out = append(out, in.PID)
	}
	return out
}

func (e *testEnv) fleetProcesses(fleetID string) []Process {
	e.t.Helper()
	ps, err := e.d.Processes()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []Process
	for _, p := range ps {
		if p.FleetID == fleetID {
			out = append(out, p)
		}
	}
	return out
}

func killAndWait(t *testing.T, pid int) {
	t.Helper()
	start := startTimeOf(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, fmt.Sprintf("pid %d died", pid), func() bool { return !alive(pid, start) })
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestFleetLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image("v1")
	f := e.provision("tok-1", img.ID, 3)

	if f.ID != FleetID("tok-1") || !strings.HasPrefix(f.ID, "fl-") || len(f.ID) != 13 {
		t.Fatalf("fleet ID %q", f.ID)
	}
	if len(f.Instances) != 3 {
		t.Fatalf("%d instances, want 3", len(f.Instances))
	}
	pids, addrs := map[int]bool{}, map[string]bool{}
	for i, in := range f.Instances {
		if want := fmt.Sprintf("%s-%d", f.ID, i+1); in.ID != want || in.State != contract.InstanceRunning {
			t.Fatalf("instance %d: %+v, want ID %s running", i, in, want)
		}
		waitBody(t, "http://"+in.Address+"/", "v1")
		pid, id := whoami(t, in.Address)
		if pid != in.PID || id != in.ID {
			t.Fatalf("instance %s at %s is pid %d (%s), recorded pid %d", in.ID, in.Address, pid, id, in.PID)
		}
		pids[pid], addrs[in.Address] = true, true
	}
	if len(pids) != 3 || len(addrs) != 3 {
		t.Fatalf("pids %v addresses %v, want 3 distinct", pids, addrs)
	}
	if ps := e.fleetProcesses(f.ID); len(ps) != 3 {
		t.Fatalf("Processes: %+v, want 3", ps)
	}
	// The image was unpacked read-only; the log exists.
	if fi, err := os.Stat(filepath.Join(e.home, "images", img.ID, "hello")); err != nil || fi.Mode().Perm()&0o222 != 0 {
		t.Fatalf("unpacked image: %v %v", fi, err)
	}
	if data, err := os.ReadFile(filepath.Join(e.home, "logs", f.ID, f.Instances[0].ID+".log")); err != nil || !strings.Contains(string(data), "serving on") {
		t.Fatalf("instance log: %q %v", data, err)
	}

	// Same token: same fleet, same processes.
	f2, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: "tok-1", Service: "web", Environment: "test", ImageID: img.ID, Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if f2.ID != f.ID || fmt.Sprint(fleetPIDs(f2)) != fmt.Sprint(fleetPIDs(f)) {
		t.Fatalf("second provision: %v %v, want %s %v", f2.ID, fleetPIDs(f2), f.ID, fleetPIDs(f))
	}
	if ps := e.fleetProcesses(f.ID); len(ps) != 3 {
		t.Fatalf("Processes after retry: %+v, want 3", ps)
	}
	// The same token with another request is refused.
	_, err = e.d.Provision(ctx, contract.ProvisionRequest{Token: "tok-1", Service: "web", Environment: "test", ImageID: img.ID, Size: 5})
	if provider.ErrorCode(err) != provider.InvalidArgument {
		t.Fatalf("provision with a reused token and another size: %v, want InvalidArgument", err)
	}

	// A dead instance is reported exited, with how it ended (the driver started
	// it, so it learns that once it has reaped it), its log and the log's last
	// lines; then it is replaced.
	dead := f.Instances[1]
	killAndWait(t, dead.PID)
	var d1 contract.Fleet
	waitUntil(t, "describe reports how the killed instance ended", func() bool {
		if d1, err = e.d.Describe(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
		return d1.Instances[1].Exit != ""
	})
	if got := d1.Instances[1]; got.State != contract.InstanceExited || got.Exit != "signal: killed" ||
		got.Log != filepath.Join(e.home, "logs", f.ID, dead.ID+".log") || len(got.LogTail) == 0 {
		t.Fatalf("describe after kill: instance %+v, want exited by signal: killed with its log", got)
	}
	if d1.Instances[0].State != contract.InstanceRunning || d1.Instances[0].Log != "" {
		t.Fatalf("describe after kill: instance %+v, want running (and no log reported)", d1.Instances[0])
	}
	f3, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: "tok-1", Service: "web", Environment: "test", ImageID: img.ID, Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if f3.Instances[1].PID == dead.PID || f3.Instances[0].PID != f.Instances[0].PID || f3.Instances[2].PID != f.Instances[2].PID {
		t.Fatalf("repair: pids %v, was %v", fleetPIDs(f3), fleetPIDs(f))
	}
	waitBody(t, "http://"+f3.Instances[1].Address+"/", "v1")
	if ps := e.fleetProcesses(f.ID); len(ps) != 3 {
		t.Fatalf("Processes after repair: %+v, want 3", ps)
	}

	d2, err := e.d.Describe(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range d2.Instances {
		if in.State != contract.InstanceRunning {
			t.Fatalf("describe: %+v", d2.Instances)
		}
	}
	if d2.Service != "web" || d2.Environment != "test" || d2.ImageID != img.ID || d2.Token != "tok-1" || d2.Created.IsZero() {
		t.Fatalf("describe: %+v", d2)
	}
	if _, err := e.d.Describe(ctx, "fl-nothere"); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("describe unknown fleet: %v, want NotFound", err)
	}

	list, err := e.d.ListFleets(ctx, provider.Filter{Service: "web"})
	if err != nil || len(list) != 1 || list[0].ID != f.ID {
		t.Fatalf("ListFleets: %+v %v", list, err)
	}
	if list, _ := e.d.ListFleets(ctx, provider.Filter{Environment: "prod"}); len(list) != 0 {
		t.Fatalf("ListFleets(prod): %+v", list)
	}

	if err := e.d.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if ps, _ := e.d.Processes(); len(ps) != 0 {
		t.Fatalf("processes after Terminate: %+v", ps)
	}
	for _, pid := range fleetPIDs(f3) {
		if alive(pid, 0) {
			t.Fatalf("pid %d alive after Terminate", pid)
		}
	}
	if _, err := e.d.Describe(ctx, f.ID); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("describe after terminate: %v, want NotFound", err)
	}
	if err := e.d.Terminate(ctx, f.ID); err != nil {
		t.Fatalf("second Terminate: %v", err)
	}
	if list, _ := e.d.ListFleets(ctx, provider.Filter{}); len(list) != 0 {
		t.Fatalf("ListFleets after terminate: %+v", list)
	}
	// The instances stopped gracefully (SIGTERM), not killed.
	if data, _ := os.ReadFile(filepath.Join(e.home, "logs", f.ID, f.Instances[0].ID+".log")); !strings.Contains(string(data), "shutting down") {
		t.Errorf("instance log lacks the graceful shutdown: %s", data)
	}
}

func TestProvisionConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image("v1")
	var wg sync.WaitGroup
	fleets := make([]contract.Fleet, 6)
	errs := make([]error, 6)
	for i := range 6 {
		wg.Go(func() {
			// Three requests each for two tokens, all of one image that is not unpacked yet.
			fleets[i], errs[i] = e.d.Provision(ctx, contract.ProvisionRequest{
				Token: "tok-" + strconv.Itoa(i%2), Service: "web", Environment: "test", ImageID: img.ID, Size: 2,
			})
		})
	}
	wg.Wait()
	for i := range 6 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if fmt.Sprint(fleetPIDs(fleets[i])) != fmt.Sprint(fleetPIDs(fleets[i%2])) {
			t.Fatalf("request %d got pids %v, request %d %v", i, fleetPIDs(fleets[i]), i%2, fleetPIDs(fleets[i%2]))
		}
	}
	ps, err := e.d.Processes()
	if err != nil || len(ps) != 4 {
		t.Fatalf("Processes: %+v %v, want 4", ps, err)
	}
	for _, f := range fleets[:2] {
		if err := e.d.Terminate(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	if ps, _ := e.d.Processes(); len(ps) != 0 {
		t.Fatalf("processes after Terminate: %+v", ps)
	}
}

// TestProvisionAdoptsUnrecordedProcess simulates a worker that crashed after it
// started an instance process and before it recorded its pid: a new driver must
// adopt that process, not start a second one.
func TestProvisionAdoptsUnrecordedProcess(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image("v1")
	req := contract.ProvisionRequest{Token: "tok-crash", Service: "web", Environment: "test", ImageID: img.ID, Size: 3}
	crash := errors.New("simulated crash")
	e.d.afterSpawn = func(id string) error {
		if strings.HasSuffix(id, "-2") {
			return crash
		}
		return nil
	}
	if _, err := e.d.Provision(ctx, req); !errors.Is(err, crash) {
		t.Fatalf("provision: %v, want the simulated crash", err)
	}
	id := FleetID(req.Token)
	st, err := e.d.readState(id)
	if err != nil {
		t.Fatal(err)
	}
	planned := st.Fleet.Instances[1]
	if planned.PID != 0 || planned.Address == "" || st.Fleet.Instances[2].Address != "" {
		t.Fatalf("state after the crash: %+v", st.Fleet.Instances)
	}
	var orphan int
	for _, p := range e.fleetProcesses(id) {
		if p.InstanceID == planned.ID {
			orphan = p.PID
		}
	}
	if orphan == 0 {
		t.Fatalf("no running process for planned instance %s", planned.ID)
	}
	waitBody(t, "http://"+planned.Address+"/healthz", "ok")

	d2, err := Open(e.cfg) // a new worker
	if err != nil {
		t.Fatal(err)
	}
	f, err := d2.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if f.Instances[1].PID != orphan || f.Instances[1].Address != planned.Address {
		t.Fatalf("instance 2: %+v, want the orphan pid %d at %s adopted", f.Instances[1], orphan, planned.Address)
	}
	for _, in := range f.Instances {
		if in.State != contract.InstanceRunning {
			t.Fatalf("instances: %+v", f.Instances)
		}
		waitBody(t, "http://"+in.Address+"/", "v1")
	}
	if ps := e.fleetProcesses(id); len(ps) != 3 {
		t.Fatalf("Processes: %+v, want 3 (no fourth)", ps)
	}
	// The adopted process was not started by d2; Terminate still stops it.
	if err := d2.Terminate(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ps, _ := e.d.Processes(); len(ps) != 0 {
		t.Fatalf("processes after Terminate: %+v", ps)
	}
}

func TestProvisionErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.d.Provision(ctx, contract.ProvisionRequest{Token: "t", Service: "web", Environment: "test", ImageID: "img-000000000000", Size: 1})
	if provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("unknown image: %v, want NotFound", err)
	}
	_, err = e.d.Provision(ctx, contract.ProvisionRequest{Token: "t", Service: "../x", Environment: "test", ImageID: "img-000000000000", Size: 1})
	if provider.ErrorCode(err) != provider.InvalidArgument {
		t.Fatalf("bad service name: %v, want InvalidArgument", err)
	}
}

var requestsRE = regexp.MustCompile(`(?m)^imago_router_requests_total\{fleet="([^"]+)"\} (\d+)$`)

func routerRequests(t *testing.T, admin string) map[string]int {
	t.Helper()
	m, err := router.GetMetrics(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, sm := range requestsRE.FindAllStringSubmatch(m, -1) {
		out[sm[1]], _ = strconv.Atoi(sm[2])
	}
	if !strings.Contains(m, "# TYPE imago_router_request_duration_seconds histogram") {
		t.Fatalf("metrics lack the latency histogram:\n%s", m)
	}
	return out
}

// countAnswers sends n GETs through the router and counts the bodies.
func countAnswers(t *testing.T, listen string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := range n {
		code, body, err := httpGet("http://" + listen + "/")
		if err != nil || code != 200 {
			t.Fatalf("request %d through the router: %d %q %v", i, code, body, err)
		}
		counts[body]++
	}
	return counts
}

func TestRouter(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	fa := e.provision("tok-a", e.image("A").ID, 2)
	fb := e.provision("tok-b", e.image("B").ID, 2)
	key := contract.RouteKey{Service: "web", Environment: "test"}
	backend := func(f contract.Fleet, w int) contract.Backend {
		return contract.Backend{FleetID: f.ID, Weight: w, Targets: f.Addresses()}
	}

	if r, err := e.d.Route(ctx, key); err != nil || r.Listen != "" || len(r.Backends) != 0 {
		t.Fatalf("Route before SetRoute: %+v %v", r, err)
	}
	if _, err := e.d.RouterProcess(key); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("RouterProcess before SetRoute: %v", err)
	}

	listen := freeAddr(t)
	if err := e.d.SetRoute(ctx, key, contract.Route{Listen: listen, Backends: []contract.Backend{backend(fa, 100)}}); err != nil {
		t.Fatal(err)
	}
	ri, err := e.d.RouterProcess(key)
	if err != nil {
		t.Fatal(err)
	}
	if ri.Listen != listen {
		t.Fatalf("router listens on %s, want %s", ri.Listen, listen)
	}
	if c := countAnswers(t, listen, 50); c["A"] != 50 {
		t.Fatalf("100%% A: %v", c)
	}

	// Switch: once SetRoute returns, every request goes to B.
	if err := e.d.SetRoute(ctx, key, contract.Route{Listen: listen, Backends: []contract.Backend{backend(fb, 100)}}); err != nil {
		t.Fatal(err)
	}
	if c := countAnswers(t, listen, 100); c["B"] != 100 {
		t.Fatalf("100%% B right after SetRoute: %v", c)
	}

	// 30/70.
	if err := e.d.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{backend(fa, 30), backend(fb, 70)}}); err != nil {
		t.Fatal(err)
	}
	c := countAnswers(t, listen, 2000)
	if pa := c["A"] * 100 / 2000; pa < 25 || pa > 35 || c["A"]+c["B"] != 2000 {
		t.Fatalf("30/70 split: %v", c)
	}
	t.Logf("30/70 split over 2000 requests: %v", c)

	// Metrics per fleet. The router counts a request after its handler returns,
	// which can be just after the client read the whole answer: poll.
	var m map[string]int
	deadline := time.Now().Add(5 * time.Second)
	for m = routerRequests(t, ri.Admin); m[fa.ID] != 50+c["A"] || m[fb.ID] != 100+c["B"]; m = routerRequests(t, ri.Admin) {
		if time.Now().After(deadline) {
			t.Fatalf("metrics %v, want %s=%d %s=%d", m, fa.ID, 50+c["A"], fb.ID, 100+c["B"])
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, err := router.GetStatus(ctx, ri.Admin); err != nil || st.Generation != 3 || len(st.Backends) != 2 {
		t.Fatalf("router status: %+v %v", st, err)
	}

	// A slow request started on A finishes on A after the switch to B.
	if err := e.d.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{backend(fa, 100)}}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		code, body, err := httpGet("http://" + listen + "/slow?d=1500ms")
		slow <- result{code, body, err}
	}()
	waitUntil(t, "the slow request is in flight on fleet A", func() bool {
		n := 0
		for _, in := range fa.Instances {
			_, body, _ := httpGet("http://" + in.Address + "/inflight")
			v, _ := strconv.Atoi(body)
			n += v
		}
		return n > 0
	})
	if err := e.d.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{backend(fb, 100)}}); err != nil {
		t.Fatal(err)
	}
	if c := countAnswers(t, listen, 10); c["B"] != 10 {
		t.Fatalf("after the switch: %v", c)
	}
	if r := <-slow; r.err != nil || r.code != 200 || r.body != "A" {
		t.Fatalf("in-flight request: %+v, want 200 A", r)
	}

	// A dead instance never shows as an error: refused connections are retried
	// on the other instance of the fleet.
	killAndWait(t, fb.Instances[0].PID)
	if c := countAnswers(t, listen, 50); c["B"] != 50 {
		t.Fatalf("with one B instance dead: %v", c)
	}

	// The router outlives the driver: a new driver on the same Home sees it.
	d2, err := Open(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d2.Route(ctx, key)
	if err != nil || r.Listen != listen || len(r.Backends) != 1 || r.Backends[0].FleetID != fb.ID || r.Backends[0].Weight != 100 {
		t.Fatalf("Route from a new driver: %+v %v", r, err)
	}
	if err := d2.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{backend(fa, 100)}}); err != nil {
		t.Fatal(err)
	}
	if ri2, err := d2.RouterProcess(key); err != nil || ri2.PID != ri.PID {
		t.Fatalf("router after a new driver's SetRoute: %+v %v, want pid %d", ri2, err, ri.PID)
	}
	if c := countAnswers(t, listen, 20); c["A"] != 20 {
		t.Fatalf("after the new driver's switch: %v", c)
	}

	// A running router cannot move.
	err = d2.SetRoute(ctx, key, contract.Route{Listen: freeAddr(t), Backends: []contract.Backend{backend(fa, 100)}})
	if provider.ErrorCode(err) != provider.InvalidArgument {
		t.Fatalf("listen change: %v, want InvalidArgument", err)
	}

	// The portable traffic guard works on top of the driver.
	p := provider.New("local", d2)
	if err := p.Terminate(ctx, fa.ID); provider.ErrorCode(err) != provider.FailedPrecondition {
		t.Fatalf("terminate a routed fleet: %v, want FailedPrecondition", err)
	}
	if err := p.Terminate(ctx, fb.ID); err != nil {
		t.Fatal(err)
	}

	// Stop the router: the route stays; the next SetRoute starts a new router on
	// the same address.
	if err := d2.StopRouter(ctx, key); err != nil {
		t.Fatal(err)
	}
	if alive(ri.PID, ri.StartTime) {
		t.Fatal("router alive after StopRouter")
	}
	if _, err := d2.RouterProcess(key); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("RouterProcess after StopRouter: %v", err)
	}
	if r, _ := d2.Route(ctx, key); r.Listen != listen {
		t.Fatalf("Route after StopRouter: %+v", r)
	}
	if err := d2.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{backend(fa, 100)}}); err != nil {
		t.Fatal(err)
	}
	if c := countAnswers(t, listen, 10); c["A"] != 10 {
		t.Fatalf("after the router restart: %v", c)
	}
	if err := d2.StopRouter(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := d2.StopRouter(ctx, key); err != nil {
		t.Fatalf("second StopRouter: %v", err)
	}
	if err := d2.Terminate(ctx, fa.ID); err != nil {
		t.Fatal(err)
	}
	if ps, _ := e.d.Processes(); len(ps) != 0 {
		t.Fatalf("processes after cleanup: %+v", ps)
	}
}

func TestRouterListenInUse(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	key := contract.RouteKey{Service: "web", Environment: "busy"}
	err = e.d.SetRoute(ctx, key, contract.Route{Listen: addr, Backends: []contract.Backend{{FleetID: "fl-x", Weight: 100, Targets: []string{"127.0.0.1:1"}}}})
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("SetRoute on a busy address: %v", err)
	}
	t.Logf("error: %v", err)
	if ps, _ := e.d.Processes(); len(ps) != 0 {
		t.Fatalf("processes left: %+v", ps)
	}
}

func TestRouterDefaultListen(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	f := e.provision("tok-a", e.image("A").ID, 1)
	key := contract.RouteKey{Service: "web", Environment: "test"}
	if err := e.d.SetRoute(ctx, key, contract.Route{Backends: []contract.Backend{{FleetID: f.ID, Weight: 100, Targets: f.Addresses()}}}); err != nil {
		t.Fatal(err)
	}
	r, err := e.d.Route(ctx, key)
	if err != nil || r.Listen == "" {
		t.Fatalf("Route: %+v %v", r, err)
	}
	waitBody(t, "http://"+r.Listen+"/", "A")
	if err := e.d.StopRouter(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRouterCommandNotARouter(t *testing.T) {
	e := newEnv(t)
	cfg := e.cfg
	cfg.RouterCommand = []string{"/bin/sh", "-c", "echo this is not a router"}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = d.SetRoute(context.Background(), contract.RouteKey{Service: "web", Environment: "test"},
		contract.Route{Listen: freeAddr(t), Backends: []contract.Backend{{FleetID: "fl-x", Weight: 100, Targets: []string{"127.0.0.1:1"}}}})
	if err == nil || !strings.Contains(err.Error(), "RunIfChild") || !strings.Contains(err.Error(), "this is not a router") {
		t.Fatalf("SetRoute with a command that is no router: %v", err)
	}
}
