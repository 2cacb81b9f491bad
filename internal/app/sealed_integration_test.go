package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/bakes"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/devserver"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// sealedEnv is imago as imago-worker runs it: the embedded Temporal server on a
// SQLite file, and a worker dialled by Config.Dial. plain is a stock SDK client
// with no codec and no key: anyone who can reach the frontend port.
type sealedEnv struct {
	t      *testing.T
	db     string
	cfg    Config
	client client.Client // imago's: encrypts, decrypts, refuses plaintext
	plain  client.Client
}

func newSealedEnv(t *testing.T) *sealedEnv {
	t.Helper()
	ctx := context.Background()
	home := fleetHome(t)
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	db := filepath.Join(home, "temporal.db")
	srv, err := devserver.Start(ctx, devserver.Config{DBPath: db, Listen: "127.0.0.1:0",
		SearchAttributes: workflows.SearchAttributes(), Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Stop()) })

	cfg := Config{Home: home, TemporalAddress: srv.FrontendAddress(), Namespace: srv.Namespace(), Packer: packerBinary(t), Logger: quiet}
	cfg.fill()
	deps, err := OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	c, err := cfg.Dial(ctx)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	plain, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	t.Cleanup(plain.Close)
	return &sealedEnv{t: t, db: db, cfg: cfg, client: c, plain: plain}
}

// markerBake is a bake whose provision command writes marker: run, it leaves the file.
func markerBake(t *testing.T, service, marker string) spec.Bake {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "README"), []byte("source"), 0o600))
	b := spec.Bake{Bake: contract.Bake{Service: service, Source: src, Provision: contract.ShellSteps("echo ran > " + marker), Entrypoint: []string{"./app"}}}
	require.NoError(t, b.Normalize())
	return b
}

// history reads a workflow's events as the server stores them.
func (e *sealedEnv) history(id, runID string) []*historypb.HistoryEvent {
	var out []*historypb.HistoryEvent
	it := e.plain.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		out = append(out, ev)
	}
	return out
}

// A stock SDK client starting Bake or Rollout with a plain JSON input on imago's
// task queue: the workflow fails at once with an error that says why, to the
// plain client and (in full) to imago's, no activity is scheduled, and the
// provision command never runs. The same bake started by imago runs it.
func TestUnsealedStartsAreRefusedAndRunNothing(t *testing.T) {
	e := newSealedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	listen := freeAddr(t)

	bakeMarker := filepath.Join(dir, "BAKE-MARKER")
	b := markerBake(t, "plain-bake", bakeMarker)
	rolloutMarker := filepath.Join(dir, "ROLLOUT-MARKER")
	rb := markerBake(t, "plain-rollout", rolloutMarker)
	r := spec.Rollout{Rollout: contract.Rollout{Service: "plain-rollout", Image: contract.ImageRef{Bake: "bake.yaml"}, Listen: listen}}
	require.NoError(t, r.Normalize())

	for _, start := range []struct {
		workflow, id string
		input        any
	}{
		{"Bake", b.WorkflowID(), contract.BakeInput{Spec: b.Bake, StartedBy: "mallory"}},
		{"Rollout", contract.RolloutWorkflowID(r.Service, r.Environment), contract.RolloutInput{Spec: r.Rollout, Bake: &rb.Bake, StartedBy: "mallory"}},
	} {
		t.Run(start.workflow, func(t *testing.T) {
			run, err := e.plain.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: start.id, TaskQueue: contract.TaskQueue}, start.workflow, start.input)
			require.NoError(t, err, "the server takes the start; the worker refuses it")
			err = run.Get(ctx, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), codec.ErrPlaintext.Error(), "a client without the key is told why")

			// imago's client reads the whole (sealed) message.
			err = e.client.GetWorkflow(ctx, run.GetID(), run.GetRunID()).Get(ctx, nil)
			require.Error(t, err)
			msg := rollouts.Reason(err)
			assert.Contains(t, msg, "unable to decode the workflow function input")
			assert.Contains(t, msg, `has encoding "json/plain"`)
			assert.Contains(t, msg, "IMAGO_ALLOW_PLAINTEXT=1")

			var types []string
			for _, ev := range e.history(run.GetID(), run.GetRunID()) {
				types = append(types, ev.GetEventType().String())
			}
			assert.Equal(t, []string{"WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted", "WorkflowExecutionFailed"},
				types, "refused in its first workflow task, with nothing scheduled")
		})
	}
	assert.NoFileExists(t, bakeMarker, "the refused bake's provision command never ran")
	assert.NoFileExists(t, rolloutMarker, "the refused rollout's bake never ran")

	// The attacker's own worker and workflow, asking imago's task queue for a build
	// activity directly: refused too, and nothing runs.
	activityMarker := filepath.Join(dir, "ACTIVITY-MARKER")
	ab := markerBake(t, "plain-activity", activityMarker)
	w := worker.New(e.plain, "mallory", worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue: contract.TaskQueue, StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		return workflow.ExecuteActivity(ctx, "BakeBuild", contract.BakeBuildInput{Spec: ab.Bake, InputDigest: "sha256:0123456789abcdef0123456789abcdef"}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "Mallory"})
	require.NoError(t, w.Start())
	defer w.Stop()
	run, err := e.plain.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "mallory"}, "Mallory")
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.Error(t, err)
	var actErr *temporal.ActivityError
	require.True(t, errors.As(err, &actErr), "%v", err)
	assert.Contains(t, err.Error(), codec.ErrPlaintext.Error())
	assert.NoFileExists(t, activityMarker, "the refused activity never ran")

	// Control: the same kind of bake, started by imago, runs its provision command.
	sealedMarker := filepath.Join(dir, "SEALED-MARKER")
	srun, err := bakes.Start(ctx, e.client, markerBake(t, "sealed", sealedMarker), "alice")
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		_, err := os.Stat(sealedMarker)
		return err == nil
	}, time.Minute, 50*time.Millisecond, "a sealed bake runs its provision command")
	// Its build fails later (the image has no ./app) and would retry: stop it.
	require.NoError(t, e.client.TerminateWorkflow(ctx, srun.GetID(), srun.GetRunID(), "test done"))
}

// Updates and signals with plaintext arguments, on a worker dialled by
// Config.Dial: the update is rejected before its handler runs, the signal is
// dropped by the channel it was sent to; sealed ones act.
func TestUnsealedUpdatesAndSignalsAreRefused(t *testing.T) {
	e := newSealedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const queue = "sealed-test"
	w := worker.New(e.client, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context) ([]string, error) {
		var acted []string
		if err := workflow.SetUpdateHandler(ctx, "act", func(ctx workflow.Context, what string) error {
			acted = append(acted, "update "+what)
			return nil
		}); err != nil {
			return nil, err
		}
		ch := workflow.GetSignalChannel(ctx, "act")
		for len(acted) < 3 {
			var what string
			ch.Receive(ctx, &what)
			acted = append(acted, "signal "+what)
		}
		return acted, nil
	}, workflow.RegisterOptions{Name: "Acts"})
	require.NoError(t, w.Start())
	defer w.Stop()

	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "Acts")
	require.NoError(t, err)

	h, err := e.plain.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), RunID: run.GetRunID(),
		UpdateName: "act", Args: []any{"plain"}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	require.Error(t, err, "an unsealed update is rejected")
	assert.Contains(t, err.Error(), codec.ErrPlaintext.Error())
	require.NoError(t, e.plain.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "act", "plain"), "the server takes the signal")

	h, err = e.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), RunID: run.GetRunID(),
		UpdateName: "act", Args: []any{"sealed"}, WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	require.NoError(t, h.Get(ctx, nil))
	require.NoError(t, e.client.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "act", "sealed-1"))
	require.NoError(t, e.client.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "act", "sealed-2"))
	var acted []string
	require.NoError(t, run.Get(ctx, &acted))
	assert.Equal(t, []string{"update sealed", "signal sealed-1", "signal sealed-2"}, acted)
}

// A failing provision's output reaches the user through imago's client, and is
// nowhere in the server's SQLite database: failure messages are sealed too.
func TestFailureMessagesAreSealed(t *testing.T) {
	e := newSealedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := markerBake(t, "leaky", filepath.Join(t.TempDir(), "unused"))
	// The secret exists only in the command's output, not in its input.
	b.Variables = map[string]string{"PART1": "leak-", "PART2": randomHex(t)}
	secret := b.Variables["PART1"] + b.Variables["PART2"]
	b.Provision = contract.ShellSteps(`echo "provisioning token ${PART1}${PART2}"; exit 1`)
	run, err := bakes.Start(ctx, e.client, b, "alice")
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), secret, "imago's client shows the failure's message")

	var failures int
	for _, ev := range e.history(run.GetID(), run.GetRunID()) {
		if f := ev.GetActivityTaskFailedEventAttributes().GetFailure(); f != nil {
			failures++
			assert.Equal(t, "Encoded failure", f.GetMessage(), "the server stores the activity failure sealed")
			assert.Equal(t, codec.Encoding, string(f.GetEncodedAttributes().GetMetadata()["encoding"]))
		}
		if f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure(); f != nil {
			failures++
			assert.Equal(t, "Encoded failure", f.GetMessage(), "the server stores the workflow failure sealed")
		}
	}
	assert.GreaterOrEqual(t, failures, 2)

	var files []string
	matches, err := filepath.Glob(e.db + "*") // the database and any journal or WAL beside it
	require.NoError(t, err)
	for _, f := range matches {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		files = append(files, filepath.Base(f))
		assert.False(t, bytes.Contains(data, []byte(secret)), "%s holds the provision output in plain text", f)
		assert.False(t, bytes.Contains(data, []byte(b.Variables["PART2"])), "%s holds part of it", f)
	}
	t.Logf("searched %s for the provision output: absent", strings.Join(files, ", "))
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
