package app

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// crashTag is the build tag that compiles the crash hook (internal/crash) in.
const crashTag = "imago_crash"

var workerBuilds sync.Map // build tags → *workerBuild

type workerBuild struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

// workerBinary builds imago-worker once per test binary and set of build tags
// ("" for the release build) and returns its path.
func workerBinary(t *testing.T, tags string) string {
	t.Helper()
	v, _ := workerBuilds.LoadOrStore(tags, &workerBuild{})
	b := v.(*workerBuild)
	b.once.Do(func() {
		name := "release"
		if tags != "" {
			name = strings.NewReplacer(",", "-", " ", "-").Replace(tags)
		}
		b.bin = filepath.Join(helloBuilds, "imago-worker-"+name, "imago-worker")
		b.out, b.err = exec.Command("go", "build", "-tags", tags, "-o", b.bin, "github.com/imago/imago/worker").CombinedOutput()
	})
	require.NoError(t, b.err, "go build -tags %q ./worker: %s", tags, b.out)
	return b.bin
}

// hasCrashHook tells whether the crash hook's code is linked into bin.
func hasCrashHook(t *testing.T, bin string) bool {
	t.Helper()
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	require.NoError(t, err)
	return strings.Contains(string(out), "github.com/imago/imago/internal/crash.killSelf")
}
