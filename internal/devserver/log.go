package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogLevel is the minimum level of server (and SDK client) log records
// forwarded to Config.Logger. Temporal is very chatty at INFO.
const serverLogLevel = slog.LevelWarn

// minLevelHandler drops records below min before they reach the wrapped handler.
type minLevelHandler struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return m.h.Handle(ctx, r)
}

func (m minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{h: m.h.WithAttrs(attrs), min: m.min}
}

func (m minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{h: m.h.WithGroup(name), min: m.min}
}

// newFilteredLogger returns l (or a discarding logger when nil) restricted to
// records at serverLogLevel or above.
func newFilteredLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(minLevelHandler{h: l.Handler(), min: serverLogLevel})
}

// logState is shared by a serverLogger and all loggers derived from it.
//
// Records are held back while Start runs: a normal start-up logs transient
// errors (e.g. the worker service dialing the frontend before it reports
// healthy: "Frontend is not healthy yet"). They are emitted only if Start
// fails, to help diagnose the failure, and dropped otherwise.
//
// Once muted (Stop, or cleanup after a failed Start) nothing is logged:
// shutdown produces a burst of expected errors ("Not enough hosts to serve
// the request", pollers losing their connection), and some server components
// are never stopped by the server and keep running afterwards.
type logState struct {
	mu        sync.Mutex
	buffering bool
	buf       []heldRecord
	muted     bool
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

// maxHeldRecords bounds the start-up buffer.
const maxHeldRecords = 500

func newLogState() *logState { return &logState{buffering: true} }

// release ends buffering: held records are emitted if emit, dropped otherwise.
func (st *logState) release(emit bool) {
	st.mu.Lock()
	buf := st.buf
	st.buf, st.buffering = nil, false
	st.mu.Unlock()
	if emit {
		for _, hr := range buf {
			_ = hr.h.Handle(context.Background(), hr.r)
		}
	}
}

func (st *logState) mute() {
	st.mu.Lock()
	st.muted, st.buf, st.buffering = true, nil, false
	st.mu.Unlock()
}

// serverLogger adapts *slog.Logger to the Temporal server's log.Logger.
//
// Unlike the temporal CLI (which downgrades Panic/Fatal to errors), Panic and
// Fatal panic after logging: the server calls Fatal e.g. when it cannot bind
// a listener and then carries on with a nil value, so returning would only
// move the crash somewhere less readable. Start converts panics raised on its
// own goroutine into errors.
type serverLogger struct {
	l  *slog.Logger
	st *logState
}

var (
	_ log.Logger     = serverLogger{}
	_ log.WithLogger = serverLogger{}
)

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.log(slog.LevelWarn, msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

func (s serverLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(fatalError(msg, tags))
}

func (s serverLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(fatalError(msg, tags))
}

func (s serverLogger) With(tags ...tag.Tag) log.Logger {
	args := make([]any, len(tags))
	for i, t := range tags {
		args[i] = slog.Any(t.Key(), t.Value())
	}
	return serverLogger{l: s.l.With(args...), st: s.st}
}

func (s serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) || isKnownNoise(msg) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(tagsToAttrs(tags)...)
	h := s.l.Handler()

	s.st.mu.Lock()
	switch {
	case s.st.muted:
		s.st.mu.Unlock()
		return
	case s.st.buffering:
		if len(s.st.buf) < maxHeldRecords {
			s.st.buf = append(s.st.buf, heldRecord{h: h, r: r})
		}
		s.st.mu.Unlock()
		return
	}
	s.st.mu.Unlock()
	_ = h.Handle(ctx, r)
}

// isKnownNoise reports expected warnings that say nothing useful about a dev
// server.
func isKnownNoise(msg string) bool {
	// We do not enable the frontend HTTP API (Nexus over HTTP).
	return strings.HasPrefix(msg, "HTTP API port has not been set")
}

func tagsToAttrs(tags []tag.Tag) []slog.Attr {
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	return attrs
}

func fatalError(msg string, tags []tag.Tag) error {
	s := "temporal server: " + msg
	for _, t := range tags {
		s += fmt.Sprintf(" %s=%v", t.Key(), t.Value())
	}
	return fmt.Errorf("%s", s)
}
