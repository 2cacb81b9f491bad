package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/plan"
	"github.com/imago/imago/internal/provider"
)

// files is every file under dir with its contents.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	}))
	return out
}

// imago plan, beside a running Temporal server and worker, prints a canary's
// timeline (and -o json the same plan) and starts nothing: no workflow on the
// server, no fleet or router from the provider, the catalog unchanged. A spec
// that would not start fails exactly as imago rollout start fails.
func TestPlanPrintsATimelineAndStartsNothing(t *testing.T) {
	e := newImagoEnv(t)
	img := e.simImage("hello", "v1")
	f := e.rolloutSpec("strategy: {type: canary, steps: [{setWeight: 50}, {pause: 1m}, {pause: {}}]}\n")
	catalogDir := filepath.Join(e.home, "catalog")
	before := files(t, catalogDir)

	out, code, err := run(t, "plan", "-f", f, "--image", img)
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Plan of dev/hello: image "+img+", canary, 2 instances")
	assert.Contains(t, out, "step 2/3: holding for 1m0s (promote skips it)")
	assert.Contains(t, out, "pause 3/3 (paused)", "the approval it will ask for")
	assert.Contains(t, out, "Expected duration: 1m")

	out, code, err = run(t, "plan", "-f", f, "--image", img, "-o", "json")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	var p plan.Plan
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	assert.Equal(t, "canary", p.Strategy)
	assert.Equal(t, contract.PhaseSucceeded, p.Outcome)
	require.Len(t, p.Approvals, 1)
	assert.Equal(t, "pause 3/3", p.Approvals[0].Gate)
	assert.GreaterOrEqual(t, p.Duration.D().Minutes(), 1.0)

	// The same bad spec, planned and started: the same error, exit status 2.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("service: hello\nenvironment: dev\nlisten: "+e.listen+"\nfleet: {size: 0}\nsoak: forever\n"), 0o600))
	_, planCode, planErr := run(t, "plan", "-f", bad, "--image", img)
	_, startCode, startErr := run(t, "rollout", "start", "-f", bad, "--image", img)
	require.Error(t, planErr)
	require.Error(t, startErr)
	assert.Equal(t, startErr.Error(), planErr.Error())
	assert.Equal(t, 2, planCode)
	assert.Equal(t, startCode, planCode)
	_, _, err = run(t, "plan", "-f", f, "--image", "img-000000000bad")
	require.Error(t, err)
	_, _, startErr = run(t, "rollout", "start", "-f", f, "--image", "img-000000000bad")
	assert.Equal(t, startErr.Error(), err.Error(), "an unknown image is refused alike")

	_, err = e.client.DescribeWorkflowExecution(context.Background(), "rollout/dev/hello", "")
	var notFound *serviceerror.NotFound
	assert.ErrorAs(t, err, &notFound, "no rollout workflow was started")
	fleets, err := e.deps.Provider.ListFleets(context.Background(), provider.Filter{})
	require.NoError(t, err)
	assert.Empty(t, fleets, "the provider made nothing")
	if c, err := net.Dial("tcp", e.listen); err == nil {
		c.Close()
		t.Errorf("a router serves on %s: something was started", e.listen)
	}
	assert.Equal(t, before, files(t, catalogDir), "the catalog is as it was")
}
