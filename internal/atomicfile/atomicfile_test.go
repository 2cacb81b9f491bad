package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestWriteCreatesA0600FileWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.json")
	if err := Write(path, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "one\n")
	assertOnlyFile(t, dir, "fleet.json")
}

func TestWriteReplacesContentAndTightensAnOlderMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "route.json")
	if err := os.WriteFile(path, []byte("old content, longer than the new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "new\n")
	assertOnlyFile(t, dir, "route.json")
}

func TestWriteFailureLeavesTheOldFileAndNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory where the file should go makes the rename fail after the
	// temporary file was written.
	blocked := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(blocked, []byte("new\n")); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	assertFile(t, path, "old\n")
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory holds %d entries after the failed write, want run.json and sub", len(ents))
	}
	if err := Write(filepath.Join(dir, "missing", "f.json"), []byte("x")); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Fatalf("%s holds %q, want %q", path, data, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s is %v, want 0600", path, fi.Mode().Perm())
	}
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%s holds %v, want only %s (no temporary file left)", dir, names, name)
	}
}

// Create is create-only: of writers racing for one path, exactly one wins, its
// content whole; the others get fs.ErrExist; no temporary file is left.
func TestCreateLetsTheFirstWriterWinWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets.url")
	const writers = 8
	errs := make(chan error, writers)
	for i := range writers {
		go func() { errs <- Create(path, dir, []byte(strings.Repeat(strconv.Itoa(i), 4096))) }()
	}
	won := 0
	for range writers {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("a losing Create: %v, want fs.ErrExist", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won, want 1", won)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 4096 || strings.Count(string(data), string(data[0])) != 4096 {
		t.Fatalf("the file holds %d bytes, not one writer's 4096", len(data))
	}
	assertFile(t, path, string(data))
	assertOnlyFile(t, dir, "secrets.url")
}
