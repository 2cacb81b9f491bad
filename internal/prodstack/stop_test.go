package prodstack_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
)

// docker compose stop (a deploy of imago) sends SIGTERM, then SIGKILL after
// imago-worker's stop_grace_period: the worker's stop timeouts, as it reads
// them from its environment, must end before, so running activities finish
// instead of being killed.
func TestWorkerStopsWithinItsGracePeriod(t *testing.T) {
	worker := load(t).Services["imago-worker"]
	grace, err := time.ParseDuration(worker.StopGracePeriod)
	require.NoError(t, err, "imago-worker's stop_grace_period %q", worker.StopGracePeriod)
	for k, v := range worker.Environment {
		t.Setenv(k, v)
	}
	wc, err := app.WorkerConfigFromEnv()
	require.NoError(t, err)
	assert.Less(t, wc.StopTimeout, grace, "IMAGO_WORKER_STOP_TIMEOUT must end before the grace period")
	assert.Less(t, wc.BakeStopTimeout, grace, "IMAGO_BAKE_STOP_TIMEOUT must end before the grace period")
	assert.Greater(t, wc.BakeStopTimeout, wc.StopTimeout, "a cancelled build starts over: bakes get longer to finish")
}
