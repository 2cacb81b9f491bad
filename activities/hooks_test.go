package activities

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/webhook"
)

func runHook(t *testing.T, a *Activities, in contract.HookInput) (contract.HookResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.RunHook, in)
	var res contract.HookResult
	if err == nil {
		require.NoError(t, v.Get(&res))
	}
	return res, err
}

// RunHook signs the body with the spec's key reference (resolved on the
// worker) or IMAGO_HOOK_SECRET; a refused address or a missing key fails
// without retry and no error holds the key.
func TestRunHookSignsAndIsGuarded(t *testing.T) {
	var body []byte
	var sig string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		sig = r.Header.Get(webhook.SignatureHeader)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	a := &Activities{Analysis: netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0), HookSecret: "worker-key"}
	in := contract.HookInput{URL: srv.URL + "/pre", Payload: contract.HookPayload{Hook: contract.HookPreRollout, Service: "web", Environment: "prod"}}

	res, err := runHook(t, a, in)
	require.NoError(t, err)
	assert.Equal(t, 503, res.Status)
	assert.True(t, webhook.Verify([]byte("worker-key"), body, sig))
	var p contract.HookPayload
	require.NoError(t, json.Unmarshal(body, &p))
	assert.Equal(t, "web", p.Service)
	assert.NotZero(t, p.Timestamp)

	// The spec's reference wins over the worker's key.
	keyFile := filepath.Join(t.TempDir(), "hook-key")
	require.NoError(t, os.WriteFile(keyFile, []byte("spec-key\n"), 0o600))
	in.Secret = "file://" + keyFile
	_, err = runHook(t, a, in)
	require.NoError(t, err)
	assert.True(t, webhook.Verify([]byte("spec-key"), body, sig))

	// A told hook (Retry) makes a non-2xx answer an error to retry.
	in.Retry = true
	_, err = runHook(t, a, in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "answered 503 Service Unavailable")

	// Denied addresses: never dialed, not retried.
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://10.1.2.3:8080/hook"} {
		_, err = runHook(t, a, contract.HookInput{URL: u, Payload: in.Payload})
		require.Error(t, err, u)
		assert.Contains(t, err.Error(), "refused by imago's outbound guard")
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		assert.True(t, app.NonRetryable())
	}
	// Loopback without the operator's allow list.
	_, err = runHook(t, &Activities{Analysis: netguard.New(netguard.Allow{}).Client(0), HookSecret: "k"}, contract.HookInput{URL: srv.URL, Payload: in.Payload})
	assert.ErrorContains(t, err, "127.0.0.1 is loopback")

	// No key at all.
	_, err = runHook(t, &Activities{Analysis: a.Analysis}, contract.HookInput{URL: srv.URL, Payload: in.Payload})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no signing key: set IMAGO_HOOK_SECRET")
	assert.NotContains(t, err.Error(), "worker-key")
}
