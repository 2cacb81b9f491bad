package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/pipelines"
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

// With IMAGO_BAKE_ROOTS set (as on the workers that will run its ticks),
// schedule create refuses a bake that reads outside the roots, naming the field
// and its line, before contacting anything; a bake inside them gets past it.
func TestScheduleCreateRefusesABakeOutsideBakeRoots(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing may be contacted
	root := t.TempDir()
	t.Setenv("IMAGO_BAKE_ROOTS", root)
	mainGo, err := filepath.Abs("../examples/hello/main.go")
	require.NoError(t, err)
	_, code, err := run(t, "schedule", "create", "nightly", "--bake", exampleBake, "--every", "1h")
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), "bake.files[0]: line 6: "+mainGo+" is outside IMAGO_BAKE_ROOTS ("+root+")")
	assert.NotContains(t, err.Error(), "connect to Temporal")

	t.Setenv("IMAGO_BAKE_ROOTS", root+":"+filepath.Dir(mainGo))
	_, code, err = run(t, "schedule", "create", "nightly", "--bake", exampleBake, "--every", "1h")
	assert.Equal(t, 1, code)
	assert.ErrorContains(t, err, "connect to Temporal", "past the fence, the CLI goes on to create the schedule")

	t.Setenv("IMAGO_BAKE_ROOTS", "relative/dir")
	_, code, err = run(t, "schedule", "create", "nightly", "--bake", exampleBake, "--every", "1h")
	assert.Equal(t, 2, code)
	assert.ErrorContains(t, err, `IMAGO_BAKE_ROOTS: "relative/dir" is not an absolute directory`)
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

// freeListen is a loopback address nobody listens on.
func freeListen(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// The "done when", from the CLI: a schedule created with imago schedule
// create rebuilds the example image only when its inputs change, and rolls it
// through staging and prod, prod waiting for imago pipeline approve.
func TestScheduleFromTheCLIRebuildsOnlyWhenInputsChange(t *testing.T) {
	newImagoEnv(t)
	dir := t.TempDir()
	src, err := os.ReadFile("../examples/hello/main.go")
	require.NoError(t, err)
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("main.go", string(src))
	bake, err := os.ReadFile(exampleBake)
	require.NoError(t, err)
	write("bake.yaml", string(bake))
	for _, env := range []string{"staging", "prod"} {
		write("rollout-"+env+".yaml", fmt.Sprintf(`service: hello
environment: %s
fleet: {size: 2}
listen: %s
health: {path: /healthz, interval: 100ms, timeout: 30s}
checks: [{path: /, expectBody: v2}]
soak: 0s
`, env, freeListen(t)))
	}
	write("pipeline.yaml", `name: hello
bake: bake.yaml
stages:
  - rollout: rollout-staging.yaml
  - rollout: rollout-prod.yaml
    approval: {required: true, timeout: 10m}
`)
	out, _, err := run(t, "schedule", "create", "hello", "--bake", filepath.Join(dir, "bake.yaml"), "--every", "2s",
		"--then", filepath.Join(dir, "pipeline.yaml"))
	require.NoError(t, err, out)
	defer run(t, "schedule", "delete", "hello")

	status := func() pipelines.Run {
		out, _, err := run(t, "pipeline", "status", "hello", "-o", "json")
		var r pipelines.Run
		if err == nil {
			require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		}
		return r
	}
	waitFor := func(what string, ok func(pipelines.Run) bool) pipelines.Run {
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			if r := status(); ok(r) {
				return r
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s did not happen within 3m; last: %+v", what, status())
		return pipelines.Run{}
	}
	approve := func() {
		out, _, err := run(t, "pipeline", "approve", "hello", "--reason", "staging looks good")
		require.NoError(t, err, out)
		assert.Contains(t, out, "approve accepted")
	}

	first := waitFor("prod gate", func(r pipelines.Run) bool { return r.Progress.Gate == "prod" })
	img1 := first.Progress.ImageID
	approve()
	waitFor("first run done", func(r pipelines.Run) bool { return r.Status == "Succeeded" && r.Progress.ImageID == img1 })

	// An unchanged tick is skipped, and describe says why.
	deadline := time.Now().Add(time.Minute)
	var described string
	for time.Now().Before(deadline) && !strings.Contains(described, "skipped: inputs unchanged") {
		described, _, err = run(t, "schedule", "describe", "hello")
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond)
	}
	assert.Contains(t, described, "skipped: inputs unchanged; "+img1+" is already live in staging, prod")

	// A changed source file: a new image, staging, then prod after approval.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), append(src, []byte("\n// patched\n")...), 0o644))
	second := waitFor("new image at the prod gate", func(r pipelines.Run) bool {
		return r.Progress.Gate == "prod" && r.Progress.ImageID != img1
	})
	approve()
	waitFor("second run done", func(r pipelines.Run) bool {
		return r.Status == "Succeeded" && r.Progress.ImageID == second.Progress.ImageID
	})
	out, _, err = run(t, "status", "hello", "-e", "prod", "-o", "json")
	require.NoError(t, err)
	assert.Contains(t, out, second.Progress.ImageID, "prod runs the rebuilt image")
}
