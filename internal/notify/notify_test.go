package notify

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/events"
)

func event(outcome, gate, errMsg string) contract.Event {
	typ := contract.EventRolloutFinished
	if gate != "" {
		typ = contract.EventRolloutPhase
	}
	return contract.NewEvent(typ, "default", "web/prod", 7, time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), contract.EventData{
		Service: "web", Environment: "prod", Image: "img-abc", WorkflowID: "rollout/prod/web", RunID: "run1",
		StartedBy: "alice", Outcome: outcome, Gate: gate, Error: errMsg})
}

// Each format carries what happened, where, which image, who, and the command.
func TestRenderEachFormat(t *testing.T) {
	ev := event("", "approval before cutover", "")
	n, ok := contract.NoticeOf(ev)
	require.True(t, ok)
	assert.Equal(t, contract.NoticeAwaitingApproval, n)

	b, ct, err := Render("slack", n, ev)
	require.NoError(t, err)
	assert.Equal(t, "application/json", ct)
	var s struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(b, &s))
	for _, want := range []string{"web/prod: rollout awaits approval", "img-abc", "approval before cutover", "imago rollout approve web -e prod"} {
		assert.Contains(t, s.Text, want)
	}
	assert.Contains(t, string(b), "alice")
	assert.Len(t, s.Blocks, 3)

	ev = event("rolled_back", "", "analysis errors failed")
	n, _ = contract.NoticeOf(ev)
	assert.Equal(t, contract.NoticeRolledBack, n)
	b, _, err = Render("teams", n, ev)
	require.NoError(t, err)
	var card map[string]any
	require.NoError(t, json.Unmarshal(b, &card))
	assert.Equal(t, "MessageCard", card["@type"])
	assert.Equal(t, "web/prod: rollout rolled back", card["title"])
	assert.Contains(t, card["text"], "analysis errors failed")
	assert.Contains(t, string(b), `"name":"Started by","value":"alice"`)

	b, ct, err = Render("json", n, ev)
	require.NoError(t, err)
	assert.Equal(t, "application/cloudevents+json", ct)
	got, err := events.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, ev, got)

	_, _, err = Render("xml", n, ev)
	assert.ErrorContains(t, err, `format "xml": want one of slack, teams, json`)
}

func TestNoticeOf(t *testing.T) {
	for outcome, want := range map[string]contract.Notice{"succeeded": "succeeded", "failed": "failed", "rolled_back": "rolled-back", "aborted": "aborted"} {
		n, ok := contract.NoticeOf(event(outcome, "", ""))
		assert.True(t, ok)
		assert.Equal(t, want, n)
	}
	_, ok := contract.NoticeOf(event("canceled", "", ""))
	assert.False(t, ok, "a canceled rollout tells nobody")
	ev := event("", "", "")
	ev.Type = contract.EventRolloutPhase
	_, ok = contract.NoticeOf(ev)
	assert.False(t, ok, "a phase change without a gate is no notice")
}
