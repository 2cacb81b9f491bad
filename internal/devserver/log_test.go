package devserver

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/server/common/log/tag"
)

func TestServerLogger(t *testing.T) {
	rec := newRecordingHandler(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := newLogState()
	l := serverLogger{l: newFilteredLogger(slog.New(rec)), st: st}

	l.Warn("held", tag.NewStringTag("k", "v"))
	assert.Empty(t, rec.messages(), "records are held during start-up")
	st.release(true)
	assert.Equal(t, []string{"WARN held"}, rec.messages())

	l.Info("info is below the level")
	l.Debug("debug too")
	l.Warn("HTTP API port has not been set. Nexus HTTP endpoints will not be available.")
	l.With(tag.NewStringTag("component", "x")).Error("boom")
	assert.Equal(t, []string{"WARN held", "ERROR boom"}, rec.messages())

	st.mute()
	l.Error("after stop")
	assert.Len(t, rec.messages(), 2)

	assert.PanicsWithError(t, "temporal server: bind failed port=1", func() { l.Fatal("bind failed", tag.NewInt("port", 1)) })
	assert.Panics(t, func() { l.Panic("x") })

	// Held records are dropped when start-up succeeds.
	st2 := newLogState()
	l2 := serverLogger{l: newFilteredLogger(slog.New(rec)), st: st2}
	l2.Error("transient")
	st2.release(false)
	assert.Len(t, rec.messages(), 2)

	// nil Logger discards.
	serverLogger{l: newFilteredLogger(nil), st: newLogState()}.Error("x")
}
