package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/loadgen"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// These tests point the real clients an operator uses at a running imago: Debian's
// promtool and Prometheus server (make deps) at the worker's /metrics, and the
// Temporal CLI (make tools) at its embedded Temporal server and codec server.

// runningImago is imago-worker as a user runs it in dev mode: an embedded Temporal
// server on SQLite under its home, the worker, Prometheus metrics, and the codec
// server that decodes payloads for callers with an admin token.
type runningImago struct {
	*env
	metrics string // host:port of /metrics
	codec   string // the codec endpoint, http://…/codec
	token   string // an admin API token the codec server accepts
}

func startRunningImago(t *testing.T) *runningImago {
	t.Helper()
	bin := workerBinary(t, "")
	home := fleetHome(t)
	cfg := Config{Home: home, TemporalAddress: freeAddr(t)}
	cfg.fill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deps, err := OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	r := &runningImago{env: &env{t: t, cfg: cfg, deps: deps, listen: freeAddr(t)}, metrics: freeAddr(t)}
	codecAddr := freeAddr(t)
	r.codec = "http://" + codecAddr + "/codec"
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	r.token = hex.EncodeToString(key)

	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "IMAGO_") {
			environ = append(environ, kv)
		}
	}
	environ = append(environ, "IMAGO_HOME="+home, "IMAGO_API_TOKENS="+r.token+" admin",
		"IMAGO_ANALYSIS_ALLOW=127.0.0.1") // the test's Prometheus is on loopback
	r.startProcess(bin, "running", []string{"--log-level", "warn", "--dev-listen", cfg.TemporalAddress, "--ui-listen", "",
		"--codec-listen", codecAddr, "--metrics-listen", r.metrics}, environ)
	c, err := dialRetry(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	r.client = c
	return r
}

// tool is the path of a client the tests need, or a failure saying how to get it.
func tool(t *testing.T, name, how string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require.NoError(t, err, "%s is not installed: run `%s`", name, how)
	return p
}

// temporalCLI is the Temporal CLI `make tools` builds into bin/ (tools/temporal).
func temporalCLI(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "temporal")
	_, err := os.Stat(p)
	require.NoError(t, err, "the Temporal CLI is not built: run `make tools` (tools/temporal/build.sh)")
	return p
}

// scrape reads the worker's /metrics as Prometheus text.
func (r *runningImago) scrape() []byte {
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	require.NoError(r.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	require.Equal(r.t, http.StatusOK, resp.StatusCode, "%s", body)
	return body
}

// After a rollout, when the Temporal SDK's counters exist, promtool (the linter
// of Prometheus' own package) finds nothing wrong in the worker's /metrics:
// every counter ends in _total, every metric has help, no name breaks the rules.
func TestPromtoolFindsTheWorkersMetricsClean(t *testing.T) {
	promtool := tool(t, "promtool", "make deps")
	r := startRunningImago(t)
	_, err := r.rollout(r.spec(r.importImage("v1")))
	require.NoError(t, err)

	// The SDK counts a workflow's completion when its last workflow task
	// completes, which can be just after the client has the result: scrape
	// until every metric is there (with a deadline).
	names := []string{"temporal_workflow_completed_total", "temporal_request_total", "temporal_activity_execution_latency_seconds_bucket", "imago_rollouts_total"}
	var body []byte
	missing := func() (m []string) {
		for _, name := range names {
			if !strings.Contains(string(body), "\n"+name+"{") {
				m = append(m, name)
			}
		}
		return m
	}
	assert.Eventually(t, func() bool { body = r.scrape(); return len(missing()) == 0 }, 30*time.Second, 200*time.Millisecond)
	require.Empty(t, missing(), "the SDK's and imago's metrics are there to check")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "promtool check metrics: %s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "promtool check metrics has something to say")
}

// prometheus is a Prometheus server from Debian's package, scraping the worker
// every second, in its own temporary directory and process group.
type prometheus struct {
	t    *testing.T
	addr string
}

func (r *runningImago) startPrometheus() *prometheus {
	t := r.t
	bin := tool(t, "prometheus", "make deps")
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: imago-worker
    static_configs:
      - targets: [%q]
`, r.metrics)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(config), 0o600))
	p := &prometheus{t: t, addr: freeAddr(t)}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr, "--log.level=warn")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", data)
		}
	})
	return p
}

// query runs an instant query and returns the number of series it answered.
func (p *prometheus) query(q string) (int, error) {
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return 0, err
	}
	if ans.Status != "success" {
		return 0, fmt.Errorf("status %q", ans.Status)
	}
	return len(ans.Data.Result), nil
}

// waitData polls until Prometheus is ready and q returns data, for a minute.
func (p *prometheus) waitData(q string) {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				n, err := p.query(q)
				if err == nil && n > 0 {
					return
				}
				last = fmt.Errorf("query %s: %d series, %v", q, n, err)
			} else {
				last = fmt.Errorf("/-/ready answered %s", resp.Status)
			}
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("prometheus at %s had no data for %s within a minute: %v", p.addr, q, last)
}

// A Prometheus server scrapes the worker, whose /metrics carries each local
// router's counts by fleet, and a canary's prometheus analysis reads the error
// ratio from it: a good build passes the analysis and takes all traffic; a build
// answering 500 on 30 % of requests fails it and is rolled back, v1 serving.
func TestPrometheusAnalysisDecidesACanary(t *testing.T) {
	r := startRunningImago(t)
	prom := r.startPrometheus()
	v1, v2 := r.importImage("v1"), r.importImage("v2")
	bad := r.importDir(buildHello(t, "v2bad", "-X main.version=v2bad -X main.failRate=0.3"))
	_, err := r.rollout(r.spec(v1))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := loadgen.Start(ctx, loadgen.Options{URL: "http://" + r.listen + "/", Clients: 4})
	defer load.Stop()
	prom.waitData(`imago_router_requests_total{service="hello",environment="test"}`)

	const errorRatio = `sum(rate(imago_router_errors_total{service="hello",environment="test"}[5s]))
  / sum(rate(imago_router_requests_total{service="hello",environment="test"}[5s]))`
	canary := func(rr *spec.Rollout) {
		rr.Checks = nil // the smoke check would pass the bad build on most requests anyway
		rr.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: ip(50)}, {Analysis: "errors"}, {SetWeight: ip(100)}}}
		// A scrape that comes late on a loaded machine leaves the 5s window
		// with one sample (NaN: no data); two such measurements may pass by
		// without stopping the canary for a person.
		rr.Analyses = map[string]contract.Analysis{"errors": {Provider: "prometheus", Address: "http://" + prom.addr, Query: errorRatio,
			Max: f64(0.05), Interval: contract.Duration(time.Second), Count: 8, InconclusiveLimit: 2}}
	}

	res, err := r.rollout(r.spec(v2, canary))
	if err != nil {
		t.Fatalf("the good build's canary failed: %s", rollouts.Reason(err))
	}
	assert.Equal(t, "hello from v2", r.get())
	byFleet, _ := r.instances()
	assert.Equal(t, map[string]int{res.FleetID: 3}, byFleet)

	_, err = r.rollout(r.spec(bad, canary))
	require.Error(t, err, "the bad build's canary must fail its analysis")
	reason := rollouts.Reason(err)
	t.Logf("the bad canary: %s", reason)
	assert.Regexp(t, `rolled back automatically: analysis errors failed: the query's value of fleet fl-[0-9a-f]+ was [0-9.]+ > max 0\.05 in \d+ of \d+ measurements`, reason,
		"the error ratio Prometheus answered failed the analysis")
	assert.Equal(t, "hello from v2", r.get(), "v2 serves again")
	byFleet, _ = r.instances()
	assert.Equal(t, map[string]int{res.FleetID: 3}, byFleet, "the bad fleet is torn down")
}

// The Temporal CLI (built from its Go module by make tools) reads a rollout on a
// running imago's embedded server: workflow list finds it, and describe and
// query show its result and progress decoded through imago's codec server with
// an admin token. Without the codec endpoint the same query shows only sealed
// bytes, so the readable answers are the codec server's doing.
func TestTemporalCLIReadsARolloutThroughTheCodecServer(t *testing.T) {
	cli := temporalCLI(t)
	r := startRunningImago(t)
	img := r.importImage("v1")
	res, err := r.rollout(r.spec(img))
	require.NoError(t, err)
	id := contract.RolloutWorkflowID("hello", "test")

	temporal := func(args ...string) string {
		t.Helper()
		args = append(args, "--address", r.cfg.TemporalAddress, "--namespace", r.cfg.Namespace, "-o", "json")
		cmd := exec.Command(cli, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()} // no TEMPORAL_* or profile of the machine's
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "temporal %s: %s", strings.Join(args, " "), out)
		return string(out)
	}
	codec := []string{"--codec-endpoint", r.codec, "--codec-auth", "Bearer " + r.token}

	list := temporal(append([]string{"workflow", "list", "--query", "WorkflowType = 'Rollout'"}, codec...)...)
	assert.Contains(t, list, `"workflowId": "`+id+`"`)
	assert.Contains(t, list, r.last.GetRunID())

	desc := temporal(append([]string{"workflow", "describe", "--workflow-id", id}, codec...)...)
	assert.Contains(t, desc, "WORKFLOW_EXECUTION_STATUS_COMPLETED")
	assert.Contains(t, desc, `"fleetId": "`+res.FleetID+`"`, "the decoded result of the rollout")

	q := temporal(append([]string{"workflow", "query", "--workflow-id", id, "--type", "progress"}, codec...)...)
	assert.Contains(t, q, `"service": "hello"`, "the decoded progress")
	assert.Contains(t, q, `"imageId": "`+img+`"`)

	sealed := temporal("workflow", "query", "--workflow-id", id, "--type", "progress")
	assert.NotContains(t, sealed, img, "without the codec server the answer is sealed")

	// The codec server wants the admin token: a wrong one is refused, and the CLI says so.
	cmd := exec.Command(cli, "workflow", "query", "--workflow-id", id, "--type", "progress", "--address", r.cfg.TemporalAddress,
		"--namespace", r.cfg.Namespace, "--codec-endpoint", r.codec, "--codec-auth", "Bearer not-"+r.token)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	assert.Error(t, err, "a wrong token must not decode: %s", out)
	assert.NotContains(t, string(out), img)
}
