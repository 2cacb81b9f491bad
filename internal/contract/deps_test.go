package contract

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/imago/imago"

// goList runs `go list -f format pkgs...` with the go command of the
// toolchain that built this test, one line a package.
func goList(t *testing.T, format string, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"list", "-f", format}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", pkgs, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestContractImportsNothingOfOurs: everything imports the contract, so it
// imports nothing of imago's (not even through another module), and of the
// Temporal SDK only go.temporal.io/sdk/temporal (search-attribute keys).
func TestContractImportsNothingOfOurs(t *testing.T) {
	for _, dep := range goList(t, `{{join .Deps "\n"}}`, ".") {
		if strings.HasPrefix(dep, module+"/") {
			t.Errorf("package contract depends on %s", dep)
		}
	}
	for _, imp := range goList(t, `{{join .Imports "\n"}}`, ".") {
		if strings.HasPrefix(imp, "go.temporal.io/") && imp != "go.temporal.io/sdk/temporal" {
			t.Errorf("package contract imports %s; of the Temporal SDK it may import go.temporal.io/sdk/temporal only", imp)
		}
	}
}

// TestClientsSpeakContract: the CLI, its frames and the API read workflows'
// progress, results and names from the contract, never from package
// workflows (workflow code, which only the worker registers).
func TestClientsSpeakContract(t *testing.T) {
	clients := []string{module + "/starter", module + "/internal/api", module + "/internal/watch"}
	for _, line := range goList(t, `{{.ImportPath}} {{join .Imports " "}}`, clients...) {
		pkg, imports, _ := strings.Cut(line, " ")
		imps := strings.Fields(imports)
		if slices.Contains(imps, module+"/workflows") {
			t.Errorf("%s imports package workflows; use internal/contract", pkg)
		}
		if !slices.Contains(imps, module+"/internal/contract") {
			t.Errorf("%s does not import internal/contract", pkg)
		}
	}
}
