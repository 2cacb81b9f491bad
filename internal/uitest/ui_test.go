package uitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/devserver"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// chromium is Debian's package, installed by make deps (scripts/system-deps.sh).
const chromium = "/usr/bin/chromium"

var helloBuild string // a build of examples/hello

func TestMain(m *testing.M) {
	router.RunIfChild() // the local provider's routers re-execute this binary
	dir, err := os.MkdirTemp("", "imago-uitest-hello-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		helloBuild = filepath.Join(dir, "v1")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v1", "-o", filepath.Join(helloBuild, "hello"), "github.com/imago/imago/examples/hello")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build hello: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// TestWebUIShowsRolloutsDecryptedByTheCodecServer is what a user of `make run`
// sees: the embedded server and web UI, the worker with payload encryption and
// its codec server, real rollouts of a local image to dev and staging, and the
// UI in a browser. (The UI's list shows no summaries: ListWorkflowExecutions
// carries no user metadata, so the summary is checked on the rollout's page.)
func TestWebUIShowsRolloutsDecryptedByTheCodecServer(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the web UI test needs Chromium at %s (%v): run make deps", chromium, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	// imago-worker in embedded mode, as worker/main.go assembles it.
	home := t.TempDir()
	t.Cleanup(func() {
		if err := local.KillAll(home); err != nil {
			t.Errorf("kill processes of %s: %v", home, err)
		}
	})
	codecSrv, err := codec.Listen("127.0.0.1:0", false)
	require.NoError(t, err)
	t.Cleanup(func() { codecSrv.Close() })
	srv, err := devserver.Start(ctx, devserver.Config{
		DBPath:           filepath.Join(home, "temporal.db"),
		Listen:           "127.0.0.1:0",
		UIListen:         "127.0.0.1:0",
		SearchAttributes: workflows.SearchAttributes(),
		Logger:           quiet,
		CodecEndpoint:    codecSrv.Endpoint(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Stop()) })
	cfg := app.Config{Home: home, TemporalAddress: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: quiet}
	pc, err := cfg.PayloadCodec(ctx)
	require.NoError(t, err)
	codecSrv.Serve(codec.NewHandler(pc, codec.HandlerOptions{Origins: codec.UIOrigins(srv.UIAddress())}))
	deps, err := app.OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	c, err := cfg.Dial(ctx)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := app.NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	img, err := deps.Catalog.Import(ctx, helloBuild, "hello", []string{"./hello"}, nil)
	require.NoError(t, err)
	soak := contract.Duration(0)
	r := spec.Rollout{Rollout: contract.Rollout{
		Service: "hello", Environment: "dev", Image: contract.ImageRef{ID: img.ID},
		Fleet: contract.FleetSpec{Size: 2}, Listen: freeAddr(t),
		Health: contract.Health{Interval: contract.Duration(100 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
		Checks: []contract.Check{{Path: "/", ExpectBody: "v1"}},
		Soak:   &soak,
	}}
	require.NoError(t, r.Normalize())
	staging := r
	staging.Environment, staging.Listen = "staging", freeAddr(t)
	var run client.WorkflowRun
	for _, ro := range []spec.Rollout{staging, r} { // dev last: run is dev's
		run, err = rollouts.Start(ctx, c, ro, rollouts.StartOptions{StartedBy: "alice"})
		require.NoError(t, err)
		require.NoError(t, run.Get(ctx, nil), "the rollout to %s succeeds", ro.Environment)
	}
	summary := workflows.RolloutSummary(r.Rollout) // "hello → dev · img-… · blueGreen"
	desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, codec.Encoding, string(desc.GetExecutionConfig().GetUserMetadata().GetSummary().GetMetadata()["encoding"]),
		"the server holds the summary encrypted: only the codec server can show it")

	b := newBrowser(t, ctx)
	ui := "http://" + srv.UIAddress() + "/namespaces/" + srv.Namespace()

	// The list, filtered by the service's search attribute.
	list := ui + "/workflows?query=" + url.QueryEscape(`ImagoService="hello"`)
	b.open(list)
	b.waitText(run.GetID(), "the rollout's row in the list")
	b.waitText("rollout/staging/hello", "the other environment's row")
	b.waitText("2 Completed", "the rollouts' status")
	b.screenshot("ui-rollouts.png")

	// The rollout: its summary and details are encrypted; the UI shows them only
	// because it decrypts them through the codec server.
	b.open(ui + "/workflows/" + url.PathEscape(run.GetID()) + "/" + run.GetRunID() + "/user-metadata")
	b.waitText(summary, "the decrypted static summary")
	b.waitText("started by alice", "the decrypted static details")
	b.screenshot("ui-rollout.png")
}

// browser is a headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, parent context.Context) *browser {
	var cmd *exec.Cmd
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Loopback is all the network there is: nothing may try the internet.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		chromedp.ModifyCmdFunc(func(c *exec.Cmd) {
			// Its own process group, so the renderers go with it.
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			cmd = c
		}),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills Chromium and waits for it
		if cmd != nil && cmd.Process != nil {
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Errorf("kill Chromium's process group %d: %v", cmd.Process.Pid, err)
			}
		}
	})
	require.NoError(t, chromedp.Run(ctx), "start Chromium")
	return &browser{t: t, ctx: ctx}
}

func (b *browser) open(u string) {
	b.t.Helper()
	b.t.Logf("open %s", u)
	require.NoError(b.t, chromedp.Run(b.ctx, chromedp.Navigate(u)))
}

// shownText is the page's visible text, with that of its frames: the UI renders
// summaries and details (markdown) in same-origin iframes.
const shownText = `(() => {
	const parts = [document.body ? document.body.innerText : ""];
	for (const f of document.querySelectorAll("iframe")) {
		try { if (f.contentDocument && f.contentDocument.body) parts.push(f.contentDocument.body.innerText); } catch (e) {}
	}
	return parts.join("\n");
})()`

// waitText polls until the page shows text, in any case (CSS may capitalise
// it); on timeout it fails with what the page showed instead.
func (b *browser) waitText(text, what string) {
	b.t.Helper()
	lit, err := json.Marshal(strings.ToLower(text))
	require.NoError(b.t, err)
	err = chromedp.Run(b.ctx, chromedp.Poll(shownText+".toLowerCase().includes("+string(lit)+")", nil,
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		var shown string
		_ = chromedp.Run(b.ctx, chromedp.Evaluate(shownText, &shown))
		if len(shown) > 3000 {
			shown = shown[:3000] + "…"
		}
		b.screenshotTo(filepath.Join(b.t.ArtifactDir(), "failure.png"))
		b.t.Fatalf("the web UI never showed %s (%q): %v\nit showed:\n%s", what, text, err, shown)
	}
}

// screenshot captures the viewport: into docs/ with IMAGO_UPDATE_SCREENSHOTS=1,
// else into the test's artifact directory (kept with go test -artifacts).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	path := filepath.Join(b.t.ArtifactDir(), name)
	if os.Getenv("IMAGO_UPDATE_SCREENSHOTS") == "1" {
		_, file, _, _ := runtime.Caller(0)
		path = filepath.Join(filepath.Dir(file), "..", "..", "docs", name)
	}
	b.screenshotTo(path)
}

func (b *browser) screenshotTo(path string) {
	b.t.Helper()
	var png []byte
	// Let the page settle (fonts, the last fetches) before the picture.
	require.NoError(b.t, chromedp.Run(b.ctx,
		chromedp.Poll(`document.readyState === "complete"`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.CaptureScreenshot(&png)))
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	b.t.Logf("screenshot %s (%d bytes)", path, len(png))
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
