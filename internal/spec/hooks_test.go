package spec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

func TestHooksAndNotifyParseWithDefaults(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
hooks:
  preRollout: https://gate.example.com/pre
  confirmTrafficIncrease: https://gate.example.com/confirm
  postRollout: https://gate.example.com/post
  rollback: https://gate.example.com/rollback
  secret: file:///etc/imago/hook-key
notify:
  - url: https://hooks.slack.com/services/T/B/X
    on: [awaiting-approval, failed, rolled-back, succeeded]
    format: slack
  - {url: https://example.webhook.office.com/x, format: teams}
`))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, "https://gate.example.com/confirm", r.Hooks.ConfirmTrafficIncrease)
	assert.Equal(t, 30*time.Second, r.Hooks.Interval.D())
	assert.Equal(t, time.Hour, r.Hooks.Timeout.D())
	require.Len(t, r.Notify, 2)
	assert.Equal(t, []contract.Notice{"awaiting-approval", "failed", "rolled-back", "succeeded"}, r.Notify[0].On)
	assert.True(t, r.Notify[1].Wants(contract.NoticeSucceeded), "no on: every notice")
}

func TestHooksAndNotifyProblemsNameTheFieldAndLine(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
hooks:
  preRollout: ftp://gate.example.com/pre
  secret: vault://hook
  interval: 1m
  timeout: 10s
notify:
  - url: https://user:pw@hooks.example.com/x
    on: [deployed]
    format: discord
  - format: json
`))
	require.NoError(t, err)
	err = r.Normalize()
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	got := map[string]int{}
	for _, e := range es {
		got[e.Field] = e.Line
	}
	assert.Equal(t, map[string]int{"hooks.preRollout": 6, "hooks.secret": 7, "hooks.timeout": 9,
		"notify[0].url": 11, "notify[0].on[0]": 12, "notify[0].format": 13, "notify[1].url": 14}, got, "%v", err)
	assert.Contains(t, err.Error(), `hooks.preRollout: line 6: "ftp://gate.example.com": want an http:// or https:// URL`)
	assert.Contains(t, err.Error(), `notify[0].on[0]: line 12: "deployed": want one of awaiting-approval, succeeded, failed, rolled-back, aborted`)
	assert.Contains(t, err.Error(), `notify[0].format: line 13: "discord": want one of slack, teams, json`)
	assert.Contains(t, err.Error(), "notify[1].url: line 14: is required")

	r, err = ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\nhooks: {secret: file:///k}\n"))
	require.NoError(t, err)
	assert.ErrorContains(t, r.Normalize(), "hooks: line 4: names no hook")
}
