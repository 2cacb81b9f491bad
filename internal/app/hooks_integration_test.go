package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/events"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/webhook"
)

// hookKey is the worker's IMAGO_HOOK_SECRET in these tests.
const hookKey = "s3cret-hook-key"

// receiver is a real HTTP server on loopback that keeps every request and
// answers each path with the statuses it was given, in turn (then 200).
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
	ans map[string][]int
}

type received struct {
	Path   string
	Header http.Header
	Body   []byte
	Status int // what the receiver answered
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{ans: map[string][]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := http.StatusOK
		if q := rc.ans[r.URL.Path]; len(q) > 0 {
			status = q[0]
			if len(q) > 1 || status >= 500 && r.URL.Path == "/broken" {
				rc.ans[r.URL.Path] = q[min(1, len(q)-1):]
			}
			if len(q) == 1 && r.URL.Path != "/broken" {
				delete(rc.ans, r.URL.Path)
			}
		}
		rc.got = append(rc.got, received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: status})
		rc.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, http.StatusText(status))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url(path string) string { return rc.srv.URL + path }

// answer makes path answer statuses, one request each, then 200 (or, for
// /broken, the last status for ever).
func (rc *receiver) answer(path string, statuses ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.ans[path] = statuses
}

func (rc *receiver) at(path string) []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []received
	for _, r := range rc.got {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls until path received n requests.
func (rc *receiver) waitFor(t *testing.T, path string, n int) []received {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(rc.at(path)) < n {
		require.True(t, time.Now().Before(deadline), "%s received %d requests, want %d", path, len(rc.at(path)), n)
		time.Sleep(20 * time.Millisecond)
	}
	return rc.at(path)
}

// hookPayload checks a hook request's signature with the key, its headers,
// and decodes its body.
func hookPayload(t *testing.T, r received) contract.HookPayload {
	t.Helper()
	require.True(t, webhook.Verify([]byte(hookKey), r.Body, r.Header.Get(webhook.SignatureHeader)),
		"%s: signature %q does not verify over the body", r.Path, r.Header.Get(webhook.SignatureHeader))
	assert.False(t, webhook.Verify([]byte("another key"), r.Body, r.Header.Get(webhook.SignatureHeader)))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.NotEmpty(t, r.Header.Get(webhook.DeliveryHeader))
	var p contract.HookPayload
	require.NoError(t, json.Unmarshal(r.Body, &p))
	assert.Equal(t, strconv.FormatInt(p.Timestamp, 10), r.Header.Get(webhook.TimestampHeader))
	assert.InDelta(t, time.Now().Unix(), p.Timestamp, 300, "the timestamp is of now")
	assert.Equal(t, "hello", p.Service)
	assert.Equal(t, "test", p.Environment)
	assert.Equal(t, "rollout/test/hello", p.WorkflowID)
	assert.NotEmpty(t, p.RunID)
	assert.Equal(t, "integration-test", p.StartedBy)
	return p
}

// hookCommands are what hooks and notify targets add to a history: the two
// version markers' change IDs and the two activities' types.
var hookCommands = []string{`"phase-hooks"`, `"notify-targets"`, `"` + contract.ActivityRunHook + `"`, `"` + contract.ActivityNotify + `"`}

// hooksEnv is an env whose worker signs hooks with hookKey and lets hooks and
// notifications reach loopback (as IMAGO_ANALYSIS_ALLOW=127.0.0.1 would).
func hooksEnv(t *testing.T) *env {
	e := newEnv(t)
	e.deps.Activities.Analysis = netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)
	e.deps.Activities.HookSecret = hookKey
	return e
}

// A canary with every hook and notification: preRollout is asked before
// provisioning; confirmTrafficIncrease answers 409 twice for the first step,
// and the weight is held (v1 keeps all traffic) until it answers 200;
// postRollout answers 503 once and is told again; the notify targets get the
// success in slack, teams and json, the worker's IMAGO_NOTIFY_URL too, and a
// target that always fails does not fail the rollout.
func TestHooksHoldTrafficAndNotificationsTellOfSuccess(t *testing.T) {
	e := hooksEnv(t)
	rc := newReceiver(t)
	e.deps.Activities.NotifyURL = rc.url("/default")
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)
	require.Len(t, rc.waitFor(t, "/default", 1), 1, "IMAGO_NOTIFY_URL is told of v1's success too")
	// v1 has neither hooks nor notify targets: its history records no new
	// version marker, and no activity, for them (IMAGO_NOTIFY_URL included).
	h := e.decryptedHistory(e.last.GetID(), e.last.GetRunID())
	for _, s := range hookCommands {
		assert.NotContains(t, h, s, "v1's history")
	}

	rc.answer("/confirm", http.StatusConflict, http.StatusConflict)
	rc.answer("/post", http.StatusServiceUnavailable)
	rc.answer("/broken", http.StatusInternalServerError)
	r := e.spec(v2, func(r *spec.Rollout) {
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: ip(50)}}}
		r.Hooks = &contract.Hooks{PreRollout: rc.url("/pre"), ConfirmTrafficIncrease: rc.url("/confirm"), PostRollout: rc.url("/post"),
			Rollback: rc.url("/rollback"), Interval: contract.Duration(300 * time.Millisecond)}
		r.Notify = []contract.NotifyTarget{{URL: rc.url("/slack")}, {URL: rc.url("/teams"), Format: "teams", On: []contract.Notice{"succeeded"}},
			{URL: rc.url("/json"), Format: "json"}, {URL: rc.url("/broken"), On: []contract.Notice{"succeeded"}}}
	})
	ctx := context.Background()
	run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)

	// Held: the hook said no twice; v1 keeps all the traffic meanwhile.
	e.waitProgress("hold for the confirmTrafficIncrease hook", func(st rollouts.Status) bool {
		return strings.Contains(st.Progress.Step, "waiting for the confirmTrafficIncrease hook to allow 50%")
	})
	route, err := e.deps.Provider.Route(ctx, contract.RouteKey{Service: "hello", Environment: "test"})
	require.NoError(t, err)
	require.Len(t, route.Backends, 1, "no weight moved while the hook says no")
	assert.Equal(t, res1.FleetID, route.Backends[0].FleetID)
	assert.Equal(t, "hello from v1", e.get())

	var res contract.RolloutResult
	require.NoError(t, run.Get(ctx, &res), "the rollout succeeds once the hook agrees, whatever the broken notification target says")
	assert.Equal(t, "hello from v2", e.get())
	e.recordHistory("rollout-hooks-and-notify", run.GetID(), run.GetRunID())
	h = e.decryptedHistory(run.GetID(), run.GetRunID())
	for _, s := range hookCommands {
		assert.Contains(t, h, s, "v2's history")
	}

	pre := rc.at("/pre")
	require.Len(t, pre, 1)
	p := hookPayload(t, pre[0])
	assert.Equal(t, contract.HookPreRollout, p.Hook)
	assert.Equal(t, v2, p.Image)
	assert.Empty(t, p.Fleet, "asked before anything is provisioned")
	assert.Equal(t, []contract.FleetWeight{{FleetID: res1.FleetID, Weight: 100}}, p.Weights)

	confirm := rc.at("/confirm")
	require.Len(t, confirm, 4, "asked three times for 50%% (409, 409, 200), once for 100%%")
	for i, want := range []int{http.StatusConflict, http.StatusConflict, http.StatusOK, http.StatusOK} {
		assert.Equal(t, want, confirm[i].Status)
		p := hookPayload(t, confirm[i])
		assert.Equal(t, contract.HookConfirmTrafficIncrease, p.Hook)
		assert.Equal(t, res.FleetID, p.Fleet)
		if i < 3 {
			assert.Equal(t, 50, p.Weight)
			assert.Equal(t, []contract.FleetWeight{{FleetID: res1.FleetID, Weight: 100}}, p.Weights, "the weights held while asking")
		} else {
			assert.Equal(t, 100, p.Weight)
			assert.ElementsMatch(t, []contract.FleetWeight{{FleetID: res1.FleetID, Weight: 50}, {FleetID: res.FleetID, Weight: 50}}, p.Weights)
		}
	}

	post := rc.at("/post")
	require.Len(t, post, 2, "postRollout is told again after its 503")
	assert.Equal(t, []int{http.StatusServiceUnavailable, http.StatusOK}, []int{post[0].Status, post[1].Status})
	assert.Equal(t, contract.HookPostRollout, hookPayload(t, post[1]).Hook)
	assert.Equal(t, post[0].Header.Get(webhook.DeliveryHeader), post[1].Header.Get(webhook.DeliveryHeader), "a retry is the same delivery")
	assert.Empty(t, rc.at("/rollback"))

	// Notifications: slack, teams, json, the worker's default; the broken one tried again.
	var slack struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/slack", 1)[0].Body, &slack))
	assert.Contains(t, slack.Text, "hello/test: rollout succeeded")
	assert.Contains(t, slack.Text, v2+" now serves hello/test")
	assert.Contains(t, slack.Text, "imago rollout rollback hello -e test")
	assert.NotEmpty(t, slack.Blocks)
	assert.Contains(t, string(rc.at("/slack")[0].Body), "integration-test", "who started it")

	var card map[string]any
	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/teams", 1)[0].Body, &card))
	assert.Equal(t, "MessageCard", card["@type"])
	assert.Equal(t, "hello/test: rollout succeeded", card["title"])

	js := rc.waitFor(t, "/json", 1)
	assert.Equal(t, "application/cloudevents+json", js[0].Header.Get("Content-Type"))
	ev, err := events.Decode(js[0].Body)
	require.NoError(t, err)
	assert.Equal(t, contract.EventRolloutFinished, ev.Type)
	assert.Equal(t, "succeeded", ev.Data.Outcome)
	assert.Equal(t, v2, ev.Data.Image)

	def := rc.waitFor(t, "/default", 2)
	assert.Contains(t, string(def[1].Body), v2+" now serves hello/test")
	assert.GreaterOrEqual(t, len(rc.waitFor(t, "/broken", 2)), 2, "the failing target was tried again")
}

// A preRollout hook that answers 500 fails the rollout before anything is
// provisioned, with the answer in the reason; the failure is notified.
func TestPreRolloutHookRefusalFailsBeforeProvisioning(t *testing.T) {
	e := hooksEnv(t)
	rc := newReceiver(t)
	e.startWorker()
	rc.answer("/pre", http.StatusInternalServerError)
	_, err := e.rollout(e.spec(e.importImage("v1"), func(r *spec.Rollout) {
		r.Hooks = &contract.Hooks{PreRollout: rc.url("/pre")}
		r.Notify = []contract.NotifyTarget{{URL: rc.url("/slack"), On: []contract.Notice{"failed"}},
			{URL: rc.url("/teams"), Format: "teams"}, {URL: rc.url("/json"), Format: "json"}}
	}))
	require.Error(t, err)
	msg := rollouts.Reason(err)
	assert.Contains(t, msg, "failed while asking the preRollout hook: the preRollout hook refused the rollout: it answered 500 Internal Server Error")
	assert.Contains(t, msg, "nothing was changed")
	assert.Empty(t, e.fleetIDs(), "nothing was provisioned")
	byFleet, _ := e.instances()
	assert.Empty(t, byFleet, "no instance runs")
	assert.Equal(t, contract.HookPreRollout, hookPayload(t, rc.at("/pre")[0]).Hook)

	var slack struct{ Text string }
	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/slack", 1)[0].Body, &slack))
	assert.Contains(t, slack.Text, "hello/test: rollout failed")
	assert.Contains(t, slack.Text, "answered 500 Internal Server Error")
	assert.Contains(t, slack.Text, "imago rollout status hello -e test")
	var card map[string]any
	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/teams", 1)[0].Body, &card))
	assert.Equal(t, "hello/test: rollout failed", card["title"])
	ev, err := events.Decode(rc.waitFor(t, "/json", 1)[0].Body)
	require.NoError(t, err)
	assert.Equal(t, "failed", ev.Data.Outcome)
	assert.Contains(t, ev.Data.Error, "answered 500 Internal Server Error")

	// A hook at the cloud metadata address is refused by the outbound guard,
	// even with loopback allowed: nothing provisioned either.
	_, err = e.rollout(e.spec(e.importImage("v2"), func(r *spec.Rollout) {
		r.Hooks = &contract.Hooks{PreRollout: "http://169.254.169.254/latest/meta-data/"}
	}))
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "refused by imago's outbound guard: 169.254.169.254 is link-local (the cloud metadata address), never allowed")
	assert.Empty(t, e.fleetIDs())
}

// A canary that waits for approval (notified, with the command to approve),
// then is rolled back by a person at its pause: the rollback hook is told
// (again after a 503) and the roll-back is notified in teams and json.
func TestRollbackHookAndApprovalNotices(t *testing.T) {
	e := hooksEnv(t)
	rc := newReceiver(t)
	e.startWorker()
	v1, v2 := e.importImage("v1"), e.importImage("v2")
	res1, err := e.rollout(e.spec(v1))
	require.NoError(t, err)

	rc.answer("/rollback", http.StatusServiceUnavailable)
	r := e.spec(v2, func(r *spec.Rollout) {
		r.Approval = contract.ApprovalSpec{Required: true}
		r.Strategy = contract.Strategy{Type: contract.Canary, Steps: []contract.Step{{SetWeight: ip(50)}, {Pause: &contract.Pause{}}}}
		r.Hooks = &contract.Hooks{PostRollout: rc.url("/post"), Rollback: rc.url("/rollback")}
		r.Notify = []contract.NotifyTarget{{URL: rc.url("/slack")}, {URL: rc.url("/teams"), Format: "teams"}, {URL: rc.url("/json"), Format: "json"},
			{URL: rc.url("/success-only"), On: []contract.Notice{"succeeded"}}}
	})
	ctx := context.Background()
	run, err := rollouts.Start(ctx, e.client, r, rollouts.StartOptions{StartedBy: "integration-test"})
	require.NoError(t, err)

	var slack struct{ Text string }
	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/slack", 1)[0].Body, &slack))
	assert.Contains(t, slack.Text, "hello/test: rollout awaits approval")
	assert.Contains(t, slack.Text, "approval before cutover")
	assert.Contains(t, slack.Text, "imago rollout approve hello -e test")
	var card map[string]any
	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/teams", 1)[0].Body, &card))
	assert.Equal(t, "hello/test: rollout awaits approval", card["title"])
	assert.Contains(t, card["text"], "imago rollout approve hello -e test")
	require.NoError(t, rollouts.Decide(ctx, e.client, "hello", "test", contract.UpdateApprove, "alice", "go"))
	rc.waitFor(t, "/slack", 2) // the indefinite pause is a gate too
	require.NoError(t, rollouts.Decide(ctx, e.client, "hello", "test", contract.UpdateRollback, "alice", "latency"))
	err = run.Get(ctx, nil)
	require.Error(t, err)
	assert.Contains(t, rollouts.Reason(err), "rolled back by alice")
	assert.Equal(t, "hello from v1", e.get())
	e.assertServing(res1.FleetID, 3)
	e.recordHistory("rollout-rollback-hook", run.GetID(), run.GetRunID())

	rb := rc.at("/rollback")
	require.Len(t, rb, 2, "the rollback hook is told again after its 503")
	p := hookPayload(t, rb[1])
	assert.Equal(t, contract.HookRollback, p.Hook)
	assert.Equal(t, contract.PhaseRolledBack, p.Phase)
	assert.Contains(t, p.Message, "rolled back by alice: latency")
	assert.Equal(t, []contract.FleetWeight{{FleetID: res1.FleetID, Weight: 100}}, p.Weights, "told after traffic went back")
	assert.Empty(t, rc.at("/post"))

	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/teams", 3)[2].Body, &card))
	assert.Equal(t, "hello/test: rollout rolled back", card["title"])
	assert.Contains(t, card["text"], "rolled back by alice: latency")
	assert.Contains(t, card["text"], "imago rollout status hello -e test")

	js := rc.waitFor(t, "/json", 3) // approval gate, pause, rolled back
	var outcomes []string
	for _, r := range js {
		ev, err := events.Decode(r.Body)
		require.NoError(t, err)
		outcomes = append(outcomes, ev.Data.Outcome)
	}
	assert.Equal(t, []string{"", "", "rolled_back"}, outcomes)
	require.NoError(t, json.Unmarshal(rc.waitFor(t, "/slack", 3)[2].Body, &slack))
	assert.Contains(t, slack.Text, "hello/test: rollout rolled back")
	assert.Empty(t, rc.at("/success-only"), "a target on succeeded only hears nothing of this rollout")
}

// A worker refuses, at start, a default notification URL or format it could
// never send with.
func TestWorkerRefusesABadNotifyURLOrFormat(t *testing.T) {
	assert.NoError(t, Config{NotifyURL: "https://hooks.slack.com/services/T/B/X", NotifyFormat: "teams"}.checkNotify())
	assert.ErrorContains(t, Config{NotifyURL: "hooks.slack.com/x"}.checkNotify(), "IMAGO_NOTIFY_URL")
	assert.ErrorContains(t, Config{NotifyURL: "https://u:p@chat.example.com/"}.checkNotify(), "IMAGO_NOTIFY_URL must not hold credentials")
	assert.ErrorContains(t, Config{NotifyFormat: "discord"}.checkNotify(), `IMAGO_NOTIFY_FORMAT="discord": want one of slack, teams, json`)
}
