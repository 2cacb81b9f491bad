package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The worker's stop timeouts and bake concurrency come from the environment;
// a malformed value names its variable, and nothing starts.
func TestWorkerConfigFromEnv(t *testing.T) {
	t.Setenv("IMAGO_WORKER_STOP_TIMEOUT", "")
	t.Setenv("IMAGO_BAKE_STOP_TIMEOUT", "")
	t.Setenv("IMAGO_BAKE_CONCURRENCY", "")
	c, err := WorkerConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, WorkerConfig{StopTimeout: 25 * time.Second, BakeStopTimeout: 10 * time.Minute, BakeConcurrency: 2}, c)
	assert.Greater(t, c.BakeStopTimeout, c.StopTimeout, "a cancelled build starts over: bakes get longer to finish")

	t.Setenv("IMAGO_WORKER_STOP_TIMEOUT", "40s")
	t.Setenv("IMAGO_BAKE_STOP_TIMEOUT", "1h")
	t.Setenv("IMAGO_BAKE_CONCURRENCY", "1")
	c, err = WorkerConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, WorkerConfig{StopTimeout: 40 * time.Second, BakeStopTimeout: time.Hour, BakeConcurrency: 1}, c)

	t.Setenv("IMAGO_WORKER_STOP_TIMEOUT", "25")
	t.Setenv("IMAGO_BAKE_STOP_TIMEOUT", "-1m")
	t.Setenv("IMAGO_BAKE_CONCURRENCY", "0")
	_, err = WorkerConfigFromEnv()
	require.Error(t, err)
	for _, want := range []string{
		`IMAGO_WORKER_STOP_TIMEOUT="25": want a duration such as 25s or 10m`,
		`IMAGO_BAKE_STOP_TIMEOUT="-1m": want a duration`,
		`IMAGO_BAKE_CONCURRENCY="0": want a number of bakes, at least 1`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// A workflow task waits for its sticky worker 1.5 s before any worker may
// take it: at 1 s, a worker busy for a second under load lost its workflows
// to others, which replayed their histories; at the SDK's 5 s a worker killed
// with kill -9 held its workflows' next tasks 5 s (P5). The heartbeats are
// sent often enough for the shortest heartbeat timeout (2 s, WaitHealthy).
func TestStickyScheduleToStartOutlastsALoadedWorker(t *testing.T) {
	assert.Greater(t, stickyScheduleToStart, time.Second)
	assert.LessOrEqual(t, stickyScheduleToStart, 2*time.Second, "the recovery after a kill -9 (P5) waits for it")
	o := MainWorkerOptions(DefaultWorkerConfig())
	assert.LessOrEqual(t, o.MaxHeartbeatThrottleInterval, time.Second/2, "a 2 s heartbeat timeout needs heartbeats well within it")
}
