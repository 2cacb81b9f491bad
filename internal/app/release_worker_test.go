package app

import (
	"bufio"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// umaskOf reads a process's umask from /proc.
func umaskOf(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// The release imago-worker binary, as a user runs it (started from umask 022,
// its home left 0755 by someone): it has no crash hook, so IMAGO_CRASH_AT
// cannot kill it; it takes IMAGO_ANALYSIS_ALLOW from its environment, so an
// analysis on a loopback server the operator allowed passes, while one aimed at
// the cloud metadata address is refused and rolls the rollout back; and
// everything under its IMAGO_HOME is its user's alone.
func TestReleaseWorkerGuardsAnalysesAndKeepsItsHomeOwnerOnly(t *testing.T) {
	bin := workerBinary(t, "")
	require.False(t, hasCrashHook(t, bin), "the release imago-worker has the crash hook linked in")

	e := newEnv(t)
	require.NoError(t, os.Chmod(e.cfg.Home, 0o755))
	var stats atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stats.Add(1)
		fmt.Fprint(w, `{"errorRate":0}`)
	}))
	defer srv.Close()

	w := e.startWorkerProcess(bin, "release",
		"IMAGO_ANALYSIS_ALLOW=127.0.0.1", "IMAGO_CRASH_AT=before:ResolveImage", "IMAGO_METRICS_LISTEN=")
	deadline := time.Now().Add(30 * time.Second)
	for umaskOf(w.cmd.Process.Pid) != "0077" {
		require.True(t, time.Now().Before(deadline), "the worker's umask is %q, want 0077", umaskOf(w.cmd.Process.Pid))
		time.Sleep(10 * time.Millisecond)
	}

	verify := func(url string) func(*spec.Rollout) {
		return func(r *spec.Rollout) {
			r.Analyses = map[string]contract.Analysis{"stats": {Provider: "http", URL: url, Field: "errorRate", Max: f64(0.05),
				Interval: contract.Duration(200 * time.Millisecond), Count: 2}}
			r.Verify = &contract.Verify{Analysis: "stats"}
		}
	}
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	_, err := e.rollout(e.spec(v1, verify(srv.URL+"/stats")))
	require.NoError(t, err, "the rollout through a worker with IMAGO_CRASH_AT=before:ResolveImage")
	assert.Equal(t, "hello from v1", e.get())
	assert.GreaterOrEqual(t, stats.Load(), int64(2), "the allowed analysis measured")

	_, err = e.rollout(e.spec(v2, verify("http://169.254.169.254/latest/meta-data/iam/security-credentials/")))
	require.Error(t, err)
	msg := rollouts.Reason(err)
	assert.Contains(t, msg, "refused by imago's outbound guard: 169.254.169.254 is link-local (the cloud metadata address), never allowed")
	assert.Equal(t, "hello from v1", e.get(), "v1 serves again after the refused analysis")

	// IMAGO_HOME was tightened, with a word in the log.
	fi, err := os.Stat(e.cfg.Home)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())
	log, err := os.ReadFile(filepath.Join(e.cfg.Home, "worker-release.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "IMAGO_HOME was open to other users; made it owner-only")

	// Nothing under it is open to group or others: state, logs, routes, run
	// files, the catalog, unpacked images (read-only: 0500/0400).
	var open []string
	seen := map[string]int{}
	require.NoError(t, filepath.WalkDir(e.cfg.Home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // a link's own mode means nothing
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.cfg.Home, p)
		seen[strings.SplitN(rel, string(filepath.Separator), 2)[0]]++
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			open = append(open, fmt.Sprintf("%s %04o", rel, perm))
		}
		return nil
	}))
	assert.Empty(t, open, "entries of IMAGO_HOME open to group or others")
	for _, dir := range []string{"catalog", "images", "fleets", "routes", "logs", "run"} {
		assert.NotZero(t, seen[dir], "the walk found nothing under %s: %v", dir, seen)
	}
}
