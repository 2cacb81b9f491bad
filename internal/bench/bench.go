// Package bench is imago's benchmark harness: scenarios (P1, P2, ...) register
// themselves in init, cmd/imago-bench runs them and prints one table.
//
// Every figure is a median (or a percentile) of at least Env.Runs runs, and every
// comparison is a ratio measured in the same run of the harness.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/devserver"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// Figure is one row of the table.
type Figure struct {
	ID, Name, Value, Goal string
	Met                   bool
}

// Scenario measures one or more figures.
type Scenario struct {
	ID, Name string
	Run      func(ctx context.Context, env *Env) ([]Figure, error)
}

// Env is what a scenario runs with.
type Env struct {
	Root string // repository root
	Bin  string // directory with imago-worker, packer
	Runs int    // runs per figure, ≥ 5
	Logf func(string, ...any)

	mu     sync.Mutex
	builds map[string]string // ldflags → directory holding ./hello
	tmp    string            // lazily created scratch directory, removed by Cleanup
}

var (
	regMu     sync.Mutex
	scenarios = map[string]Scenario{}
)

// Register adds a scenario; call it from init. A duplicate ID panics.
func Register(s Scenario) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := scenarios[s.ID]; dup {
		panic("bench: scenario " + s.ID + " registered twice")
	}
	scenarios[s.ID] = s
}

// Scenarios returns the registered scenarios ordered by ID (P1, P2, ..., P10).
func Scenarios() []Scenario {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Scenario, 0, len(scenarios))
	for _, s := range scenarios {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out
}

func idLess(a, b string) bool {
	var na, nb int
	_, ea := fmt.Sscanf(a, "P%d", &na)
	_, eb := fmt.Sscanf(b, "P%d", &nb)
	if ea == nil && eb == nil && na != nb {
		return na < nb
	}
	return a < b
}

// Result is one scenario's outcome.
type Result struct {
	Scenario Scenario
	Figures  []Figure
	Err      error
	Elapsed  time.Duration
}

// RunAll runs the scenarios whose ID is in only (all when only is empty), one after
// the other. A scenario that errors or panics records its error; the rest still run.
func RunAll(ctx context.Context, env *Env, only []string) []Result {
	want := map[string]bool{}
	for _, id := range only {
		if id = strings.TrimSpace(id); id != "" {
			want[strings.ToUpper(id)] = true
		}
	}
	var results []Result
	for _, s := range Scenarios() {
		if len(want) > 0 && !want[strings.ToUpper(s.ID)] {
			continue
		}
		env.logf("%s %s: running", s.ID, s.Name)
		start := time.Now()
		figs, err := runOne(ctx, env, s)
		r := Result{Scenario: s, Figures: figs, Err: err, Elapsed: time.Since(start)}
		if err != nil {
			env.logf("%s: error after %s: %v", s.ID, r.Elapsed.Round(time.Second), err)
		} else {
			env.logf("%s: done in %s", s.ID, r.Elapsed.Round(time.Second))
		}
		for _, f := range figs {
			env.logf("  %s %s = %s (goal %s, met %v)", f.ID, f.Name, f.Value, f.Goal, f.Met)
		}
		results = append(results, r)
	}
	return results
}

func runOne(ctx context.Context, env *Env, s Scenario) (figs []Figure, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return s.Run(ctx, env)
}

// Rows flattens results into table rows: a failed scenario keeps the figures it
// returned and gets one more row carrying its error.
func Rows(results []Result) []Figure {
	var rows []Figure
	for _, r := range results {
		for _, f := range r.Figures {
			if f.ID == "" {
				f.ID = r.Scenario.ID
			}
			rows = append(rows, f)
		}
		if r.Err != nil {
			msg := strings.Join(strings.Fields(r.Err.Error()), " ")
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			rows = append(rows, Figure{ID: r.Scenario.ID, Name: r.Scenario.Name, Value: "error: " + msg, Goal: "-"})
		}
	}
	return rows
}

// Table renders rows as a Markdown table (readable as plain text too).
func Table(rows []Figure) string {
	head := []string{"ID", "Figure", "Value", "Goal", "Met"}
	cells := [][]string{head}
	for _, f := range rows {
		met := "no"
		if f.Met {
			met = "yes"
		}
		cells = append(cells, []string{f.ID, esc(f.Name), esc(f.Value), esc(f.Goal), met})
	}
	width := make([]int, len(head))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	line(cells[0])
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, row := range cells[1:] {
		line(row)
	}
	return b.String()
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// Cleanup removes what the harness created (hello builds, scratch directories).
func (e *Env) Cleanup() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
		e.tmp = ""
	}
	e.builds = nil
}

func (e *Env) scratch() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tmp == "" {
		d, err := os.MkdirTemp("", "imago-bench-")
		if err != nil {
			return "", err
		}
		e.tmp = d
	}
	return e.tmp, nil
}

// TempHome makes a fresh directory (an IMAGO_HOME, say); cleanup kills every
// process the local driver started under it and removes it.
func (e *Env) TempHome(prefix string) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "imago-bench-"+prefix+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		if err := local.KillAll(dir); err != nil {
			e.logf("kill processes of %s: %v", dir, err)
		}
		os.RemoveAll(dir)
	}, nil
}

// WorkerBinary is bin/imago-worker.
func (e *Env) WorkerBinary() string { return filepath.Join(e.Bin, "imago-worker") }

// Packer is bin/packer.
func (e *Env) Packer() string {
	if p := os.Getenv("IMAGO_PACKER"); p != "" {
		return p
	}
	return filepath.Join(e.Bin, "packer")
}

// Hello builds examples/hello with the given -ldflags (e.g. "-X main.version=v2
// -X main.startDelay=4s") once per Env and returns the directory holding ./hello,
// ready for Imago.Import.
func (e *Env) Hello(ldflags string) (string, error) {
	e.mu.Lock()
	if d, ok := e.builds[ldflags]; ok {
		e.mu.Unlock()
		return d, nil
	}
	e.mu.Unlock()
	tmp, err := e.scratch()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(tmp, "hello-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", filepath.Join(dir, "hello"), "./examples/hello")
	cmd.Dir = e.Root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hello (%s): %v\n%s", ldflags, err, out)
	}
	e.mu.Lock()
	if e.builds == nil {
		e.builds = map[string]string{}
	}
	e.builds[ldflags] = dir
	e.mu.Unlock()
	return dir, nil
}

// HelloVersion is Hello("-X main.version=<v>") plus, when startDelay > 0,
// "-X main.startDelay=<d>".
func (e *Env) HelloVersion(version string, startDelay time.Duration) (string, error) {
	flags := "-X main.version=" + version
	if startDelay > 0 {
		flags += " -X main.startDelay=" + startDelay.String()
	}
	return e.Hello(flags)
}

// Imago is one imago installation for a scenario: an in-process Temporal test
// server (search attributes registered), a temporary home, and the dependencies
// (catalog, local provider, activities) opened on it. No worker runs until
// StartWorker or StartWorkerProcess.
type Imago struct {
	Env     *Env
	Server  *temporaltest.TestServer
	Client  client.Client
	Config  app.Config
	Deps    *app.Deps
	Home    string
	Listen  string // a free 127.0.0.1 address for the router
	cleanup []func()
}

// QuietLogger logs warnings and errors only.
func QuietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// StartImago starts a Temporal test server and opens imago's dependencies on a
// fresh home. Close it when done.
func StartImago(ctx context.Context, env *Env) (im *Imago, err error) {
	im = &Imago{Env: env}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("start Temporal test server: %v", p)
		}
		if err != nil {
			im.Close()
			im = nil
		}
	}()
	logger := QuietLogger()
	home, clean, err := env.TempHome("home")
	if err != nil {
		return im, err
	}
	im.Home = home
	im.cleanup = append(im.cleanup, clean)
	// Payloads are encrypted as imago-worker processes under home encrypt them.
	pc, err := app.Config{Home: home}.PayloadCodec(ctx)
	if err != nil {
		return im, err
	}
	// The server runs with the embedded server's settings, as imago-worker's
	// own does (docs/performance.md).
	ts := temporaltest.NewServer(temporaltest.WithBaseClientOptions(client.Options{
		Logger: sdklog.NewStructuredLogger(logger), DataConverter: pc.DataConverter()}),
		temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(devserver.DynamicConfig())))
	im.Server = ts
	im.cleanup = append(im.cleanup, func() {
		defer func() { recover() }() // Stop logs through a nil testing.T on error
		ts.Stop()
	})
	im.Client = ts.GetDefaultClient()
	if _, err := im.Client.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	}); err != nil {
		return im, fmt.Errorf("register search attributes: %w", err)
	}
	im.Config = app.Config{Home: home, TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(),
		Packer: env.Packer(), Logger: logger}
	deps, err := app.OpenDeps(ctx, im.Config)
	if err != nil {
		return im, err
	}
	im.Deps = deps
	im.cleanup = append(im.cleanup, func() { deps.Close() })
	if im.Listen, err = FreeAddr(); err != nil {
		return im, err
	}
	return im, nil
}

// Close stops workers, the server, kills every process under the home and removes it.
func (im *Imago) Close() {
	if im == nil {
		return
	}
	for i := len(im.cleanup) - 1; i >= 0; i-- {
		im.cleanup[i]()
	}
	im.cleanup = nil
}

// StartWorker runs imago's workers in this process, as imago-worker runs them
// (app.NewWorkers: the main worker with its options and the bake worker on
// its own task queue). Close stops them without waiting for activities still
// running: the scenario is over by then.
func (im *Imago) StartWorker() error {
	wc := app.DefaultWorkerConfig()
	wc.StopTimeout, wc.BakeStopTimeout = 0, 0
	w := app.NewWorkers(im.Client, im.Deps.Activities, wc)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	im.cleanup = append(im.cleanup, w.Stop)
	return nil
}

// WorkerProcess is a real imago-worker process.
type WorkerProcess struct {
	Cmd *exec.Cmd
	Log string
	mu  sync.Mutex
}

// StartWorkerProcess runs Env.WorkerBinary() against this server and home, in its
// own process group. Close kills it if still running.
func (im *Imago) StartWorkerProcess(name string) (*WorkerProcess, error) {
	cmd := exec.Command(im.Env.WorkerBinary(), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+im.Config.TemporalAddress,
		"TEMPORAL_NAMESPACE="+im.Config.Namespace, "IMAGO_HOME="+im.Config.Home, "IMAGO_PACKER="+im.Env.Packer())
	logPath := filepath.Join(im.Home, "worker-"+name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", im.Env.WorkerBinary(), err)
	}
	w := &WorkerProcess{Cmd: cmd, Log: logPath}
	im.cleanup = append(im.cleanup, func() { w.Kill(); logf.Close() })
	return w, nil
}

// Kill sends SIGKILL to the worker's process group and reaps it.
func (w *WorkerProcess) Kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.Cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-w.Cmd.Process.Pid, syscall.SIGKILL)
	_ = w.Cmd.Wait()
}

// Import imports the hello build in dir (from Env.Hello) and returns the image ID.
func (im *Imago) Import(ctx context.Context, dir string) (string, error) {
	img, err := im.Deps.Catalog.Import(ctx, dir, "hello", []string{"./hello"}, nil)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", dir, err)
	}
	return img.ID, nil
}

// Spec is the hello rollout the integration tests use: service hello, environment
// bench, 3 instances, health every 200ms, a check of /, soak 0; mutate adjusts it
// before Normalize.
func (im *Imago) Spec(imageID string, mutate ...func(*spec.Rollout)) (spec.Rollout, error) {
	soak := contract.Duration(0)
	r := spec.Rollout{Rollout: contract.Rollout{
		Service: "hello", Environment: "bench", Image: contract.ImageRef{ID: imageID},
		Fleet: contract.FleetSpec{Size: 3}, Listen: im.Listen,
		Health: contract.Health{Interval: contract.Duration(200 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
		Checks: []contract.Check{{Path: "/"}},
		Soak:   &soak,
	}}
	for _, m := range mutate {
		m(&r)
	}
	if err := r.Normalize(); err != nil {
		return r, err
	}
	return r, nil
}

// StartRollout starts the Rollout workflow.
func (im *Imago) StartRollout(ctx context.Context, r spec.Rollout) (client.WorkflowRun, error) {
	return rollouts.Start(ctx, im.Client, r, rollouts.StartOptions{StartedBy: "imago-bench"})
}

// Rollout runs a rollout to its end.
func (im *Imago) Rollout(ctx context.Context, r spec.Rollout) (contract.RolloutResult, error) {
	var res contract.RolloutResult
	run, err := im.StartRollout(ctx, r)
	if err != nil {
		return res, err
	}
	err = run.Get(ctx, &res)
	if err != nil {
		return res, errors.New(rollouts.Reason(err))
	}
	return res, nil
}

// Get asks the router for path and returns the trimmed body.
func (im *Imago) Get(path string) (string, error) {
	resp, err := http.Get("http://" + im.Listen + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("router answered %s: %s", resp.Status, body)
	}
	return strings.TrimSpace(string(body)), nil
}

// FreeAddr returns a free 127.0.0.1:port.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startWithWorker starts imago with the real worker code in this process.
func startWithWorker(ctx context.Context, env *Env) (*Imago, error) {
	im, err := StartImago(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := im.StartWorker(); err != nil {
		im.Close()
		return nil, err
	}
	return im, nil
}
