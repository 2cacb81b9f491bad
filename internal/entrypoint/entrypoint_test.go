package entrypoint

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitKeepsVariablesAndQuotes(t *testing.T) {
	for line, want := range map[string][]string{
		"./whoami --port $PORT":                {"./whoami", "--port", "$PORT"},
		`/bin/sh -c 'exec ./app --port $PORT'`: {"/bin/sh", "-c", "exec ./app --port $PORT"},
		`./app "--greeting=${GREETING} world"`: {"./app", "--greeting=${GREETING} world"},
		`./app a\ b`:                           {"./app", "a b"},
	} {
		got, err := Split(line)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Split(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", `./app 'unclosed`} {
		if _, err := Split(bad); err == nil {
			t.Errorf("Split(%q) = no error", bad)
		}
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"PORT": "8081", "HOST": "127.0.0.1", "GREETING": "hi there"}
	got, err := Expand([]string{"./app", "--port", "$PORT", "--addr=${HOST}:${PORT}", "-g", "${GREETING}!", "$$HOME", "cost$", "$/x"}, env)
	want := []string{"./app", "--port", "8081", "--addr=127.0.0.1:8081", "-g", "hi there!", "$HOME", "cost$", "$/x"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Expand = %q, %v; want %q", got, err, want)
	}
	if _, err := Expand([]string{"./app", "$GREETING", "${DB_URL}"}, map[string]string{"PORT": "1"}); err == nil ||
		!strings.Contains(err.Error(), "$DB_URL, $GREETING") {
		t.Errorf("missing variables: %v; want both named", err)
	}
}

func TestVarsRefusesBadSyntax(t *testing.T) {
	for _, w := range []string{"${PORT", "${}", "${PORT:-80}", "$1", "${A-B}", "x$@"} {
		if _, err := Vars([]string{"./app", w}); err == nil || !strings.Contains(err.Error(), "word 2") {
			t.Errorf("Vars(%q) = %v; want an error naming word 2", w, err)
		}
	}
	vars, err := Vars([]string{"./app", "$PORT", "${GREETING}", "$PORT$$X"})
	if err != nil || !reflect.DeepEqual(vars, []string{"GREETING", "PORT"}) {
		t.Errorf("Vars = %q, %v", vars, err)
	}
}

func TestProgram(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for prog, want := range map[string]string{"./app": filepath.Join(root, "app"), "app": filepath.Join(root, "app"), "/bin/sh": "/bin/sh"} {
		if got, err := Program(root, prog); err != nil || got != want {
			t.Errorf("Program(%q) = %q, %v; want %q", prog, got, err, want)
		}
	}
	if got, err := Program(root, "sh"); err != nil || !filepath.IsAbs(got) {
		t.Errorf("Program(sh) = %q, %v; want sh from PATH", got, err)
	}
	for prog, want := range map[string]string{
		"./whoami":        "inside the image and does not exist",
		"./data":          "not executable",
		"/no/such/prog":   "path on the host (it starts with /) and does not exist",
		"no-such-prog-xy": "neither in the image nor in the PATH",
		"../etc/app":      "outside the image",
	} {
		_, err := Program(root, prog)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Program(%q) = %v; want %q", prog, err, want)
		}
	}
	if _, err := Program(root, "./whoami"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing program: %v is not ErrNotFound", err)
	}
}

// Whatever a user types: Split and Vars never panic; a word Vars accepts
// expands once every variable it names is set, expansion only replaces (empty
// values never lengthen a word) and a value is never expanded again.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"./app --port $PORT", "${GREETING} world", "$$HOME", "${", "${}", "$1", "a$", "${A-B}", `sh -c 'x "$Y"'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Split(s)
		vars, err := Vars([]string{s})
		if err != nil {
			return
		}
		empty, marked := map[string]string{}, map[string]string{}
		for _, v := range vars {
			empty[v], marked[v] = "", "$"+v
		}
		out, err := Expand([]string{s}, empty)
		if err != nil {
			t.Fatalf("Expand(%q) with every variable set: %v", s, err)
		}
		if len(out[0]) > len(s) {
			t.Fatalf("Expand(%q) with empty values = %q, longer", s, out[0])
		}
		again, err := Expand([]string{s}, marked)
		if err != nil {
			t.Fatalf("Expand(%q): %v", s, err)
		}
		if len(vars) > 0 && !strings.Contains(again[0], "$"+vars[0]) {
			t.Fatalf("Expand(%q) with values $NAME = %q: a value was expanded again", s, again[0])
		}
	})
}
