package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// A rollout's env reaches its instances: plain values and a secret by
// reference, which the worker reads when instances start. The entrypoint's
// $PORT and ${GREETING} are expanded. The workflow's history, decrypted,
// holds the secret's reference and never its value.
func TestRolloutEnvReachesInstancesAndSecretsStayOutOfHistory(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	const password = "pw-7Hq2-never-in-history"
	secret := filepath.Join(t.TempDir(), "db-password")
	require.NoError(t, os.WriteFile(secret, []byte(password+"\n"), 0o600))
	img, err := e.deps.Catalog.Import(context.Background(), filepath.Join(helloBuilds, "v1"), "hello",
		[]string{"./hello", "--port", "$PORT", "--greeting=${GREETING}"}, nil) // hello reads $PORT and ignores its arguments
	require.NoError(t, err)

	res, err := e.rollout(e.spec(img.ID, func(r *spec.Rollout) {
		r.Fleet.Size = 2
		r.Env = map[string]contract.EnvValue{
			"GREETING":    {Value: "hi there"},
			"DB_PASSWORD": {Secret: "file://" + secret},
		}
	}))
	require.NoError(t, err)
	assert.Equal(t, "hello from v1", e.get())

	f, err := e.deps.Provider.Describe(context.Background(), res.FleetID)
	require.NoError(t, err)
	require.Len(t, f.Instances, 2)
	for _, in := range f.Instances {
		port := in.Address[strings.LastIndexByte(in.Address, ':')+1:]
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(in.PID) + "/cmdline")
		require.NoError(t, err)
		assert.Equal(t, "hello\x00--port\x00"+port+"\x00--greeting=hi there\x00",
			string(bytes.TrimPrefix(cmdline, []byte(filepath.Join(e.cfg.Home, "images", img.ID)+"/"))))
		environ, err := os.ReadFile("/proc/" + strconv.Itoa(in.PID) + "/environ")
		require.NoError(t, err)
		for _, kv := range []string{"PORT=" + port, "HOST=127.0.0.1", "GREETING=hi there", "DB_PASSWORD=" + password} {
			assert.Contains(t, strings.Split(string(environ), "\x00"), kv)
		}
	}

	history := e.decryptedHistory(e.last.GetID(), e.last.GetRunID())
	assert.Contains(t, history, "file://"+secret, "the reference travels (decryption worked)")
	assert.NotContains(t, history, password, "the secret's value is in the workflow history")
}

// An entrypoint that uses a variable the rollout's env does not provide, or a
// secret the worker cannot read, fails the rollout with a reason naming env,
// and the previous fleet keeps serving alone.
func TestRolloutEnvProblemsFailBeforeInstancesStart(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	res1, err := e.rollout(e.spec(e.importImage("v1")))
	require.NoError(t, err)

	img, err := e.deps.Catalog.Import(context.Background(), filepath.Join(helloBuilds, "v2"), "hello",
		[]string{"./hello", "--greeting=${GREETING}"}, nil)
	require.NoError(t, err)
	_, err = e.rollout(e.spec(img.ID))
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), `env: image `+img.ID+`: entrypoint "./hello --greeting=${GREETING}" uses GREETING, which is neither PORT, HOST nor a key of env; add it to the spec's env:`)

	missing := filepath.Join(t.TempDir(), "none")
	_, err = e.rollout(e.spec(e.importImage("v2"), func(r *spec.Rollout) {
		r.Env = map[string]contract.EnvValue{"DB_PASSWORD": {Secret: "file://" + missing}}
	}))
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "env.DB_PASSWORD: secret file://"+missing+": the file does not exist on the worker's host")

	assert.Equal(t, "hello from v1", e.get())
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{res1.FleetID: 3}, byFleet)
	assert.Equal(t, []string{res1.FleetID}, e.fleetIDs())
}

// decryptedHistory is a workflow's history with its payloads and failures
// decrypted, as JSON.
func (e *env) decryptedHistory(workflowID, runID string) string {
	ctx := context.Background()
	h := historypb.History{Events: e.history(workflowID, runID)}
	pc, err := e.cfg.PayloadCodec(ctx)
	require.NoError(e.t, err)
	require.NoError(e.t, proxy.VisitPayloads(ctx, &h, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return pc.Decode(p)
		},
	}))
	data, err := protojson.Marshal(&h)
	require.NoError(e.t, err)
	// Payload data is base64 in protojson: decode every payload's data too.
	var out strings.Builder
	out.Write(data)
	for _, ev := range h.Events {
		proxy.VisitPayloads(ctx, ev, proxy.VisitPayloadsOptions{Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			for _, p := range ps {
				out.WriteString("\n")
				out.Write(p.GetData())
			}
			return ps, nil
		}})
	}
	return out.String()
}
