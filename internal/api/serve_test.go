package api

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/server/temporaltest"
)

// buildImago builds the imago CLI into a temporary directory.
func buildImago(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "imago")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/imago/imago/starter").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// imagoEnv is the environment of an imago process: only what it needs.
func imagoEnv(home string, extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "IMAGO_HOME=" + home, "TEMPORAL_ADDRESS=127.0.0.1:1"}
	return append(env, extra...)
}

// `imago serve` refuses to start without tokens or with a tokens file others can
// read (exit 2, before contacting anything), serves with them, logs each token's
// scopes (never the token), and shuts down gracefully on SIGTERM (exit 0).
func TestServeCommand(t *testing.T) {
	bin := buildImago(t)
	home := t.TempDir()
	readable := filepath.Join(home, "readable-tokens")
	require.NoError(t, os.WriteFile(readable, []byte(testToken+" admin\n"), 0o600))
	require.NoError(t, os.Chmod(readable, 0o644))
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"serve"}, nil, "no API token is configured"},
		{[]string{"serve", "--insecure-no-auth", "--listen", "0.0.0.0:0"}, nil, "--listen 0.0.0.0:0 is not one"},
		{[]string{"serve"}, []string{"IMAGO_API_TOKENS=short"}, "is 5 characters; use at least 16"},
		{[]string{"serve", "--tokens-file", filepath.Join(home, "missing")}, nil, "read the tokens file"},
		{[]string{"serve", "--tokens-file", readable}, nil, "the tokens file " + readable + " has mode 0644, so its group or others can read or change it; make it private with: chmod 600 " + readable},
		{[]string{"serve"}, []string{"IMAGO_API_TOKENS=" + testToken + " deploy:hello/prod/x"}, `IMAGO_API_TOKENS: the 1st scope "deploy:hello/prod/x": want deploy:SERVICE/ENV`},
		{[]string{"serve", "extra"}, []string{"IMAGO_API_TOKENS=" + testToken}, "unknown command"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = imagoEnv(home, tc.env...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%v: %s", tc.args, out)
		assert.Equal(t, 2, exit.ExitCode(), "%v: %s", tc.args, out)
		assert.Contains(t, string(out), tc.want, "%v", tc.args)
		assert.NotContains(t, string(out), "connect to Temporal", "%v: refused before contacting anything", tc.args)
	}

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	tokens := filepath.Join(home, "tokens")
	const adminTok = "admin-0123456789abcdef"
	require.NoError(t, os.WriteFile(tokens, []byte("# the CI token\n"+testToken+" deploy:hello/staging, approve:*/prod\n"+adminTok+" admin\n"), 0o600))
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--tokens-file", tokens)
	cmd.Env = imagoEnv(home, "TEMPORAL_ADDRESS="+ts.GetFrontendHostPort(), "TEMPORAL_NAMESPACE="+ts.GetDefaultNamespace(),
		"IMAGO_API_TOKENS="+readTok) // the older format: read only
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})

	// The log names the address it listens on.
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	readUntil := func(what string, done func(line string) bool) {
		deadline := time.After(time.Minute)
		for {
			select {
			case line, ok := <-lines:
				require.True(t, ok, "imago serve ended before %s:\n%s", what, strings.Join(log, "\n"))
				log = append(log, line)
				if done(line) {
					return
				}
			case <-deadline:
				t.Fatalf("imago serve did not %s within a minute:\n%s", what, strings.Join(log, "\n"))
			}
		}
	}
	url := ""
	listening := regexp.MustCompile(`msg="imago API listening" url=(http://127\.0\.0\.1:\d+)`)
	readUntil("listen", func(line string) bool {
		if m := listening.FindStringSubmatch(line); m != nil {
			url = m[1]
		}
		return url != ""
	})

	joined := strings.Join(log, "\n")
	assert.Regexp(t, `msg="api token" token.who=api:[0-9a-f]{8} token.scopes="deploy:hello/staging, approve:\*/prod" token.from="`+regexp.QuoteMeta(tokens)+` line 2"`, joined)
	assert.Contains(t, joined, `token.scopes=read token.from=IMAGO_API_TOKENS`)
	assert.Contains(t, joined, `msg="some API tokens have no scope and can only read;`)
	assert.NotContains(t, joined, testToken, "the log never shows a token")
	assert.NotContains(t, joined, readTok)

	sendBody := func(method, path, token, body string) int {
		req, err := http.NewRequest(method, url+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if method != "GET" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	send := func(method, path, token string) int { return sendBody(method, path, token, "") }
	get := func(path, token string) int { return send("GET", path, token) }
	assert.Equal(t, http.StatusOK, get("/healthz", ""))
	assert.Equal(t, http.StatusOK, get("/readyz", ""))
	assert.Equal(t, http.StatusUnauthorized, get("/v1/rollouts", ""))
	assert.Equal(t, http.StatusOK, get("/v1/rollouts", testToken))
	assert.Equal(t, http.StatusOK, get("/v1/rollouts", readTok))
	assert.Equal(t, http.StatusForbidden, send("POST", "/v1/rollouts/hello/staging/abort", readTok))
	assert.Equal(t, http.StatusForbidden, send("POST", "/v1/schedules/nightly/trigger", testToken), "deploy and approve are not admin")
	// The codec server under /codec/ reads the same tokens, and serves admin only.
	assert.Equal(t, http.StatusUnauthorized, sendBody("POST", "/codec/decode", "", `{"payloads":[]}`))
	assert.Equal(t, http.StatusForbidden, sendBody("POST", "/codec/decode", readTok, `{"payloads":[]}`))
	assert.Equal(t, http.StatusForbidden, sendBody("POST", "/codec/decode", testToken, `{"payloads":[]}`))
	assert.Equal(t, http.StatusOK, sendBody("POST", "/codec/decode", adminTok, `{"payloads":[]}`))

	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGTERM))
	readUntil("stop", func(line string) bool { return strings.Contains(line, `msg=stopped`) })
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("imago serve exited %d after SIGTERM, want 0:\n%s", exit.ExitCode(), strings.Join(log, "\n"))
	}
	require.NoError(t, err)
	assert.Contains(t, strings.Join(log, "\n"), "shutting down: finishing requests in flight")
	_, err = http.Get(url + "/healthz")
	assert.Error(t, err, "nothing listens after shutdown")
}
