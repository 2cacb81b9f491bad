package events_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/pubsub"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/events"
)

func sampleEvent(seq int) contract.Event {
	return contract.NewEvent(contract.EventRolloutPhase, "default", "hello/dev", seq,
		time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600)),
		contract.EventData{Service: "hello", Environment: "dev", Image: "img-3f2a1c9d0b7e", Phase: "provisioning",
			Message: "provisioning 3 instances of img-3f2a1c9d0b7e", WorkflowID: "rollout/dev/hello", RunID: "0193d1f2-run"})
}

func TestNewMakesAValidCloudEvent(t *testing.T) {
	ev := sampleEvent(2)
	require.NoError(t, events.Validate(ev))
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	require.Equal(t, "1.0", m["specversion"])
	require.Equal(t, "0193d1f2-run/2", m["id"])
	require.Equal(t, "imago/default/rollout/dev/hello", m["source"])
	require.Equal(t, "dev.imago.rollout.phase", m["type"])
	require.Equal(t, "hello/dev", m["subject"])
	require.Equal(t, "2026-03-01T11:00:00Z", m["time"], "RFC 3339 in UTC")
	require.Equal(t, "application/json", m["datacontenttype"])
	data := m["data"].(map[string]any)
	require.Equal(t, "provisioning", data["phase"])
	require.Equal(t, float64(2), data["seq"])
	require.Equal(t, "0193d1f2-run", data["runId"])
}

func TestDecodeSaysWhatIsWrong(t *testing.T) {
	_, err := events.Decode([]byte(`{"specversion":"0.3","id":"x","type":"t","time":"2026-03-01T11:00:00Z","datacontenttype":"application/json"}`))
	require.ErrorContains(t, err, `specversion "0.3", want "1.0"`)
	require.ErrorContains(t, err, "source: REQUIRED", "the CloudEvents SDK's validation names the field")
	_, err = events.Decode([]byte("hello"))
	require.ErrorContains(t, err, "not a JSON event")
}

// The in-process default: a subscriber on the same mem:// URL receives each event
// as plain CloudEvents JSON, and closing one publisher leaves the topic usable.
func TestPublishOnAMemTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "mem://" + strings.ReplaceAll(t.Name(), "/", "-")
	p, err := events.Open(ctx, url)
	require.NoError(t, err)
	sub, err := pubsub.OpenSubscription(ctx, url)
	require.NoError(t, err)
	defer sub.Shutdown(ctx)

	require.NoError(t, p.Publish(ctx, sampleEvent(1)))
	m, err := sub.Receive(ctx)
	require.NoError(t, err)
	m.Ack()
	require.Empty(t, m.Metadata, "the body is the whole event; no transport-specific metadata")
	// The SDK writes the same JSON as the Event struct: same attributes, values, data.
	var wire, want map[string]any
	require.NoError(t, json.Unmarshal(m.Body, &wire))
	structBody, err := json.Marshal(sampleEvent(1))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(structBody, &want))
	require.Equal(t, want, wire)
	require.Equal(t, "2026-03-01T11:00:00Z", wire["time"])
	got, err := events.Decode(m.Body)
	require.NoError(t, err)
	require.Equal(t, sampleEvent(1), got)

	require.NoError(t, p.Close())
	p2, err := events.Open(ctx, url)
	require.NoError(t, err)
	defer p2.Close()
	require.NoError(t, p2.Publish(ctx, sampleEvent(2)))
	m, err = sub.Receive(ctx)
	require.NoError(t, err)
	m.Ack()
	got, err = events.Decode(m.Body)
	require.NoError(t, err)
	require.Equal(t, "0193d1f2-run/2", got.ID)
}

func TestPublishRefusesAnInvalidEvent(t *testing.T) {
	ctx := context.Background()
	p, err := events.Open(ctx, "mem://"+t.Name())
	require.NoError(t, err)
	defer p.Close()
	ev := sampleEvent(1)
	ev.Type = ""
	require.ErrorContains(t, p.Publish(ctx, ev), "type: MUST be a non-empty string")
	ev = sampleEvent(1)
	ev.Source = "imago/%zz"
	require.ErrorContains(t, p.Publish(ctx, ev), "source")
	ev = sampleEvent(1)
	ev.Time = time.Time{}
	require.ErrorContains(t, p.Publish(ctx, ev), "time is unset")
}

func TestOpenExplainsABadURL(t *testing.T) {
	ctx := context.Background()
	_, err := events.Open(ctx, "imago-events")
	require.ErrorContains(t, err, `events URL "imago-events" (IMAGO_EVENTS_URL) is not a URL: want e.g. mem://imago-events or nats://imago.events`)
	_, err = events.Open(ctx, "rabbit://imago-events")
	require.ErrorContains(t, err, "open the events topic rabbit://imago-events (IMAGO_EVENTS_URL)")
	require.ErrorContains(t, err, "imago publishes to mem:// and nats:// topics")
}
