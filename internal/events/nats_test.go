package events_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
	"gocloud.dev/pubsub"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/events"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

func TestMain(m *testing.M) {
	router.RunIfChild() // the local provider starts routers by re-running this binary
	os.Exit(m.Run())
}

// startNATS runs a real nats-server on a free 127.0.0.1 port and returns its URL;
// the server is killed by pid when the test ends.
func startNATS(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	require.NoError(t, err, "nats-server is not installed: run scripts/system-deps.sh (Debian package nats-server)")
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", "-1") // -1: a random free port, logged
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`Listening for client connections on (\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return "nats://" + a
	case <-time.After(15 * time.Second):
		t.Fatal("nats-server did not report its client port within 15s")
		return ""
	}
}

// buildHello builds examples/hello into a fresh directory, ready to import.
func buildHello(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v1", "-o", filepath.Join(dir, "hello"), "github.com/imago/imago/examples/hello").CombinedOutput()
	require.NoError(t, err, "build examples/hello: %s", out)
	return dir
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// A real rollout on a real Temporal server and worker publishes its phases to a
// real NATS server through IMAGO_EVENTS_URL=nats://subject, and a NATS subscriber
// receives each one, in order, as a valid CloudEvent.
func TestRolloutPhasesArriveOnNATS(t *testing.T) {
	t.Setenv("NATS_SERVER_URL", startNATS(t))
	const topic = "nats://imago.events.test"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	sub, err := pubsub.OpenSubscription(ctx, topic)
	require.NoError(t, err)
	defer sub.Shutdown(context.Background())

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	_, err = ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)
	home := t.TempDir()
	t.Cleanup(func() { require.NoError(t, local.CleanupHome(home)) })
	cfg := app.Config{Home: home, TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), EventsURL: topic}
	deps, err := app.OpenDeps(ctx, cfg)
	require.NoError(t, err)
	defer deps.Close()
	require.Equal(t, topic, deps.Events.URL())
	c, err := cfg.Dial(ctx)
	require.NoError(t, err)
	defer c.Close()
	w := app.NewWorker(c, deps.Activities)
	require.NoError(t, w.Start())
	defer w.Stop()

	img, err := deps.Catalog.Import(ctx, buildHello(t), "hello", []string{"./hello"}, nil)
	require.NoError(t, err)
	r := spec.Rollout{Rollout: contract.Rollout{
		Service: "hello", Environment: "test", Image: contract.ImageRef{ID: img.ID}, Fleet: contract.FleetSpec{Size: 1}, Listen: freeAddr(t),
		Health: contract.Health{Interval: contract.Duration(100 * time.Millisecond), Timeout: contract.Duration(30 * time.Second)},
		Checks: []contract.Check{{Path: "/", ExpectBody: "v1"}},
	}}
	require.NoError(t, r.Normalize())
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: r.WorkflowID(), TaskQueue: contract.TaskQueue},
		workflows.Rollout, contract.RolloutInput{Spec: r.Rollout, StartedBy: "events-test"})
	require.NoError(t, err)
	var res contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res))

	var got []contract.Event
	for len(got) == 0 || got[len(got)-1].Type != contract.EventRolloutFinished {
		m, err := sub.Receive(ctx)
		require.NoError(t, err, "waiting for the finished event; got %d events", len(got))
		m.Ack()
		ev, err := events.Decode(m.Body)
		require.NoError(t, err, "message %s", m.Body)
		got = append(got, ev)
	}

	var seq []string
	for i, ev := range got {
		seq = append(seq, ev.Type+" "+string(ev.Data.Phase))
		require.Equal(t, fmt.Sprintf("%s/%d", run.GetRunID(), i+1), ev.ID)
		require.Equal(t, "imago/"+ts.GetDefaultNamespace()+"/rollout/test/hello", ev.Source)
		require.Equal(t, "hello/test", ev.Subject)
		require.Equal(t, run.GetRunID(), ev.Data.RunID)
		require.Equal(t, img.ID, ev.Data.Image)
		require.Equal(t, "events-test", ev.Data.StartedBy)
		require.WithinDuration(t, time.Now(), ev.Time, time.Minute)
	}
	require.Equal(t, []string{
		"dev.imago.rollout.phase resolving",
		"dev.imago.rollout.phase provisioning",
		"dev.imago.rollout.phase waiting-healthy",
		"dev.imago.rollout.phase validating",
		"dev.imago.rollout.phase cutting-over",
		"dev.imago.rollout.finished succeeded",
	}, seq)
	last := got[len(got)-1]
	require.Equal(t, "succeeded", last.Data.Outcome)
	require.Equal(t, res.FleetID, last.Data.Fleet)
	require.Contains(t, last.Data.Message, img.ID+" serves test/hello")
}
