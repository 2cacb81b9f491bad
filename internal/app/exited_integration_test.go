package app

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// A new image whose entrypoint exits at once fails its rollout in the health
// wait without waiting for the health timeout: the reason names each
// instance's exit status, its log and the log's last lines. The old fleet keeps
// serving.
func TestInstancesThatExitAtOnceFailTheRolloutWithTheirLogs(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	res1, err := e.rollout(e.spec(e.importImage("v1")))
	require.NoError(t, err)

	dir := t.TempDir()
	script := "#!/bin/sh\necho \"starting on port $PORT\"\necho 'fatal: cannot read /etc/hello.yaml' >&2\nexit 3\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "crash.sh"), []byte(script), 0o700))
	img, err := e.deps.Catalog.Import(context.Background(), dir, "hello", []string{"./crash.sh"}, nil)
	require.NoError(t, err)

	// The health timeout (30 s here) stays far away: the wait must not reach it.
	_, err = e.rollout(e.spec(img.ID, func(r *spec.Rollout) { r.Fleet.Size = 2 }))
	require.Error(t, err)
	msg := rollouts.Reason(err)
	assert.Contains(t, msg, "failed while waiting for the new fleet to become healthy")
	assert.Contains(t, msg, "cannot become healthy: every instance has exited")
	assert.NotContains(t, msg, "not healthy within", "the health wait ran into its timeout")
	for _, inst := range []string{"-1", "-2"} {
		assert.Regexp(t, `instance fl-[a-z0-9-]+`+inst+` exited \(exit status 3\); its log `+
			regexp.QuoteMeta(filepath.Join(e.cfg.Home, "logs"))+`/fl-[a-z0-9-]+/fl-[a-z0-9-]+`+inst+`\.log ends with:\n  starting on port [0-9]+\n  fatal: cannot read /etc/hello.yaml`, msg)
	}
	assert.Contains(t, msg, "the previous fleet keeps serving")

	assert.Equal(t, "hello from v1", e.get())
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res1.FleetID: 3}, byFleet)
	assert.Equal(t, []string{res1.FleetID}, e.fleetIDs(), "the new fleet must be torn down")
}
