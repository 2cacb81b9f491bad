package devserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

var (
	saService = temporal.NewSearchAttributeKeyKeyword("ImagoService")
	saPhase   = temporal.NewSearchAttributeKeyKeyword("ImagoPhase")
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

// recordingHandler keeps the messages it handles.
type recordingHandler struct {
	mu   *sync.Mutex
	msgs *[]string
	slog.Handler
}

func newRecordingHandler(next slog.Handler) recordingHandler {
	return recordingHandler{mu: new(sync.Mutex), msgs: new([]string), Handler: next}
}

func (h recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	*h.msgs = append(*h.msgs, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h recordingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return recordingHandler{mu: h.mu, msgs: h.msgs, Handler: h.Handler.WithAttrs(a)}
}

func (h recordingHandler) WithGroup(n string) slog.Handler {
	return recordingHandler{mu: h.mu, msgs: h.msgs, Handler: h.Handler.WithGroup(n)}
}

func (h recordingHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(*h.msgs)
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	s, err := Start(ctx, cfg)
	require.NoError(t, err)
	t.Logf("Start took %v (frontend %s, UI %q)", time.Since(t0), s.FrontendAddress(), s.UIAddress())
	t.Cleanup(func() { stopServer(t, s) })
	return s
}

func stopServer(t *testing.T, s *Server) {
	t.Helper()
	t0 := time.Now()
	require.NoError(t, s.Stop())
	t.Logf("Stop took %v", time.Since(t0))
}

func newClient(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func startWorker(t *testing.T, c client.Client, taskQueue string, wfs ...any) worker.Worker {
	t.Helper()
	w := worker.New(c, taskQueue, worker.Options{})
	for _, wf := range wfs {
		w.RegisterWorkflow(wf)
	}
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return w
}

func Hello(_ workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

func WaitForSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return "got " + v, nil
}

func listSearchAttributes(t *testing.T, c client.Client, ns string) map[string]enumspb.IndexedValueType {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	require.NoError(t, err)
	return resp.GetCustomAttributes()
}

func TestStartFresh(t *testing.T) {
	dir := t.TempDir()
	logs := newRecordingHandler(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Registered before startServer, so it runs after Stop: a healthy
	// start, run and stop log nothing.
	t.Cleanup(func() { assert.Empty(t, logs.messages(), "server logs") })
	s := startServer(t, Config{
		DBPath:   filepath.Join(dir, "nested", "dir", "temporal.db"), // parents created
		Listen:   "127.0.0.1:0",
		UIListen: "127.0.0.1:0",
		SearchAttributes: map[string]enumspb.IndexedValueType{
			"ImagoService": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			"ImagoPhase":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
		Logger:        slog.New(logs),
		CodecEndpoint: "http://127.0.0.1:8234/codec/",
	})
	assert.Equal(t, "default", s.Namespace())
	assert.NotContains(t, s.FrontendAddress(), ":0")
	require.NotEmpty(t, s.UIAddress())
	c := newClient(t, s)
	ctx := context.Background()

	desc, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	require.NoError(t, err)
	assert.Equal(t, 30*24*time.Hour, desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())

	sas := listSearchAttributes(t, c, "default")
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, sas["ImagoService"])
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, sas["ImagoPhase"])

	resp, err := http.Get("http://" + s.UIAddress() + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "<html")
	// The UI's API proxy reaches the frontend.
	resp, err = http.Get("http://" + s.UIAddress() + "/api/v1/namespaces/default")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	// The browser learns the codec endpoint from the UI's settings.
	resp, err = http.Get("http://" + s.UIAddress() + "/api/v1/settings")
	require.NoError(t, err)
	var settings struct{ Codec struct{ Endpoint string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&settings))
	_ = resp.Body.Close()
	assert.Equal(t, "http://127.0.0.1:8234/codec", settings.Codec.Endpoint)
	// The UI's new-version check (ui-server v2.56) answers with no release: the
	// embedded UI has notifyOnNewVersion off, so it never asks GitHub or Docker Hub.
	resp, err = http.Get("http://" + s.UIAddress() + "/api/v1/releases")
	require.NoError(t, err)
	var releases struct{ Releases map[string]string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&releases))
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, releases.Releases)

	startWorker(t, c, "tq", Hello)
	t0 := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		TaskQueue:             "tq",
		TypedSearchAttributes: temporal.NewSearchAttributes(saService.ValueSet("svc"), saPhase.ValueSet("build")),
	}, Hello, "imago")
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	assert.Equal(t, "hello imago", out)
	t.Logf("workflow round trip took %v", time.Since(t0))

	// The database runs in WAL mode (docs/performance.md): its write-ahead log
	// and shared-memory index lie beside it, its owner's alone like it.
	db := filepath.Join(dir, "nested", "dir", "temporal.db")
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		fi, err := os.Stat(f)
		if assert.NoError(t, err, "the database in WAL mode has %s", filepath.Base(f)) {
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
		}
	}
	_, err = os.Stat(db + "-journal")
	assert.ErrorIs(t, err, os.ErrNotExist, "no rollback journal")
}

func TestRestartKeepsWorkflows(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "temporal.db")
	ctx := context.Background()

	// First run: start a workflow that waits for a signal.
	s1, err := Start(ctx, Config{
		DBPath:           db,
		Listen:           "127.0.0.1:0",
		SearchAttributes: map[string]enumspb.IndexedValueType{"ImagoService": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
		Logger:           testLogger(t).With("srv", "1"),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s1.Stop() })
	c1, err := client.Dial(client.Options{HostPort: s1.FrontendAddress(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	require.NoError(t, err)
	w1 := worker.New(c1, "tq", worker.Options{})
	w1.RegisterWorkflow(WaitForSignal)
	require.NoError(t, w1.Start())
	run, err := c1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    "wf-restart",
		TaskQueue:             "tq",
		TypedSearchAttributes: temporal.NewSearchAttributes(saService.ValueSet("svc1")),
	}, WaitForSignal)
	require.NoError(t, err)
	// Wait until the worker has run the first workflow task.
	require.Eventually(t, func() bool {
		d, err := c1.DescribeWorkflowExecution(ctx, "wf-restart", "")
		return err == nil && d.GetPendingWorkflowTask() == nil && d.GetWorkflowExecutionInfo().GetHistoryLength() >= 3
	}, 20*time.Second, 50*time.Millisecond)
	t.Log("first workflow task done")
	w1.Stop()
	c1.Close()
	t.Log("worker stopped")
	stopServer(t, s1)
	require.NoError(t, s1.Stop(), "second Stop")

	// Second run on the same file, other ports, one more search attribute.
	s2 := startServer(t, Config{
		DBPath:    db,
		Listen:    "localhost:0",
		Retention: 7 * 24 * time.Hour, // changed retention is applied
		SearchAttributes: map[string]enumspb.IndexedValueType{
			"ImagoService": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			"ImagoPhase":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
		Logger: testLogger(t).With("srv", "2"),
	})
	c2 := newClient(t, s2)
	d, err := c2.DescribeWorkflowExecution(ctx, "wf-restart", run.GetRunID())
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, d.GetWorkflowExecutionInfo().GetStatus())
	var svc string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(
		d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["ImagoService"], &svc))
	assert.Equal(t, "svc1", svc)

	desc, err := c2.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	require.NoError(t, err)
	assert.Equal(t, 7*24*time.Hour, desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())

	sas := listSearchAttributes(t, c2, "default")
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, sas["ImagoService"])
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, sas["ImagoPhase"])

	// Visibility survived too.
	require.Eventually(t, func() bool {
		resp, err := c2.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: `ImagoService = "svc1" AND ExecutionStatus = "Running"`,
		})
		return err == nil && len(resp.GetExecutions()) == 1
	}, 10*time.Second, 50*time.Millisecond)

	t.Log("visibility ok")
	startWorker(t, c2, "tq", WaitForSignal)
	require.NoError(t, c2.SignalWorkflow(ctx, "wf-restart", "", "go", "now"))
	t0 := time.Now()
	var out string
	require.NoError(t, c2.GetWorkflow(ctx, "wf-restart", "").Get(ctx, &out))
	assert.Equal(t, "got now", out)
	t.Logf("signal to completion took %v", time.Since(t0))

	// The new attribute is usable.
	run2, err := c2.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		TaskQueue:             "tq",
		TypedSearchAttributes: temporal.NewSearchAttributes(saPhase.ValueSet("deploy")),
	}, WaitForSignal)
	require.NoError(t, err)
	require.NoError(t, c2.SignalWorkflow(ctx, run2.GetID(), "", "go", "x"))
	require.NoError(t, run2.Get(ctx, nil))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func portIsFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	goroutines := runtime.NumGoroutine()

	t.Run("db dir cannot be created", func(t *testing.T) {
		file := filepath.Join(dir, "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o644))
		port := freePort(t)
		_, err := Start(ctx, Config{DBPath: filepath.Join(file, "sub", "temporal.db"), Listen: "127.0.0.1:" + strconv.Itoa(port)})
		require.Error(t, err)
		t.Log(err)
		assert.Contains(t, err.Error(), "creating database directory")
		assert.True(t, portIsFree(port))
	})

	t.Run("listen address taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		db := filepath.Join(dir, "taken.db")
		_, err = Start(ctx, Config{DBPath: db, Listen: l.Addr().String()})
		require.Error(t, err)
		t.Log(err)
		assert.Contains(t, err.Error(), "address already in use")
		assert.Contains(t, err.Error(), l.Addr().String())
		assert.NoFileExists(t, db)
	})

	t.Run("ui address taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		port := freePort(t)
		_, err = Start(ctx, Config{DBPath: filepath.Join(dir, "ui.db"), Listen: "127.0.0.1:" + strconv.Itoa(port), UIListen: l.Addr().String()})
		require.Error(t, err)
		t.Log(err)
		assert.Contains(t, err.Error(), "address already in use")
		assert.True(t, portIsFree(port))
	})

	t.Run("bad input", func(t *testing.T) {
		for _, cfg := range []Config{
			{Listen: "127.0.0.1:0"},
			{DBPath: filepath.Join(dir, "x.db")},
			{DBPath: filepath.Join(dir, "x.db"), Listen: "nohostport"},
			{DBPath: filepath.Join(dir, "x.db"), Listen: "example.com:7233"},
			{DBPath: filepath.Join(dir, "x.db"), Listen: "127.0.0.1:0", Retention: time.Minute},
			{DBPath: filepath.Join(dir, "x.db"), Listen: "127.0.0.1:0", SearchAttributes: map[string]enumspb.IndexedValueType{"X": 0}},
			{DBPath: filepath.Join(dir, "x.db"), Listen: "127.0.0.1:0", CodecEndpoint: "127.0.0.1:8234"},
		} {
			_, err := Start(ctx, cfg)
			require.Error(t, err, "%+v", cfg)
			t.Log(err)
		}
		assert.NoFileExists(t, filepath.Join(dir, "x.db"))
	})

	t.Run("non-loopback address without AllowRemote", func(t *testing.T) {
		db := filepath.Join(dir, "remote.db")
		for _, cfg := range []Config{
			{DBPath: db, Listen: "0.0.0.0:0"},
			{DBPath: db, Listen: ":0"},
			{DBPath: db, Listen: "[::]:0"},
			{DBPath: db, Listen: "192.0.2.10:7233"},
			{DBPath: db, Listen: "127.0.0.1:0", UIListen: "0.0.0.0:0"},
			{DBPath: db, Listen: "127.0.0.1:0", UIListen: ":0"},
		} {
			_, err := Start(ctx, cfg)
			require.Error(t, err, "%+v", cfg)
			assert.Contains(t, err.Error(), "is not a loopback address", "%+v", cfg)
			assert.Contains(t, err.Error(), "--allow-remote", "%+v", cfg)
		}
		assert.NoFileExists(t, db, "nothing was started")
	})

	t.Run("too many keyword attributes", func(t *testing.T) {
		sas := map[string]enumspb.IndexedValueType{}
		for i := range 11 {
			sas[fmt.Sprintf("K%d", i)] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
		port := freePort(t)
		_, err := Start(ctx, Config{DBPath: filepath.Join(dir, "many.db"), Listen: "127.0.0.1:" + strconv.Itoa(port), SearchAttributes: sas})
		require.Error(t, err)
		t.Log(err)
		assert.True(t, portIsFree(port))
		assert.NoFileExists(t, filepath.Join(dir, "many.db"))
	})

	t.Run("not a database", func(t *testing.T) {
		db := filepath.Join(dir, "garbage.db")
		require.NoError(t, os.WriteFile(db, []byte("this is not a SQLite database, not at all"), 0o644))
		_, err := Start(ctx, Config{DBPath: db, Listen: "127.0.0.1:0"})
		require.Error(t, err)
		t.Log(err)
		b, _ := os.ReadFile(db)
		assert.Equal(t, "this is not a SQLite database, not at all", string(b), "file must be left alone")
	})

	// The early failures above happen before any server exists: nothing may
	// be left running.
	assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 },
		5*time.Second, 50*time.Millisecond, "goroutines: before %d, now %d", goroutines, runtime.NumGoroutine())

	// Failure after the server is up (attribute type conflict on an existing
	// database): the server must be stopped again and its ports released.
	t.Run("failure after server start", func(t *testing.T) {
		db := filepath.Join(dir, "conflict.db")
		s := startServer(t, Config{DBPath: db, Listen: "127.0.0.1:0",
			SearchAttributes: map[string]enumspb.IndexedValueType{"ImagoService": enumspb.INDEXED_VALUE_TYPE_KEYWORD}})
		stopServer(t, s)

		port, uiPort := freePort(t), freePort(t)
		t0 := time.Now()
		_, err := Start(ctx, Config{DBPath: db, Listen: "127.0.0.1:" + strconv.Itoa(port), UIListen: "127.0.0.1:" + strconv.Itoa(uiPort),
			SearchAttributes: map[string]enumspb.IndexedValueType{"ImagoService": enumspb.INDEXED_VALUE_TYPE_INT}})
		require.Error(t, err)
		t.Logf("failed Start took %v: %v", time.Since(t0), err)
		assert.Contains(t, err.Error(), `"ImagoService" is registered as Keyword, want Int`)
		assert.True(t, portIsFree(port), "frontend port still bound")
		assert.True(t, portIsFree(uiPort), "UI port still bound")

		// The same ports and database are usable again.
		s = startServer(t, Config{DBPath: db, Listen: "127.0.0.1:" + strconv.Itoa(port), UIListen: "127.0.0.1:" + strconv.Itoa(uiPort)})
		stopServer(t, s)
	})

}

// With AllowRemote a non-loopback address is taken, with a warning in the log.
// (Tests listen on loopback only, so this checks the rule, not a bind.)
func TestAllowRemoteWarns(t *testing.T) {
	logs := newRecordingHandler(slog.NewTextHandler(tWriter{t}, nil))
	logger := slog.New(logs)
	require.NoError(t, checkReach(Config{}, logger, "Listen", net.IPv4(127, 0, 0, 1), "127.0.0.1:7233"))
	require.NoError(t, checkReach(Config{}, logger, "Listen", net.ParseIP("::1"), "[::1]:7233"))
	assert.Empty(t, logs.messages(), "loopback: nothing to say")
	require.Error(t, checkReach(Config{}, logger, "Listen", net.IPv4zero, "0.0.0.0:7233"))
	require.NoError(t, checkReach(Config{AllowRemote: true}, logger, "UIListen", net.IPv4zero, "0.0.0.0:8233"))
	msgs := logs.messages()
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0], "WARN the embedded Temporal server listens beyond this host, without authentication")
}
