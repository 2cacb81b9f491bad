package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
)

// exitMarker is how the line that records an instance's end in its log names
// the process: "--- imago <time>: instance <id> (pid <n>) exited: <how>".
func exitMarker(pid int) string { return fmt.Sprintf("(pid %d) exited: ", pid) }

// recordExit appends how the instance's process ended to its log once exited
// reports it. Only the process that started an instance is its parent and
// learns its exit status; a driver in another process (a restarted worker)
// sees the instance exited without it.
func recordExit(logPath, instanceID string, pid int, exited <-chan error) {
	err := <-exited
	how := "exit status 0"
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		how = ee.String()
	case err != nil:
		how = err.Error()
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "--- imago %s: instance %s %s%s\n", time.Now().UTC().Format(time.RFC3339Nano), instanceID, exitMarker(pid), how)
}

// exitTailLines is how many of an exited instance's last log lines Describe reports.
const exitTailLines = 10

// explainExit fills in how the exited instance in ended (when this driver's
// process started it), where its log is and the log's last lines since the
// instance last started. tails holds the logs' last lines already read, by path.
func (d *Driver) explainExit(st *fleetState, in *contract.Instance, tails map[string][]string) {
	path := d.instanceLog(st.Fleet.ID, in.ID)
	if st.Sim {
		path = d.simHostLog(st.Fleet.ID)
	}
	lines, read := tails[path]
	if !read {
		lines = logTail(path, 8<<10)
		tails[path] = lines
	}
	if lines == nil {
		return
	}
	in.Log = path
	marker := exitMarker(in.PID)
	var out []string
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.HasPrefix(l, "--- imago ") {
			if j := strings.Index(l, marker); j >= 0 && in.Exit == "" && out == nil {
				in.Exit = l[j+len(marker):]
				continue
			}
			break // the banner of the start: what is above is an earlier run
		}
		out = append(out, l)
	}
	out = out[:min(len(out), exitTailLines)]
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	in.LogTail = out
}

// logTail returns the lines of the file's last limit bytes (the first one may
// be cut), nil when the file cannot be read or is empty.
func logTail(path string, limit int64) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	off := max(fi.Size()-limit, 0)
	data := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
}
