package packerplugin

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// NewLineUi returns a packersdk.Ui that hands every line of output to emit, one
// call per line, never concurrently: Say and Message lines as they are, Error
// lines prefixed with "error: ". It cannot ask questions, and ignores
// machine-readable output.
func NewLineUi(emit func(line string)) packersdk.Ui {
	if emit == nil {
		emit = func(string) {}
	}
	return &lineUi{emit: emit}
}

// NewWriterUi returns a Ui (see NewLineUi) writing lines to w.
func NewWriterUi(w io.Writer) packersdk.Ui {
	return NewLineUi(func(line string) { _, _ = io.WriteString(w, line+"\n") })
}

type lineUi struct {
	mu   sync.Mutex
	emit func(string)
}

func (u *lineUi) lines(prefix, msg string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		u.emit(prefix + l)
	}
}

func (u *lineUi) Say(msg string)                    { u.lines("", msg) }
func (u *lineUi) Sayf(format string, args ...any)   { u.Say(fmt.Sprintf(format, args...)) }
func (u *lineUi) Message(msg string)                { u.lines("", msg) }
func (u *lineUi) Error(msg string)                  { u.lines("error: ", msg) }
func (u *lineUi) Errorf(format string, args ...any) { u.Error(fmt.Sprintf(format, args...)) }
func (u *lineUi) Machine(string, ...string)         {}
func (u *lineUi) Ask(string) (string, error) {
	return "", errors.New("imago-local: no interactive input")
}
func (u *lineUi) Askf(string, ...any) (string, error) { return u.Ask("") }

func (u *lineUi) TrackProgress(_ string, _, _ int64, stream io.ReadCloser) io.ReadCloser {
	return stream
}
