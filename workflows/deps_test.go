package workflows

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestWorkflowsStayLight: workflow code builds without the activities'
// dependencies (it calls activities by name with contract types). A change
// that makes package workflows import activities, catalog, events, spec (its
// decoding and validation: the data is contract's), a provider or a cloud SDK
// again fails here.
func TestWorkflowsStayLight(t *testing.T) {
	// the go command of the toolchain that built this test
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/aws/aws-sdk-go-v2",
		"github.com/hashicorp/packer-plugin-sdk",
		"gocloud.dev",
		"github.com/imago/imago/activities",
		"github.com/imago/imago/internal/catalog",
		"github.com/imago/imago/internal/events",
		"github.com/imago/imago/internal/bake",
		"github.com/imago/imago/internal/spec",
		"github.com/imago/imago/internal/provider",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("package workflows depends on %s", dep)
			}
		}
	}
}
