package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// checkPlainWatch checks the non-terminal form of a watch: time-stamped lines, no
// escape codes, no line repeating the one before. It returns the lines.
func checkPlainWatch(t *testing.T, out string) []string {
	t.Helper()
	assert.NotContains(t, out, "\x1b[", "a watch on a non-terminal must not print escape codes")
	var lines []string
	stamp := regexp.MustCompile(`^\d\d:\d\d:\d\d  (.+)$`)
	prev := ""
	for _, l := range strings.Split(out, "\n") {
		m := stamp.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		assert.NotEqual(t, prev, m[1], "a line is printed only when something changed:\n%s", out)
		prev = m[1]
		lines = append(lines, m[1])
	}
	return lines
}

func TestRolloutStartWatchFollowsARolloutToItsEnd(t *testing.T) {
	e := newImagoEnv(t)
	v1, v2 := e.simImage("hello", "v1"), e.simImage("hello", "v2")

	// A first rollout, watched from start to end on a non-terminal.
	out, code, err := run(t, "rollout", "start", "-f", e.rolloutSpec("checks: [{path: /, expectBody: v1}]\n"), "--image", v1, "--watch")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^started rollout/dev/hello \(run [0-9a-f-]+\): hello → dev, image `+v1+`, blueGreen\n`, out)
	lines := checkPlainWatch(t, out)
	require.NotEmpty(t, lines, out)
	last := lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(last, "succeeded · image "+v1+" · strategy blueGreen · fleets new fl-"), last)
	assert.Regexp(t, ` · traffic fl-[0-9a-f]+ 100% · last event \d\d:\d\d:\d\d `+v1+` serves dev/hello$`, last)
	assert.Regexp(t, `\nrollout succeeded: `+v1+` serves on fleet fl-[0-9a-f]+ \(2 instances\)\n$`, out)

	// A second rollout waits for approval before cutover: the watch shows the gate.
	watching := start("rollout", "start", "-f", e.rolloutSpec("checks: [{path: /, expectBody: v2}]\napproval: {required: true, timeout: 5m}\n"), "--image", v2, "--watch")
	watching.waitFor(t, "awaiting-approval · image "+v2)
	watching.waitFor(t, " · approvals pending: approval before cutover (imago rollout approve hello -e dev) · ")

	// Ctrl-C stops a second watcher; the rollout goes on, and the hint says how to resume.
	other := start("rollout", "status", "hello", "-e", "dev", "--watch")
	other.waitFor(t, "awaiting-approval")
	other.cancel()
	err = other.wait(t)
	require.Error(t, err)
	assert.Equal(t, exitInterrupted, exitCode(err))
	assert.Equal(t, "stopped watching rollout/dev/hello; it goes on. Watch it again with: imago rollout status hello -e dev --watch", err.Error())
	running, err := rollouts.Running(context.Background(), e.client, "hello", "dev")
	require.NoError(t, err)
	assert.True(t, running, "Ctrl-C on a watch must not stop the rollout")

	// Read commands show the waiting rollout, as a table and as JSON.
	out, code, err = run(t, "rollout", "status", "hello", "-e", "dev")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^Status:\s+Running$`, out)
	assert.Regexp(t, `(?m)^Phase:\s+awaiting-approval$`, out)
	assert.Regexp(t, `(?m)^Waiting for:\s+approval before cutover \(imago rollout approve hello -e dev\)$`, out)
	assert.Regexp(t, `(?m)^Image:\s+`+v2+`$`, out)

	out, _, err = run(t, "rollout", "status", "hello", "-e", "dev", "-o", "json")
	require.NoError(t, err, out)
	var st rollouts.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	assert.Equal(t, "rollout/dev/hello", st.WorkflowID)
	assert.Equal(t, "Running", st.Status)
	require.NotNil(t, st.Progress)
	assert.Equal(t, contract.PhaseAwaitingApproval, st.Progress.Phase)
	assert.Equal(t, v2, st.Progress.ImageID)
	require.Len(t, st.Progress.Weights, 1)
	assert.Equal(t, 100, st.Progress.Weights[0].Weight, "no traffic moved before approval")
	assert.NotEqual(t, st.Progress.NewFleet, st.Progress.Weights[0].FleetID)

	out, _, err = run(t, "rollout", "list", "--service", "hello", "-o", "json")
	require.NoError(t, err, out)
	var list []rollouts.Summary
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list, 2)
	assert.Equal(t, []string{"Running", "Succeeded"}, []string{list[0].Status, list[1].Status}, "newest first")
	assert.Equal(t, []contract.Phase{"awaiting-approval", "succeeded"}, []contract.Phase{list[0].Phase, list[1].Phase})
	out, _, err = run(t, "rollout", "list", "--service", "hello")
	require.NoError(t, err, out)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 3, out)
	assert.Regexp(t, `^ROLLOUT\s+STATUS\s+PHASE\s+IMAGE\s+STARTED$`, rows[0])
	assert.Regexp(t, `^rollout/dev/hello\s+Running\s+awaiting-approval\s+`+v2+`\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`, rows[1])
	assert.Regexp(t, `^rollout/dev/hello\s+Succeeded\s+succeeded\s+`+v1+`\s`, rows[2])

	// Approved, the first watch follows the rollout to its end and exits 0.
	out, code, err = run(t, "rollout", "approve", "hello", "-e", "dev", "--reason", "looks fine")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	require.NoError(t, watching.wait(t), watching.out.String())
	lines = checkPlainWatch(t, watching.out.String())
	last = lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(last, "succeeded · image "+v2), last)
	assert.Contains(t, last, " · approvals approval before cutover approved by ")
	assert.Contains(t, watching.out.String(), "\nrollout succeeded: "+v2+" serves on fleet ")

	// Watching a rollout that already ended shows its end and its outcome at once.
	out, code, err = run(t, "rollout", "status", "hello", "-e", "dev", "--watch")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	lines = checkPlainWatch(t, out)
	require.Len(t, lines, 1, out)
	assert.True(t, strings.HasPrefix(lines[0], "succeeded · "), lines[0])

	// A failing rollout: the watch shows where it failed and exits 1 with the reason.
	out, code, err = run(t, "rollout", "start", "-f", e.rolloutSpec("checks: [{path: /, expectBody: v9}]\n"), "--image", v1, "--watch")
	require.Error(t, err)
	assert.Equal(t, 1, code)
	assert.Contains(t, err.Error(), "rollout rollout/dev/hello failed while")
	lines = checkPlainWatch(t, out)
	last = lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(last, "failed · "), last)
	assert.Contains(t, last, " · error "+err.Error())
	assert.NotContains(t, out, "rollout succeeded")

	_, code, err2 := run(t, "rollout", "status", "hello", "-e", "dev", "--watch")
	assert.Equal(t, 1, code)
	require.Error(t, err2)
	assert.Equal(t, err.Error(), err2.Error(), "status --watch of a failed rollout exits 1 with the same reason")
}

func TestBakeStartWatchAndBakeStatus(t *testing.T) {
	newImagoEnv(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "app")
	require.NoError(t, os.MkdirAll(src, 0o755))
	// The imago.kind label makes it a sim image: its instances are listeners in a
	// sim host, and ./serve (which the builder wants to find) is never run.
	require.NoError(t, os.WriteFile(filepath.Join(src, "serve"), []byte("#!/bin/sh\nexit 1\n"), 0o755))
	bake := filepath.Join(dir, "bake.yaml")
	require.NoError(t, os.WriteFile(bake, []byte(`service: hello
builder: imago-local
source: app
entrypoint: [./serve]
labels: {imago.kind: sim, version: v3}
test:
  health: {path: /healthz, interval: 100ms, timeout: 30s}
  checks: [{path: /, expectBody: v3}]
`), 0o644))

	out, code, err := run(t, "bake", "start", "-f", bake, "--watch")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^started bake/hello/latest \(run [0-9a-f-]+\)\n`, out)
	lines := checkPlainWatch(t, out)
	require.NotEmpty(t, lines, out)
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^succeeded · inputs sha256:[0-9a-f]{12} · image (img-[0-9a-f]{12})$`).FindStringSubmatch(last)
	require.NotNil(t, m, last)
	img := m[1]
	assert.True(t, strings.HasSuffix(out, "\n"+img+" built and tested; channel latest → "+img+"\n"), out)

	// bake status, as JSON and as a table.
	out, code, err = run(t, "bake", "status", "hello", "-o", "json")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	var st bakeStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	assert.Equal(t, "bake/hello/latest", st.WorkflowID)
	assert.Equal(t, "Succeeded", st.Status)
	require.NotNil(t, st.Closed)
	require.NotNil(t, st.Progress)
	assert.Equal(t, contract.PhaseSucceeded, st.Progress.Phase)
	assert.Equal(t, img, st.Progress.ImageID)
	for _, key := range []string{`"workflowId": "bake/hello/latest"`, `"status": "Succeeded"`, `"phase": "succeeded"`, `"imageId": "` + img + `"`, `"inputDigest": "sha256:`} {
		assert.Contains(t, out, key)
	}
	out, _, err = run(t, "bake", "status", "hello")
	require.NoError(t, err, out)
	assert.Regexp(t, `(?m)^Bake:\s+bake/hello/latest \(run [0-9a-f-]+\)$`, out)
	assert.Regexp(t, `(?m)^Status:\s+Succeeded$`, out)
	assert.Regexp(t, `(?m)^Phase:\s+succeeded$`, out)
	assert.Regexp(t, `(?m)^Image:\s+`+img+`$`, out)
	// Its events, as a rollout's status shows them: every phase, the last its end.
	assert.Regexp(t, `(?m)^Events:\n  \d\d:\d\d:\d\d  digest\s+computing the input digest$`, out)
	assert.Regexp(t, `(?m)^  \d\d:\d\d:\d\d  succeeded\s+`+img+` published on hello/latest\n\z`, out)

	// Watching the ended bake shows its end and outcome.
	out, code, err = run(t, "bake", "status", "hello", "--watch")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Equal(t, []string{last}, checkPlainWatch(t, out))
	assert.Contains(t, out, img+" built and tested; channel latest → "+img)

	_, code, err = run(t, "bake", "status", "hello", "--channel", "stable")
	assert.Equal(t, 1, code)
	require.Error(t, err)
	assert.Equal(t, "no bake of hello for channel stable yet; start one with: imago bake start -f FILE (a bake spec with service: hello, channel: stable)", err.Error())

	// The bake moved channel latest: image channels and image show say so.
	out, _, err = run(t, "image", "channels", "hello", "-o", "json")
	require.NoError(t, err, out)
	var chans []struct {
		Channel string `json:"channel"`
		ImageID string `json:"imageId"`
		Seq     int64  `json:"seq"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &chans), out)
	require.Len(t, chans, 1)
	assert.Equal(t, "latest", chans[0].Channel)
	assert.Equal(t, img, chans[0].ImageID)
	assert.Equal(t, int64(1), chans[0].Seq)
	out, _, err = run(t, "image", "channels", "hello")
	require.NoError(t, err, out)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 2, out)
	assert.Regexp(t, `^CHANNEL\s+IMAGE\s+PREVIOUS\s+MOVED\s+BY\s+REASON$`, rows[0])
	assert.Regexp(t, `^latest\s+`+img+`\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\S+\s+bake$`, rows[1])

	out, _, err = run(t, "image", "show", img, "-o", "json")
	require.NoError(t, err, out)
	var detail map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(out), &detail), out)
	assert.JSONEq(t, `["latest"]`, string(detail["channels"]))
	assert.JSONEq(t, `[]`, string(detail["children"]), "an empty list is [], not null")
	assert.Contains(t, string(detail["image"]), `"builder": "imago-local"`)
}
