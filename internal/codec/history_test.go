package codec_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// The child mode of this test binary: a second process that opens the codec of
// $IMAGO_HOME and prints one encrypted payload (base64 of its protobuf).
const childHomeEnv = "IMAGO_CODEC_TEST_CHILD_HOME"

var helloBuild string // a build of examples/hello

func TestMain(m *testing.M) {
	router.RunIfChild() // the local provider's routers re-execute this binary
	if home := os.Getenv(childHomeEnv); home != "" {
		os.Exit(child(home))
	}
	dir, err := os.MkdirTemp("", "imago-codec-hello-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		helloBuild = filepath.Join(dir, "v1")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v1", "-o", filepath.Join(helloBuild, "hello"), "github.com/imago/imago/examples/hello")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build hello: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func child(home string) int {
	c, err := codec.Shared(context.Background(), "", home)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := c.DataConverter().ToPayload("written by process " + fmt.Sprint(os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, err := proto.Marshal(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(base64.StdEncoding.EncodeToString(b))
	return 0
}

func TestSecondProcessReadsTheKeyFileTheFirstMade(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childHomeEnv+"="+home)
	out, err := cmd.Output()
	require.NoError(t, err, "child: %s", out)
	fi, err := os.Stat(filepath.Join(home, codec.KeyFileName))
	require.NoError(t, err, "the first process made the key file")
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	var p commonpb.Payload
	require.NoError(t, proto.Unmarshal(raw, &p))
	assert.Equal(t, codec.Encoding, string(p.Metadata["encoding"]))

	c, err := codec.Shared(context.Background(), "", home)
	require.NoError(t, err)
	var got string
	require.NoError(t, c.DataConverter().FromPayload(&p, &got))
	assert.Equal(t, fmt.Sprintf("written by process %d", cmd.Process.Pid), got)
}

// TestSecretInARolloutNeverReachesTheServer runs a real rollout through a real
// worker dialled by app.Config.Dial, with a secret in its input, then reads the
// history back as the server stores it.
func TestSecretInARolloutNeverReachesTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	_, err := ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)

	home := t.TempDir()
	t.Cleanup(func() {
		if err := local.KillAll(home); err != nil {
			t.Errorf("kill processes of %s: %v", home, err)
		}
	})
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := app.Config{Home: home, TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), Logger: quiet}
	deps, err := app.OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	c, err := cfg.Dial(ctx) // what imago-worker, the CLI and the API use
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := app.NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	img, err := deps.Catalog.Import(ctx, helloBuild, "hello", []string{"./hello"}, nil)
	require.NoError(t, err)
	secret := randomSecret(t)
	soak := contract.Duration(0)
	r := spec.Rollout{Rollout: contract.Rollout{
		Service: "hello", Environment: "dev", Image: contract.ImageRef{ID: img.ID},
		Fleet: contract.FleetSpec{Size: 1}, Listen: freeAddr(t),
		Health: contract.Health{Interval: contract.Duration(100 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
		Checks: []contract.Check{{Path: "/?probe=" + secret}},
		Soak:   &soak,
	}}
	run, err := rollouts.Start(ctx, c, r, rollouts.StartOptions{StartedBy: "alice " + secret})
	require.NoError(t, err)
	var res contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res), "the rollout succeeds with encrypted payloads")

	// As the server stores it: a client without the codec.
	raw, err := client.Dial(client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace,
		Logger: sdklog.NewStructuredLogger(quiet)})
	require.NoError(t, err)
	defer raw.Close()
	var events []*historypb.HistoryEvent
	it := raw.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	require.NotEmpty(t, events)
	encryptedCount := 0
	for _, ev := range events {
		b, err := proto.Marshal(ev)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(b, []byte(secret)), "event %d (%s) holds the secret in its raw bytes", ev.GetEventId(), ev.GetEventType())
		for path, p := range payloadsOf(ev) {
			assert.False(t, bytes.Contains(p.GetData(), []byte(secret)), "payload %s of event %d", path, ev.GetEventId())
			if strings.Contains(path, "search_attributes") {
				continue // indexed by the server, so plaintext by design: service, environment, image, phase
			}
			assert.Equal(t, codec.Encoding, string(p.GetMetadata()["encoding"]), "payload %s of event %d (%s) is encrypted", path, ev.GetEventId(), ev.GetEventType())
			encryptedCount++
		}
	}
	t.Logf("%d events, %d encrypted payloads, none holding the secret", len(events), encryptedCount)
	assert.Greater(t, encryptedCount, 10)

	desc, err := raw.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	summary := desc.GetExecutionConfig().GetUserMetadata().GetSummary()
	require.NotNil(t, summary)
	assert.Equal(t, codec.Encoding, string(summary.GetMetadata()["encoding"]), "the UI's summary is encrypted too")
	var undecodable string
	assert.Error(t, converter.GetDefaultDataConverter().FromPayload(summary, &undecodable), "without the codec the summary cannot be read")

	// Through the codec, the same history reads in plaintext.
	dc := mustCodec(t, cfg).DataConverter()
	var in contract.RolloutInput
	require.NoError(t, dc.FromPayloads(events[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &in))
	assert.Equal(t, "alice "+secret, in.StartedBy)
	assert.Equal(t, "/?probe="+secret, in.Spec.Checks[0].Path)
	var s string
	require.NoError(t, dc.FromPayload(summary, &s))
	assert.Equal(t, workflows.RolloutSummary(in.Spec), s)
	var details string
	require.NoError(t, dc.FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetDetails(), &details))
	assert.Contains(t, details, "started by alice "+secret)

	st, err := rollouts.Get(ctx, c, "hello", "dev") // what `imago rollout status` shows
	require.NoError(t, err)
	require.NotNil(t, st.Progress)
	assert.Equal(t, "alice "+secret, st.Progress.StartedBy)
	assert.Equal(t, "Succeeded", st.Status)
}

func mustCodec(t *testing.T, cfg app.Config) *codec.Codec {
	t.Helper()
	c, err := cfg.PayloadCodec(context.Background())
	require.NoError(t, err)
	return c
}

// payloadsOf returns every Payload inside m, by field path.
func payloadsOf(m proto.Message) map[string]*commonpb.Payload {
	out := map[string]*commonpb.Payload{}
	var walk func(path string, m protoreflect.Message)
	walk = func(path string, m protoreflect.Message) {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			out[path] = p
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			name := path + "." + string(fd.Name())
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(fmt.Sprintf("%s[%d]", name, i), v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(fmt.Sprintf("%s[%s]", name, k.String()), mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(name, v.Message())
			}
			return true
		})
	}
	walk("event", m.ProtoReflect())
	return out
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "s3cret-" + hex.EncodeToString(b)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
