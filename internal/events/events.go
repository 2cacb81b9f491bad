// Package events publishes what happens to rollouts and bakes — every phase change
// and the final outcome — as CloudEvents 1.0 JSON messages on a gocloud pubsub topic
// (IMAGO_EVENTS_URL; default mem://imago-events, in process only).
//
// Each message body is one event in CloudEvents' structured JSON mode, and the
// message carries no metadata: so every transport delivers plain JSON that any
// consumer can read (NATS without headers would otherwise wrap the body in gob).
//
// Drivers: mem:// (in process) and nats:// (NATS_SERVER_URL names the server,
// e.g. nats://127.0.0.1:4222; the URL's host is the subject: nats://imago.events).
//
// The workflows build each event deterministically (its ID is the run ID and the
// event's number in the run), so a redelivered or re-published event carries the
// same ID and consumers can drop duplicates.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/imago/imago/internal/contract"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/mempubsub"  // mem://, the in-process default
	_ "gocloud.dev/pubsub/natspubsub" // nats://subject, server from NATS_SERVER_URL
)

// DefaultURL is where events go when IMAGO_EVENTS_URL is unset: an in-process topic.
const DefaultURL = "mem://imago-events"

// cloudEvent is ev as a CloudEvents SDK event, which marshals it in structured
// JSON mode and validates it against the spec. Problems setting an attribute
// (a source that is no URI reference) come back from its Validate.
func cloudEvent(ev contract.Event) cloudevents.Event {
	ce := cloudevents.New(ev.SpecVersion)
	ce.SetID(ev.ID)
	ce.SetSource(ev.Source)
	ce.SetType(ev.Type)
	if ev.Subject != "" {
		ce.SetSubject(ev.Subject)
	}
	if !ev.Time.IsZero() {
		ce.SetTime(ev.Time)
	}
	if ev.DataContentType == contract.EventDataContentType {
		if err := ce.SetData(ev.DataContentType, ev.Data); err != nil {
			ce.FieldErrors = map[string]error{"data": err}
		}
	} else if ev.DataContentType != "" {
		ce.SetDataContentType(ev.DataContentType)
	}
	return ce
}

// Validate reports what makes ev an invalid CloudEvent (the SDK's validation),
// or not one of imago's (spec version 1.0, a time, JSON data), or nil.
func Validate(ev contract.Event) error {
	var errs []error
	if ev.SpecVersion != contract.EventSpecVersion {
		errs = append(errs, fmt.Errorf("specversion %q, want %q", ev.SpecVersion, contract.EventSpecVersion))
	}
	if ev.Time.IsZero() {
		errs = append(errs, errors.New("time is unset"))
	}
	if ev.DataContentType != contract.EventDataContentType {
		errs = append(errs, fmt.Errorf("datacontenttype %q, want %q", ev.DataContentType, contract.EventDataContentType))
	}
	if err := cloudEvent(ev).Validate(); err != nil {
		errs = append(errs, errors.New(strings.TrimSpace(err.Error())))
	}
	return errors.Join(errs...)
}

// Decode parses a message body (structured JSON mode, read by the CloudEvents
// SDK) into an event and validates it.
func Decode(body []byte) (contract.Event, error) {
	var ce cloudevents.Event
	if err := json.Unmarshal(body, &ce); err != nil {
		return contract.Event{}, fmt.Errorf("not a JSON event: %w", err)
	}
	ev := contract.Event{
		SpecVersion:     ce.SpecVersion(),
		ID:              ce.ID(),
		Source:          ce.Source(),
		Type:            ce.Type(),
		Subject:         ce.Subject(),
		Time:            ce.Time(),
		DataContentType: ce.DataContentType(),
	}
	if err := Validate(ev); err != nil {
		return ev, fmt.Errorf("invalid CloudEvent %s: %w", ev.ID, err)
	}
	if err := ce.DataAs(&ev.Data); err != nil {
		return ev, fmt.Errorf("CloudEvent %s: data: %w", ev.ID, err)
	}
	return ev, nil
}

// Publisher sends events to one topic. A worker opens one and shares it between
// all activity executions; it is safe for concurrent use.
type Publisher struct {
	url    string
	topic  *pubsub.Topic
	shared bool // mem:// topics belong to the process, not to this publisher
}

// Open opens the topic at url (a gocloud pubsub URL).
func Open(ctx context.Context, rawURL string) (*Publisher, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("events URL %q (IMAGO_EVENTS_URL) is not a URL: want e.g. %s or nats://imago.events", rawURL, DefaultURL)
	}
	topic, err := pubsub.OpenTopic(ctx, rawURL)
	if err != nil {
		hint := ""
		switch {
		case u.Scheme == "nats":
			hint = "; NATS_SERVER_URL must name a reachable NATS server, e.g. nats://127.0.0.1:4222"
		case strings.Contains(err.Error(), "no driver registered"):
			hint = "; imago publishes to mem:// and nats:// topics"
		}
		return nil, fmt.Errorf("open the events topic %s (IMAGO_EVENTS_URL): %w%s", rawURL, err, hint)
	}
	p := &Publisher{url: rawURL, topic: topic, shared: u.Scheme == "mem"}
	if p.shared {
		drain(rawURL)
	}
	return p, nil
}

var (
	drainMu sync.Mutex
	drains  = map[string]bool{}
)

// drain keeps, once per process and in-process topic, one subscriber that
// consumes and drops its messages: mempubsub logs a warning for every message
// sent to a topic nobody subscribes to, which would clutter the worker's log at
// every phase change. Like the topic, it lives as long as the process (mempubsub
// never forgets a subscription, so one that stopped receiving would hoard messages).
func drain(rawURL string) {
	drainMu.Lock()
	defer drainMu.Unlock()
	if drains[rawURL] {
		return
	}
	sub, err := pubsub.OpenSubscription(context.Background(), rawURL)
	if err != nil {
		return
	}
	drains[rawURL] = true
	go func() {
		for {
			m, err := sub.Receive(context.Background())
			if err != nil {
				return
			}
			m.Ack()
		}
	}()
}

// URL is the topic's URL.
func (p *Publisher) URL() string { return p.url }

// Publish sends one event and returns once the topic accepted it.
func (p *Publisher) Publish(ctx context.Context, ev contract.Event) error {
	body, err := Encode(ev)
	if err != nil {
		return err
	}
	if err := p.topic.Send(ctx, &pubsub.Message{Body: body}); err != nil {
		return fmt.Errorf("publish %s event %s to %s: %w", ev.Type, ev.ID, p.url, err)
	}
	return nil
}

// Encode validates ev and writes it in CloudEvents' structured JSON mode (the
// SDK writes it): a message's body, or a json notification's.
func Encode(ev contract.Event) ([]byte, error) {
	if err := Validate(ev); err != nil {
		return nil, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	return json.Marshal(cloudEvent(ev))
}

// Close flushes and closes the topic. An in-process (mem://) topic stays open for
// the process's other users: the mem driver hands every opener the same topic.
func (p *Publisher) Close() error {
	if p.shared {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.topic.Shutdown(ctx)
}
