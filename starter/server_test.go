package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/workflows"
)

// The tests that need Temporal run a real server in-process (temporaltest) and the
// real worker code with the local provider. Fleets are sim fleets (one detached
// host process per fleet, see local.IsSimImage) and routers real processes, both
// started by re-executing this test binary: TestMain hands them over first.
//
// The CLI runs in process, so a test that sets no IMAGO_HOME of its own gets a
// temporary one here: no test reads or writes the user's ~/.imago.
func TestMain(m *testing.M) {
	router.RunIfChild()
	local.RunSimIfChild()
	home, err := os.MkdirTemp("", "imago-starter-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("IMAGO_HOME", home)
	code := m.Run()
	if err := local.KillAll(home); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(home)
	os.Exit(code)
}

// imagoEnv is one test's imago: a Temporal server with imago's search attributes,
// a worker, a fresh IMAGO_HOME, and the environment the CLI reads pointing at them.
type imagoEnv struct {
	t      *testing.T
	client client.Client
	deps   *app.Deps
	home   string
	listen string // the router's address: one per service and environment
}

func newImagoEnv(t *testing.T) *imagoEnv {
	t.Helper()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	ctx := context.Background()
	_, err := ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)

	home := t.TempDir()
	t.Setenv("IMAGO_HOME", home)
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", ts.GetFrontendHostPort())
	t.Setenv("TEMPORAL_NAMESPACE", ts.GetDefaultNamespace())
	t.Cleanup(func() {
		if err := local.KillAll(home); err != nil {
			t.Errorf("kill the processes of %s: %v", home, err)
		}
	})
	deps, err := app.OpenDeps(ctx, app.ConfigFromEnv())
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	// The worker dials as the CLI does, so both share the payload codec.
	c, err := app.ConfigFromEnv().Dial(ctx)
	require.NoError(t, err)
	w := app.NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	t.Cleanup(func() { w.Stop(); c.Close() })
	return &imagoEnv{t: t, client: c, deps: deps, home: home}
}

// simImage imports a sim image of service answering version on "/".
func (e *imagoEnv) simImage(service, version string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	require.NoError(e.t, os.WriteFile(filepath.Join(dir, "README"), []byte("sim "+version+"\n"), 0o644))
	img, err := e.deps.Catalog.Import(context.Background(), dir, service, []string{local.SimEntrypoint},
		map[string]string{"version": version, local.SimKindLabel: local.SimKind})
	require.NoError(e.t, err)
	return img.ID
}

// rolloutSpec writes a rollout spec of hello to dev behind a router on a free
// port (the same in every spec of e): 2 sim instances, quick health probes, no
// soak; extra is appended (YAML).
func (e *imagoEnv) rolloutSpec(extra string) string {
	e.t.Helper()
	if e.listen == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(e.t, err)
		e.listen = ln.Addr().String()
		require.NoError(e.t, ln.Close())
	}
	addr := e.listen
	body := fmt.Sprintf(`service: hello
environment: dev
provider: local
fleet: {size: 2}
listen: %s
health: {path: /healthz, interval: 100ms, timeout: 30s}
soak: 0s
%s`, addr, extra)
	f := filepath.Join(e.t.TempDir(), "rollout.yaml")
	require.NoError(e.t, os.WriteFile(f, []byte(body), 0o644))
	return f
}

// syncBuffer is a bytes.Buffer a command writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// background is a CLI command running in a goroutine.
type background struct {
	out    *syncBuffer
	errOut *syncBuffer
	cancel context.CancelFunc // what Ctrl-C does to a watching command
	done   chan error
}

// start runs the CLI with args in the background, stdout and stderr apart.
func start(args ...string) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{out: &syncBuffer{}, errOut: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	root := newRoot()
	root.SetOut(b.out)
	root.SetErr(b.errOut)
	root.SetArgs(args)
	go func() { b.done <- root.ExecuteContext(ctx) }()
	return b
}

// waitFor polls the command's output until it contains want, or fails the test
// after a deadline, showing what was printed.
func (b *background) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !strings.Contains(b.out.String(), want) {
		select {
		case err := <-b.done:
			b.done <- err
			t.Fatalf("the command ended (%v) before printing %q; it printed:\n%s", err, want, b.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output within 45s; it printed:\n%s", want, b.out.String())
		}
	}
}

// wait returns the command's error once it ended.
func (b *background) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.done:
		return err
	case <-time.After(90 * time.Second):
		t.Fatalf("the command did not end within 90s; it printed:\n%s", b.out.String())
	}
	return nil
}
