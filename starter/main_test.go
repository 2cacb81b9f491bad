package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/server/temporaltest"
)

// run executes the CLI in-process and returns stdout and the exit code.
func run(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), exitCode(err), err
}

func TestUsageErrorsExitTwoAndSayWhatToDo(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing may be contacted
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("service: hello\nfleet: {size: 0}\nlisten: 127.0.0.1:9080\nimage: {id: img-000000000001}\n"), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "start"}, "-f FILE is required"},
		{[]string{"rollout", "start", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
		{[]string{"rollout", "start", "-f", bad, "--bogus"}, "unknown flag: --bogus"},
		{[]string{"rollout", "status"}, "accepts 1 arg(s), received 0"},
		{[]string{"rollout", "list", "-o", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: want table or json (see imago rollout list --help)`},
		{[]string{"rollout", "list", "--limit", "0"}, "--limit 0: want a number of rollouts, 1 or more"},
		{[]string{"rollout", "start", "-f", bad, "--watch", "-o", "json"}, "--watch draws a live display for people and cannot be combined with -o json; use --wait -o json"},
		{[]string{"rollout", "status", "hello", "--watch", "-o", "json"}, "cannot be combined with -o json"},
		{[]string{"bake", "start", "-f", bad, "--watch", "-o", "json"}, "cannot be combined with -o json"},
		{[]string{"bake", "status", "hello", "--watch", "-o", "json"}, "cannot be combined with -o json"},
		{[]string{"completion"}, "name a shell: imago completion bash|zsh|fish|powershell"},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "imago completion"`},
		{[]string{"image", "import", "dir"}, "--service and --entrypoint are required"},
	} {
		_, code, err := run(t, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.Equal(t, 2, code, "%v: %v", tc.args, err)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}

func TestInvalidSpecListsEveryProblemAndStartsNothing(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	f := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(f, []byte("service: hello\nfleet: {size: -3}\n"), 0o644))
	_, code, err := run(t, "rollout", "start", "-f", f)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), "fleet.size: line 2: must be between 1 and 10000, got -3")
	assert.Contains(t, err.Error(), "listen: is required for the local provider")
	assert.NotContains(t, err.Error(), "connect to Temporal", "a bad spec must be refused before anything is contacted")
}

func TestImageImportIsContentAddressedAndListed(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))

	out, code, err := run(t, "image", "import", dir, "--service", "hello", "--entrypoint", "./app.sh")
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	id := strings.TrimSpace(out)
	assert.Regexp(t, `^img-[0-9a-f]{12}$`, id)

	again, _, err := run(t, "image", "import", dir, "--service", "hello", "--entrypoint", "./app.sh")
	require.NoError(t, err)
	assert.Equal(t, id, strings.TrimSpace(again), "the same tree must give the same image")

	list, _, err := run(t, "image", "list", "--service", "hello", "-o", "json")
	require.NoError(t, err)
	assert.Contains(t, list, `"id": "`+id+`"`)
	assert.Contains(t, list, `"./app.sh"`)
}

// --label records labels with the image: what campaigns select services by.
func TestImageImportRecordsLabels(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	_, _, err := run(t, "image", "import", dir, "--service", "ledger", "--entrypoint", "./app.sh", "--label", "team=payments", "--label", "tier=1")
	require.NoError(t, err)
	list, _, err := run(t, "image", "list", "--service", "ledger", "-o", "json")
	require.NoError(t, err)
	assert.Contains(t, list, `"team": "payments"`)
	assert.Contains(t, list, `"tier": "1"`)
}

func TestImageImportRefusesLinksThatLeaveTheDirectory(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	for _, tc := range []struct {
		name  string
		links [][2]string // name, target
		want  string
	}{
		{"absolute", [][2]string{{"passwd", "/etc/passwd"}}, `symlink "passwd" points to the absolute path "/etc/passwd"`},
		{"up", [][2]string{{"conf/up", "../.."}}, `symlink "conf/up" → "../.." leads outside the image`},
		{"chain", [][2]string{{"conf/here", ".."}, {"data", "conf/here/../x"}}, `symlink "data" → "conf/here/../x" leads outside the image`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "conf"), 0o755))
			for _, l := range tc.links {
				require.NoError(t, os.Symlink(l[1], filepath.Join(dir, l[0])))
			}
			_, code, err := run(t, "image", "import", dir, "--service", "hello", "--entrypoint", "./app.sh")
			require.Error(t, err)
			assert.Equal(t, 2, code)
			assert.Contains(t, err.Error(), "import "+dir+": ")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	list, _, err := run(t, "image", "list", "-o", "json")
	require.NoError(t, err)
	assert.Equal(t, "[]", strings.TrimSpace(list), "nothing may be published")
}

func TestStatusOfAServiceNeverRolledOutSaysHowToStart(t *testing.T) {
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	t.Setenv("TEMPORAL_ADDRESS", ts.GetFrontendHostPort())
	t.Setenv("TEMPORAL_NAMESPACE", ts.GetDefaultNamespace())
	_, code, err := run(t, "rollout", "status", "nope", "-e", "prod")
	assert.Equal(t, 1, code)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no rollout of nope to prod yet; start one with: imago rollout start -f FILE")
}

// TestEveryCommandHasAnExample walks the command tree as a user sees it (with
// cobra's help command and imago's completion command) and names every runnable
// command whose --help has no example.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := newRoot()
	root.InitDefaultHelpCmd() // what Execute adds; idempotent
	var missing, seen []string
	for _, c := range allCommands(root) {
		if !c.Runnable() || c.Hidden {
			continue
		}
		seen = append(seen, c.CommandPath())
		if strings.TrimSpace(c.Example) == "" {
			missing = append(missing, c.CommandPath())
		}
	}
	assert.Empty(t, missing, "commands without an example in --help")
	for _, want := range []string{"imago help", "imago completion bash", "imago completion powershell", "imago rollout start",
		"imago rollout status", "imago bake status", "imago image channels", "imago status"} {
		assert.Contains(t, seen, want, "the walk must reach every command")
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

func TestImageImportSplitsTheEntrypointAndKeepsItsVariables(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "whoami"), []byte("#!/bin/sh\necho hi\n"), 0o755))

	_, _, err := run(t, "image", "import", dir, "--service", "whoami", "--entrypoint", "./whoami --port $PORT --name '${GREETING} world'")
	require.NoError(t, err)
	// A program of the host, the way users write a shell entrypoint.
	_, _, err = run(t, "image", "import", dir, "--service", "shell", "--entrypoint", `/bin/sh -c 'exec ./whoami --port "$PORT"'`)
	require.NoError(t, err)

	list, _, err := run(t, "image", "list", "-o", "json")
	require.NoError(t, err)
	assert.Contains(t, list, `"./whoami",
      "--port",
      "$PORT",
      "--name",
      "${GREETING} world"`)
	assert.Contains(t, list, `"/bin/sh",
      "-c",
      "exec ./whoami --port \"$PORT\""`)
}

func TestImageImportRefusesAMissingProgramOrBadVariables(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	for entry, want := range map[string]string{
		"./whoami --port $PORT":  `--entrypoint "./whoami --port $PORT": program ./whoami is a path inside the image and does not exist: ` + dir + " holds no ./whoami",
		"/no/such/sh -c 'x'":     "program /no/such/sh is a path on the host (it starts with /) and does not exist",
		"no-such-program-xyz":    "program no-such-program-xyz is neither in the image nor in the PATH of this host",
		"./notes.txt":            "is not executable",
		"./app.sh --port ${PORT": "cannot be expanded when an instance starts: word 3 \"${PORT\": ${ is not closed by }",
		"./app.sh ${PORT:-8080}": "${PORT:-8080} is not a variable",
		"./app.sh 'unclosed":     "cannot be split into words",
	} {
		_, code, err := run(t, "image", "import", dir, "--service", "hello", "--entrypoint", entry)
		require.Error(t, err, entry)
		assert.Equal(t, 2, code, entry)
		assert.Contains(t, err.Error(), want, entry)
		assert.NotContains(t, err.Error(), "staging directory", "import speaks of the image, not of a bake's staging: %v", err)
		assert.NotContains(t, err.Error(), "provision commands", "import speaks of the image, not of a bake: %v", err)
	}
	list, _, err := run(t, "image", "list", "-o", "json")
	require.NoError(t, err)
	assert.Equal(t, "[]", strings.TrimSpace(list), "nothing may be published")
}

func TestRolloutStartRefusesAnEntrypointVariableEnvDoesNotProvide(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	out, _, err := run(t, "image", "import", dir, "--service", "hello", "--entrypoint", "./app.sh --port $PORT --greeting ${GREETING}")
	require.NoError(t, err)
	id := strings.TrimSpace(out)

	f := filepath.Join(t.TempDir(), "rollout.yaml")
	require.NoError(t, os.WriteFile(f, []byte("service: hello\nimage: {id: "+id+"}\nlisten: 127.0.0.1:9080\nenv:\n  LOG_LEVEL: debug\n"), 0o644))
	_, code, err := run(t, "rollout", "start", "-f", f)
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), `env: line 4: image `+id+`: entrypoint "./app.sh --port $PORT --greeting ${GREETING}" uses GREETING, which is neither PORT, HOST nor a key of env`)
	assert.NotContains(t, err.Error(), "connect to Temporal", "refused before anything is contacted")
}
