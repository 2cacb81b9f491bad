package packerplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/imago/imago/internal/image"
)

// lines collects what a build shows.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (c *lines) add(l string) { c.mu.Lock(); c.l = append(c.l, l); c.mu.Unlock() }

func (c *lines) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.l, "\n")
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// isolateTmp points TMPDIR at a fresh directory, so a test can see what the
// builder left behind there.
func isolateTmp(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	return tmp
}

func assertEmptyDir(t *testing.T, dir, what string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%s left behind in %s: %v", what, dir, names)
	}
}

// tree lists the entries under dir: "name/" for directories, "name*" for
// executable files, "name" for other files.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			rel += "/"
		case info.Mode()&0o111 != 0:
			rel += "*"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// helloApp is a small shell-script service.
func helloApp(t *testing.T) string {
	t.Helper()
	app := filepath.Join(t.TempDir(), "app")
	writeFile(t, filepath.Join(app, "hello"), "#!/bin/sh\n. \"$(dirname \"$0\")/lib/util.sh\"\ngreet \"$(cat \"$(dirname \"$0\")/bin/greeting\")\"\n", 0o755)
	writeFile(t, filepath.Join(app, "lib", "util.sh"), "greet() { echo \"hello, $1\"; }\n", 0o644)
	writeFile(t, filepath.Join(app, "README.md"), "not part of the image\n", 0o644)
	return app
}

func TestBuildInProcess(t *testing.T) {
	tmp := isolateTmp(t)
	app := helloApp(t)
	extra := filepath.Join(t.TempDir(), "NOTICE")
	writeFile(t, extra, "copied into the staging root\n", 0o644)
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("IMAGO_TEST_PASSED", "passed-through")
	t.Setenv("IMAGO_TEST_SECRET", "must-not-leak")

	var shown lines
	a, err := Build(t.Context(), map[string]any{
		"service":    "hello",
		"source_dir": app,
		"files":      []string{extra},
		"provision": []string{
			"mkdir -p bin && printf '%s\\n' \"$GREETING\" > bin/greeting",
			"printf '%s|%s' \"$IMAGO_TEST_PASSED\" \"${IMAGO_TEST_SECRET:-unset}\" > passed.txt",
			"test -f NOTICE && echo \"staged NOTICE in $(basename \"$PWD\" | cut -c1-12)\"",
			"echo to-stderr >&2",
			"./hello > said.txt && cat said.txt",
			"env > env.txt",
		},
		"env":        map[string]string{"GREETING": "world"},
		"pass_env":   []string{"PATH", "IMAGO_TEST_PASSED", "IMAGO_TEST_NOT_SET"},
		"entrypoint": []string{"./hello"},
		"include":    []string{"hello", "bin/greeting", "passed.txt", "lib", "said.txt"},
		"labels":     map[string]string{"team": "core"},
		"output_dir": out,
	}, NewLineUi(shown.add))
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, shown.text())
	}
	ui := shown.text()
	for _, want := range []string{"staged NOTICE in imago-stage-", "to-stderr", "hello, world", "Image " + a.Id()} {
		if !strings.Contains(ui, want) {
			t.Errorf("ui output lacks %q:\n%s", want, ui)
		}
	}

	// The archive holds exactly the included paths.
	data, err := a.ReadArchive()
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(t.TempDir(), "img")
	if err := image.Unpack(bytes.NewReader(data), unpacked, image.Digest(data), image.Limits{}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tree(t, unpacked), " ")
	if want := "bin/ bin/greeting hello* lib/ lib/util.sh passed.txt said.txt"; got != want {
		t.Fatalf("image tree = %s, want %s", got, want)
	}
	for file, want := range map[string]string{
		"passed.txt":   "passed-through|unset", // pass_env passed; the rest of the environment did not
		"bin/greeting": "world\n",              // env
		"said.txt":     "hello, world\n",
	} {
		b, err := os.ReadFile(filepath.Join(unpacked, file))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", file, b, err, want)
		}
	}

	// The same tree packed directly gives byte-identical bytes and the same ID.
	same := filepath.Join(t.TempDir(), "same")
	writeFile(t, filepath.Join(same, "hello"), mustRead(t, filepath.Join(app, "hello")), 0o755)
	writeFile(t, filepath.Join(same, "lib", "util.sh"), mustRead(t, filepath.Join(app, "lib", "util.sh")), 0o644)
	writeFile(t, filepath.Join(same, "bin", "greeting"), "world\n", 0o644)
	writeFile(t, filepath.Join(same, "passed.txt"), "passed-through|unset", 0o644)
	writeFile(t, filepath.Join(same, "said.txt"), "hello, world\n", 0o644)
	direct, err := image.Pack(same)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(direct, data) {
		t.Errorf("archive differs from image.Pack of the same tree")
	}
	wantID := image.ID(image.Digest(direct), "hello", []string{"./hello"})
	if a.Id() != wantID {
		t.Errorf("Id() = %s, want %s", a.Id(), wantID)
	}

	// Artifact surface.
	if a.BuilderId() != "imago.local" {
		t.Errorf("BuilderId() = %s", a.BuilderId())
	}
	wantFiles := []string{filepath.Join(out, wantID+".tar.gz"), filepath.Join(out, wantID+".json")}
	if strings.Join(a.Files(), ",") != strings.Join(wantFiles, ",") {
		t.Errorf("Files() = %v, want %v", a.Files(), wantFiles)
	}
	if a.State("digest") != image.Digest(direct) || a.State("archive") != wantFiles[0] {
		t.Errorf("State: digest %v, archive %v", a.State("digest"), a.State("archive"))
	}
	if gd, _ := a.State("generated_data").(map[string]interface{}); gd["ImageID"] != wantID {
		t.Errorf("generated_data = %v", a.State("generated_data"))
	}
	if !strings.Contains(a.String(), wantID) || !strings.Contains(a.String(), "hello") {
		t.Errorf("String() = %s", a.String())
	}
	assertTree(t, out, wantID+".json", wantID+".tar.gz")

	// The record reads as a catalog.Image.
	var rec map[string]any
	if err := json.Unmarshal([]byte(mustRead(t, wantFiles[1])), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["id"] != wantID || rec["service"] != "hello" || rec["digest"] != image.Digest(direct) ||
		rec["builder"] != "imago-local" || rec["created"] == nil {
		t.Errorf("record = %v", rec)
	}
	if ep, _ := rec["entrypoint"].([]any); len(ep) != 1 || ep[0] != "./hello" {
		t.Errorf("record entrypoint = %v", rec["entrypoint"])
	}
	if l, _ := rec["labels"].(map[string]any); l["team"] != "core" {
		t.Errorf("record labels = %v", rec["labels"])
	}

	assertEmptyDir(t, tmp, "staging")

	// Building the same thing again (a retried bake) rewrites the same artifact.
	again, err := Build(t.Context(), map[string]any{
		"service": "hello", "source_dir": same, "entrypoint": []string{"./hello"}, "output_dir": out,
	}, nil)
	if err != nil {
		t.Fatalf("rebuild of the same image: %v", err)
	}
	if again.Id() != wantID {
		t.Errorf("rebuild Id() = %s, want %s", again.Id(), wantID)
	}

	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, out, "Destroy")
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertTree(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := tree(t, dir)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s holds %v, want %v", dir, got, want)
	}
}

func TestBuildWholeStagingDirAndEnvironment(t *testing.T) {
	isolateTmp(t)
	app := t.TempDir()
	writeFile(t, filepath.Join(app, "run"), "#!/bin/sh\n", 0o755)
	t.Setenv("IMAGO_TEST_SECRET", "must-not-leak")
	out := filepath.Join(t.TempDir(), "out")
	a, err := Build(t.Context(), map[string]any{
		"service":    "envcheck",
		"source_dir": app,
		"provision":  []string{"/usr/bin/env > env.txt"},
		"env":        map[string]string{"A": "1"},
		"pass_env":   []string{"HOME"},
		"entrypoint": []string{"./run"},
		"output_dir": out,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(t.TempDir(), "img")
	data, _ := a.ReadArchive()
	if err := image.Unpack(bytes.NewReader(data), unpacked, image.Digest(data), image.Limits{}); err != nil {
		t.Fatal(err)
	}
	assertTree(t, unpacked, "env.txt", "run*")
	var names []string
	for _, kv := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(unpacked, "env.txt"))), "\n") {
		name, _, _ := strings.Cut(kv, "=")
		if name != "PWD" && name != "SHLVL" && name != "_" && name != "OLDPWD" { // set by the shell itself
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, ","); got != "A,HOME" {
		t.Errorf("provision environment has %s, want only A,HOME (plus what sh sets)", got)
	}
}

func TestBuildFailedProvisionLeavesNothing(t *testing.T) {
	tmp := isolateTmp(t)
	app := helloApp(t)
	out := filepath.Join(t.TempDir(), "out")
	var shown lines
	a, err := Build(t.Context(), map[string]any{
		"service":    "hello",
		"source_dir": app,
		"provision": []string{
			"echo first command ran",
			"echo compiling; echo 'error: no such file: main.c' >&2; exit 3",
			"touch never-run",
		},
		"entrypoint": []string{"./hello"},
		"output_dir": out,
	}, NewLineUi(shown.add))
	if err == nil {
		t.Fatalf("Build succeeded with a failing command: %v", a)
	}
	msg := err.Error()
	for _, want := range []string{"provision command 2/3", "exit 3", "exit code 3", "compiling", "error: no such file: main.c"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(shown.text(), "command 3/3") {
		t.Errorf("a command after the failed one ran:\n%s", shown.text())
	}
	assertEmptyDir(t, tmp, "staging")
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output_dir exists after a failed build: %v", err)
	}
}

func TestBuildBadImageContentFails(t *testing.T) {
	tmp := isolateTmp(t)
	app := helloApp(t)
	out := filepath.Join(t.TempDir(), "out")
	_, err := Build(t.Context(), map[string]any{
		"service": "hello", "source_dir": app, "entrypoint": []string{"./hello"},
		"include": []string{"lib"}, "output_dir": out,
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "entrypoint: program ./hello is a path inside the image and does not exist (check include and the provision commands)") {
		t.Fatalf("err = %v", err)
	}
	_, err = Build(t.Context(), map[string]any{
		"service": "hello", "source_dir": app, "entrypoint": []string{"lib/util.sh"}, "output_dir": out,
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Fatalf("err = %v", err)
	}
	_, err = Build(t.Context(), map[string]any{
		"service": "hello", "source_dir": app, "entrypoint": []string{"./hello"}, "output_dir": out,
		"provision": []string{"ln -s / host"}, "pass_env": []string{"PATH"}, "include": []string{"hello", "host/etc/hostname"},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "out of the staging directory") {
		t.Fatalf("err = %v", err)
	}
	assertEmptyDir(t, tmp, "staging")
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output_dir exists after a failed build: %v", err)
	}
}

func TestBuildCancelKillsCommandAndCleansUp(t *testing.T) {
	tmp := isolateTmp(t)
	app := helloApp(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ui := NewLineUi(func(l string) {
		if l == "started" {
			cancel()
		}
	})
	start := time.Now()
	_, err := Build(ctx, map[string]any{
		"service":    "hello",
		"source_dir": app,
		// The background sleep is the command's child: it must die too.
		"provision":  []string{"sleep 60 & echo $! > \"$PIDFILE\"; echo started; wait"},
		"env":        map[string]string{"PIDFILE": pidFile},
		"entrypoint": []string{"./hello"},
		"output_dir": filepath.Join(t.TempDir(), "out"),
	}, ui)
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancel took %s", d)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(mustRead(t, pidFile)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	assertEmptyDir(t, tmp, "staging")
}

// waitGone waits until process pid no longer runs (a zombie waiting for its
// reaper counts as gone).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still runs after the build ended", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBuildLeftoverBackgroundProcessIsKilled(t *testing.T) {
	isolateTmp(t)
	app := helloApp(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, err := Build(t.Context(), map[string]any{
		"service":    "hello",
		"source_dir": app,
		"provision":  []string{"sleep 60 >/dev/null 2>&1 & echo $! > \"$PIDFILE\""},
		"env":        map[string]string{"PIDFILE": pidFile},
		"entrypoint": []string{"./hello"},
		"output_dir": filepath.Join(t.TempDir(), "out"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(mustRead(t, pidFile)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

func TestBuildOutputDirOfAnotherBuild(t *testing.T) {
	isolateTmp(t)
	out := filepath.Join(t.TempDir(), "out")
	build := func(content string, force bool) (*Artifact, error) {
		app := t.TempDir()
		writeFile(t, filepath.Join(app, "run"), content, 0o755)
		return Build(t.Context(), map[string]any{
			"service": "svc", "source_dir": app, "entrypoint": []string{"./run"},
			"output_dir": out, "packer_force": force,
		}, nil)
	}
	first, err := build("#!/bin/sh\necho one\n", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = build("#!/bin/sh\necho two\n", false)
	if err == nil || !strings.Contains(err.Error(), "artifact of a different build") || !strings.Contains(err.Error(), first.Id()) {
		t.Fatalf("second build into the same output_dir: err = %v", err)
	}
	assertTree(t, out, first.Id()+".json", first.Id()+".tar.gz") // untouched, nothing new

	second, err := build("#!/bin/sh\necho two\n", true)
	if err != nil {
		t.Fatalf("forced build: %v", err)
	}
	if second.Id() == first.Id() {
		t.Fatal("different content gave the same ID")
	}
	assertTree(t, out, second.Id()+".json", second.Id()+".tar.gz")
}

func TestStepPackCleanupRemovesWhatItWrote(t *testing.T) {
	staging := t.TempDir()
	writeFile(t, filepath.Join(staging, "run"), "#!/bin/sh\n", 0o755)
	out := filepath.Join(t.TempDir(), "new", "out")

	state := new(multistep.BasicStateBag)
	state.Put("ui", NewLineUi(nil))
	state.Put("staging_dir", staging)
	step := &StepPack{Service: "svc", Entrypoint: []string{"./run"}, OutputDir: out}
	if action := step.Run(t.Context(), state); action != multistep.ActionContinue {
		t.Fatalf("Run: %v: %v", action, state.Get("error"))
	}
	a := state.Get("artifact").(*Artifact)
	for _, f := range a.Files() {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	state.Put(multistep.StateCancelled, true) // e.g. interrupted right after
	step.Cleanup(state)
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("output_dir survived the cleanup of a cancelled build: %v", err)
	}
	if step.kept {
		t.Error("kept is set after a cancelled build")
	}
}

func TestPrepareReportsEveryError(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	writeFile(t, notADir, "x", 0o644)
	var b Builder
	_, _, err := b.Prepare(map[string]any{
		"service":    "Not A Service",
		"source_dir": filepath.Join(dir, "missing"),
		"files":      []string{filepath.Join(dir, "nope.txt")},
		"provision":  []string{"  "},
		"env":        map[string]string{"BAD-NAME": "x", "DUP": "1"},
		"pass_env":   []string{"1BAD", "DUP"},
		"include":    []string{"../outside", "/abs"},
		"output_dir": notADir,
	})
	var merr *packersdk.MultiError
	if !errors.As(err, &merr) {
		t.Fatalf("err = %v (%T), want a *packersdk.MultiError", err, err)
	}
	msg := err.Error()
	want := []string{
		`service "Not A Service"`,
		"source_dir " + filepath.Join(dir, "missing") + ": does not exist",
		"files[0]",
		"provision[0] is an empty command",
		`env: "BAD-NAME"`,
		`pass_env[0]: "1BAD"`,
		"pass_env[1]: DUP is also declared in env",
		"entrypoint is required",
		`include[0] "../outside": points outside`,
		`include[1] "/abs": must be relative`,
		"output_dir " + notADir + " exists and is not a directory",
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q", w)
		}
	}
	if len(merr.Errors) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(merr.Errors), len(want), msg)
	}

	// Build reports the same errors as a *ConfigError.
	_, err = Build(t.Context(), map[string]any{"service": "Not A Service", "entrypoint": []string{"./x"}, "files": []string{notADir}}, nil)
	var cerr *ConfigError
	if !errors.As(err, &cerr) || !errors.As(err, &merr) || len(merr.Errors) != 1 || !strings.Contains(err.Error(), "Not A Service") {
		t.Errorf("Build with a bad config: %v (%T)", err, err)
	}

	_, _, err = new(Builder).Prepare(map[string]any{})
	if err == nil || !strings.Contains(err.Error(), "service is required") || !strings.Contains(err.Error(), "source_dir (a directory) and/or files") {
		t.Errorf("empty config: %v", err)
	}

	_, _, err = new(Builder).Prepare(map[string]any{"service": "x", "source_dir": dir, "entrypoint": []string{"./x"}, "sevrice": "typo"})
	if err == nil || !strings.Contains(err.Error(), "sevrice") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestPrepareDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFile(t, filepath.Join(dir, "app", "run"), "#!/bin/sh\n", 0o755)
	var b Builder
	vars, warnings, err := b.Prepare(map[string]any{"service": "svc", "source_dir": "app", "entrypoint": []string{"./run"}})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Prepare: %v %v", warnings, err)
	}
	if b.config.OutputDir != filepath.Join(dir, DefaultOutputDir) || b.config.SourceDir != filepath.Join(dir, "app") {
		t.Errorf("paths not made absolute against the working directory: %+v", b.config)
	}
	if strings.Join(vars, ",") != "StagingDir,ImageID,ImageDigest,ImageArchive" {
		t.Errorf("generated data = %v", vars)
	}
	if spec := b.ConfigSpec(); spec["service"] == nil || spec["pass_env"] == nil || spec["output_dir"] == nil {
		t.Errorf("ConfigSpec lacks fields: %v", spec)
	}
}

func TestLineUiSplitsLines(t *testing.T) {
	var got lines
	ui := NewLineUi(got.add)
	ui.Say("one\ntwo\n")
	ui.Message("three")
	ui.Error("bad\nworse")
	ui.Machine("artifact", "x")
	if _, err := ui.Ask("?"); err == nil {
		t.Error("Ask answered")
	}
	if want := "one\ntwo\nthree\nerror: bad\nerror: worse"; got.text() != want {
		t.Errorf("lines = %q, want %q", got.text(), want)
	}
	var buf bytes.Buffer
	NewWriterUi(&buf).Say("a\nb")
	if buf.String() != "a\nb\n" {
		t.Errorf("writer ui wrote %q", buf.String())
	}
}

func TestLineWriterSplitsLongAndPartialLines(t *testing.T) {
	var got []string
	w := &lineWriter{emit: func(l string) { got = append(got, l) }}
	_, _ = w.Write([]byte("a\r\nb"))
	_, _ = w.Write([]byte("c\n"))
	_, _ = w.Write([]byte(strings.Repeat("x", maxLine+3)))
	w.flush()
	if len(got) != 4 || got[0] != "a" || got[1] != "bc" || len(got[2]) != maxLine || got[3] != "xxx" {
		t.Errorf("lines = %q", got)
	}
}
