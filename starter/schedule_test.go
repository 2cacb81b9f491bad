package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/schedules"
)

const (
	exampleBake     = "../examples/hello/bake.yaml"
	examplePipeline = "../examples/hello/pipeline.yaml"
)

func TestScheduleAndPipelineUsageErrorsCreateNothing(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing may be contacted
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schedule", "create", "nightly", "--cron", "0 3 * * *"}, "--bake FILE is required"},
		{[]string{"schedule", "create", "nightly", "--bake", exampleBake}, "set --cron EXPR"},
		{[]string{"schedule", "create", "nightly", "--bake", exampleBake, "--cron", "3am"}, `"3am" is not a cron expression`},
		{[]string{"schedule", "create", "nightly", "--bake", exampleBake, "--every", "1h", "--cron", "@daily"}, "set --cron or --every, not both"},
		{[]string{"schedule", "create", "nightly", "--bake", exampleBake, "--every", "1h", "--overlap", "maybe"}, `overlap: "maybe": want one of allow-all, buffer-all, buffer-one, cancel-other, skip`},
		{[]string{"schedule", "create", "nightly", "--bake", exampleBake, "--every", "1h", "--timezone", "Moon/Base"}, `"Moon/Base" is not an IANA time zone`},
		{[]string{"schedule", "backfill", "nightly", "yesterday", "today"}, `FROM "yesterday": want an RFC 3339 time`},
		{[]string{"pipeline", "start"}, "-f FILE is required"},
		{[]string{"pipeline", "status", "hello", "--watch", "-o", "json"}, "cannot be combined with -o json"},
		{[]string{"reaper", "run", "--grace", "0s"}, "--grace must be positive"},
	} {
		_, code, err := run(t, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.Equal(t, 2, code, "%v: %v", tc.args, err)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}

// The schedule commands against a real server: create from the example bake and
// pipeline, list, describe, pause with a note, unpause, delete.
func TestScheduleCommandsRoundTrip(t *testing.T) {
	newImagoEnv(t)
	out, code, err := run(t, "schedule", "create", "hello", "--bake", exampleBake, "--every", "1h", "--then", examplePipeline, "--paused")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "created schedule hello (every 1h0m0s); next run none: paused")

	_, code, err = run(t, "schedule", "create", "hello", "--bake", exampleBake, "--every", "1h")
	assert.Equal(t, 1, code)
	assert.ErrorContains(t, err, `schedule "hello" already exists`)

	out, _, err = run(t, "schedule", "list", "-o", "json")
	require.NoError(t, err)
	var list []schedules.Schedule
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list, 1)
	assert.Equal(t, "hello", list[0].Service)
	assert.True(t, list[0].Paused)

	out, _, err = run(t, "schedule", "unpause", "hello", "--note", "go")
	require.NoError(t, err, out)
	out, _, err = run(t, "schedule", "describe", "hello")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Spec:       every 1h0m0s")
	assert.Contains(t, out, "State:      active")
	assert.Contains(t, out, "Note:       go")
	assert.NotContains(t, out, "Next runs:\n  none")

	_, _, err = run(t, "schedule", "pause", "hello", "--note", "change freeze")
	require.NoError(t, err)
	out, _, err = run(t, "schedule", "describe", "hello", "-o", "json")
	require.NoError(t, err)
	var s schedules.Schedule
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	assert.True(t, s.Paused)
	assert.Equal(t, "change freeze", s.Note)

	_, _, err = run(t, "schedule", "delete", "hello")
	require.NoError(t, err)
	_, code, err = run(t, "schedule", "describe", "hello")
	assert.Equal(t, 1, code)
	assert.ErrorContains(t, err, `no schedule "hello"`)
}
