// Package notify tells people what a rollout did: a message for chat
// incoming webhooks (slack, which Mattermost and Rocket.Chat accept too;
// teams) or the CloudEvent itself (json), posted through the outbound guard.
//
// Each message says what happened, where (service and environment), which
// image, who started it, and the command that acts on it (approve, roll back,
// look at it).
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/events"
	"github.com/imago/imago/internal/webhook"
)

// Message is a notice in words.
type Message struct {
	Title   string // "web/prod: rollout succeeded"
	Text    string // what happened, in a sentence or two
	Command string // what to run next, "" for nothing
	Facts   [][2]string
}

// Compose puts notice n of event ev into words.
func Compose(n contract.Notice, ev contract.Event) Message {
	d := ev.Data
	where := d.Service + "/" + d.Environment
	env := fmt.Sprintf("%s -e %s", d.Service, d.Environment)
	m := Message{Facts: [][2]string{{"Service", d.Service}, {"Environment", d.Environment}, {"Image", orNone(d.Image)},
		{"Started by", orNone(d.StartedBy)}, {"Workflow", d.WorkflowID}}}
	switch n {
	case contract.NoticeAwaitingApproval:
		m.Title = where + ": rollout awaits approval"
		m.Text = fmt.Sprintf("The rollout of %s to %s waits for %s.", d.Image, where, d.Gate)
		m.Command = "imago rollout approve " + env
	case contract.NoticeSucceeded:
		m.Title = where + ": rollout succeeded"
		m.Text = fmt.Sprintf("%s now serves %s.", d.Image, where)
		m.Command = "imago rollout rollback " + env
	case contract.NoticeRolledBack:
		m.Title = where + ": rollout rolled back"
		m.Text = fmt.Sprintf("The rollout of %s to %s was rolled back: %s", d.Image, where, d.Error)
		m.Command = "imago rollout status " + env
	case contract.NoticeAborted:
		m.Title = where + ": rollout aborted"
		m.Text = fmt.Sprintf("The rollout of %s to %s was aborted: %s", d.Image, where, d.Error)
		m.Command = "imago rollout status " + env
	default:
		m.Title = where + ": rollout failed"
		m.Text = fmt.Sprintf("The rollout of %s to %s failed: %s", d.Image, where, d.Error)
		m.Command = "imago rollout status " + env
	}
	return m
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// Render writes notice n of ev in format (slack when empty): the body and
// its content type.
func Render(format string, n contract.Notice, ev contract.Event) ([]byte, string, error) {
	m := Compose(n, ev)
	switch format {
	case "", contract.FormatSlack:
		b, err := json.Marshal(slack(m))
		return b, "application/json", err
	case contract.FormatTeams:
		b, err := json.Marshal(teams(m, n))
		return b, "application/json", err
	case contract.FormatJSON:
		b, err := events.Encode(ev)
		return b, "application/cloudevents+json", err
	}
	return nil, "", fmt.Errorf("format %q: want one of %s", format, strings.Join(contract.Formats, ", "))
}

// slack is an incoming-webhook message: text for notifications and clients
// without blocks, blocks for the rest.
func slack(m Message) map[string]any {
	text := fmt.Sprintf("*%s*\n%s", m.Title, m.Text)
	var facts []map[string]string
	for _, f := range m.Facts {
		facts = append(facts, map[string]string{"type": "mrkdwn", "text": fmt.Sprintf("*%s:* %s", f[0], f[1])})
	}
	blocks := []map[string]any{
		{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}},
		{"type": "section", "fields": facts},
	}
	if m.Command != "" {
		text += "\n`" + m.Command + "`"
		blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]string{{"type": "mrkdwn", "text": "`" + m.Command + "`"}}})
	}
	return map[string]any{"text": text, "blocks": blocks}
}

// teams is an Office 365 connector MessageCard, which Teams' incoming
// webhooks (and its Workflows webhook) take.
func teams(m Message, n contract.Notice) map[string]any {
	color := map[contract.Notice]string{contract.NoticeSucceeded: "2EB886", contract.NoticeAwaitingApproval: "DAA038"}[n]
	if color == "" {
		color = "A30200"
	}
	var facts []map[string]string
	for _, f := range m.Facts {
		facts = append(facts, map[string]string{"name": f[0], "value": f[1]})
	}
	text := m.Text
	if m.Command != "" {
		text += "\n\n`" + m.Command + "`"
	}
	return map[string]any{
		"@type": "MessageCard", "@context": "https://schema.org/extensions",
		"summary": m.Title, "themeColor": color, "title": m.Title, "text": text,
		"sections": []map[string]any{{"facts": facts}},
	}
}

// Deliver posts notice n of ev to t with client (the outbound guard's). An
// answer other than 2xx is an error, for the caller's retries.
func Deliver(ctx context.Context, client *http.Client, t contract.NotifyTarget, n contract.Notice, ev contract.Event) error {
	body, ct, err := Render(t.Format, n, ev)
	if err != nil {
		return err
	}
	a, err := webhook.Post(ctx, client, webhook.Request{URL: t.URL, Body: body, ContentType: ct})
	if err != nil {
		return fmt.Errorf("notify %s: %w", webhook.Host(t.URL), err)
	}
	if !a.OK() {
		return fmt.Errorf("notify %s: answered %s", webhook.Host(t.URL), a.Text)
	}
	return nil
}
