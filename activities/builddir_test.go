package activities

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/contract"
)

// Two bakes of the same inputs build in directories of their own: neither
// removes nor adopts the other's build. A retried attempt of one bake run
// adopts what an earlier attempt of that run finished.
func TestEachBakeRunBuildsInItsOwnDirectory(t *testing.T) {
	src := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hello\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	a := &Activities{Home: t.TempDir()}
	b := contract.Bake{Service: "web", Builder: contract.BuilderLocal, Files: []string{src}, Entrypoint: []string{"./hello"}}
	digest := "sha256:" + strings.Repeat("cd", 32)
	build := func(run string) contract.BakeBuildResult {
		t.Helper()
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(a)
		val, err := env.ExecuteActivity(a.BakeBuild, contract.BakeBuildInput{Spec: b, InputDigest: digest, BuildID: "bake/web/latest/" + run})
		if err != nil {
			t.Fatalf("build of run %s: %v", run, err)
		}
		var res contract.BakeBuildResult
		if err := val.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}

	first := build("run-1")
	second := build("run-2")
	if second.Adopted {
		t.Fatalf("run-2 adopted the build of another run: %+v", second)
	}
	if filepath.Dir(first.ArchivePath) == filepath.Dir(second.ArchivePath) {
		t.Fatalf("two runs built in one directory %s", filepath.Dir(first.ArchivePath))
	}
	for _, r := range []contract.BakeBuildResult{first, second} {
		if _, err := os.Stat(r.ArchivePath); err != nil {
			t.Fatalf("archive of a finished build is gone: %v", err)
		}
	}
	again := build("run-1")
	if !again.Adopted || again.ArchivePath != first.ArchivePath || again.Image.ID != first.Image.ID {
		t.Fatalf("a retry of run-1 got %+v, want the adopted build %+v", again, first)
	}
}
