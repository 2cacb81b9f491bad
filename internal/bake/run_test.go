package bake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	packerOnce sync.Once
	packerPath string
	packerErr  error
)

// packerBinary returns $IMAGO_PACKER, or builds the pinned packer into
// <repo>/bin with tools/packer/build.sh (a no-op when it is already there).
func packerBinary(t *testing.T) string {
	t.Helper()
	packerOnce.Do(func() {
		if p := os.Getenv("IMAGO_PACKER"); p != "" {
			packerPath = p
			return
		}
		repo, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			packerErr = err
			return
		}
		bin := filepath.Join(repo, "bin")
		out, err := exec.Command("bash", filepath.Join(repo, "tools", "packer", "build.sh"), bin).CombinedOutput()
		if err != nil {
			packerErr = fmt.Errorf("tools/packer/build.sh: %v\n%s", err, out)
			return
		}
		packerPath = filepath.Join(bin, "packer")
	})
	if packerErr != nil {
		t.Fatal(packerErr)
	}
	return packerPath
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// eventLog collects OnEvent calls.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) ui(kind string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if k, text, ok := e.UI(); ok && k == kind {
			out = append(out, text)
		}
	}
	return out
}

func anyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

const fileNullTemplate = `
variable "greeting" {
  type = string
}
variable "content" {
  type    = string
  default = "default content"
}
source "file" "x" {
  content = var.content
  target  = "out.txt"
}
source "null" "y" {
  communicator = "none"
}
build {
  sources = ["source.file.x", "source.null.y"]
  provisioner "shell-local" {
    inline = ["echo greeting: ${var.greeting}"]
  }
  post-processor "manifest" {
    output = "packer-manifest.json"
  }
}
`

func TestRunPackerFileNull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "build.pkr.hcl", fileNullTemplate)
	writeFile(t, dir, "vars.pkrvars.hcl", "content = \"from var file\"\ngreeting = \"overridden by -var\"\n")
	var log eventLog
	res, err := RunPacker(context.Background(), PackerRun{
		Packer:   packerBinary(t),
		Template: "build.pkr.hcl",
		Dir:      dir,
		VarFiles: []string{"vars.pkrvars.hcl"},
		Vars:     map[string]string{"greeting": "hello, world"},
		OnEvent:  log.add,
	})
	if err != nil {
		t.Fatal(err)
	}

	sort.Slice(res.Builds, func(i, j int) bool { return res.Builds[i].Name < res.Builds[j].Name })
	want := []BuildResult{
		{Name: "x", BuilderType: "file", Target: "file.x", ArtifactID: "File", Artifacts: map[string]string{"": "File"}, Files: []string{"out.txt"}},
		{Name: "y", BuilderType: "null", Target: "null.y", ArtifactID: "Null", Artifacts: map[string]string{"": "Null"}},
	}
	if !reflect.DeepEqual(res.Builds, want) {
		t.Errorf("Builds:\n got %#v\nwant %#v", res.Builds, want)
	}
	data, err := os.ReadFile(filepath.Join(dir, DefaultManifest))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if res.RunUUID == "" || res.RunUUID != m.LastRunUUID {
		t.Errorf("RunUUID %q, manifest last run %q", res.RunUUID, m.LastRunUUID)
	}
	if out, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(out) != "from var file" {
		t.Errorf("out.txt = %q, %v (var file not applied?)", out, err)
	}

	says, messages := log.ui(UISay), log.ui(UIMessage)
	if !anyContains(says, "==> file.x: Running local shell script") || !anyContains(says, "==> null.y: Running local shell script") {
		t.Errorf("say lines missing the provisioner: %q", says)
	}
	if !anyContains(says, "\n==> Builds finished.") {
		t.Errorf("say lines missing the escaped-newline summary: %q", says)
	}
	// -var comes after -var-file, so it wins; its comma survives escaping.
	if !anyContains(messages, "file.x: greeting: hello, world") || !anyContains(messages, "null.y: greeting: hello, world") {
		t.Errorf("messages: %q", messages)
	}
}

func TestRunPackerTemplateError(t *testing.T) {
	t.Parallel()
	packer := packerBinary(t)
	dir := t.TempDir()
	writeFile(t, dir, "bad.pkr.hcl", `
source "null" "y" {
  communicator = "none"
build {
  sources = ["source.null.y"]
}
`)
	writeFile(t, dir, "good.pkr.hcl", fileNullTemplate)

	called := false
	for _, tc := range []struct {
		name string
		run  PackerRun
		want []string
	}{
		{"syntax", PackerRun{Template: "bad.pkr.hcl"}, []string{"Error: Unclosed configuration block", `bad.pkr.hcl line 2, in source "null" "y"`}},
		{"undeclared var", PackerRun{Template: "good.pkr.hcl", Vars: map[string]string{"greeting": "hi", "nope": "1"}}, []string{"Undefined -var variable", `"nope"`}},
		{"missing required var", PackerRun{Template: "good.pkr.hcl"}, []string{"Unset variable", `"greeting"`}},
		{"no template", PackerRun{Template: "missing.pkr.hcl"}, []string{"missing.pkr.hcl does not exist"}},
	} {
		tc.run.Packer, tc.run.Dir = packer, dir
		tc.run.OnEvent = func(Event) { called = true }
		_, err := RunPacker(context.Background(), tc.run)
		var te *TemplateError
		if !errors.As(err, &te) {
			t.Errorf("%s: err = %#v, want *TemplateError", tc.name, err)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		for _, w := range tc.want {
			if !strings.Contains(te.Message, w) {
				t.Errorf("%s: message %q does not contain %q", tc.name, te.Message, w)
			}
		}
		if te.Message != strings.TrimSpace(te.Message) || strings.Contains(te.Message, "%!(PACKER_COMMA)") {
			t.Errorf("%s: message not trimmed/unescaped: %q", tc.name, te.Message)
		}
	}
	if called {
		t.Error("OnEvent called although nothing was built")
	}
	if _, err := os.Stat(filepath.Join(dir, "out.txt")); err == nil {
		t.Error("a build ran despite the template error")
	}
}

func TestRunPackerBuildError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "fail.pkr.hcl", `
source "null" "y" {
  communicator = "none"
}
build {
  sources = ["source.null.y"]
  provisioner "shell-local" {
    inline = ["echo about to fail, loudly", "echo disk full, giving up >&2", "exit 1"]
  }
  post-processor "manifest" {}
}
`)
	var log eventLog
	_, err := RunPacker(context.Background(), PackerRun{Packer: packerBinary(t), Template: dir, Dir: dir, OnEvent: log.add}) // a directory template
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %#v, want *BuildError", err)
	}
	t.Logf("%v", err)
	if be.ExitCode != 1 {
		t.Errorf("ExitCode = %d", be.ExitCode)
	}
	for _, w := range []string{"null.y: disk full, giving up", "Script exited with non-zero exit status: 1"} {
		if !strings.Contains(be.Message, w) {
			t.Errorf("Message %q does not contain %q", be.Message, w)
		}
	}
	if got := be.Builds["null.y"]; !strings.Contains(got, "non-zero exit status: 1") {
		t.Errorf("Builds = %q", be.Builds)
	}
	if !strings.Contains(err.Error(), "exit code 1") {
		t.Errorf("Error() = %q", err)
	}
	if !anyContains(log.ui(UIMessage), "about to fail, loudly") {
		t.Errorf("messages: %q", log.ui(UIMessage))
	}
}

func TestRunPackerManifestAccumulates(t *testing.T) {
	t.Parallel()
	packer := packerBinary(t)
	dir := t.TempDir()
	writeFile(t, dir, "a.pkr.hcl", `
source "file" "a" {
  content = "a"
  target  = "a.txt"
}
build {
  sources = ["source.file.a"]
  post-processor "manifest" {}
}
`)
	writeFile(t, dir, "bc.pkr.hcl", `
source "file" "b" {
  content = "b"
  target  = "b.txt"
}
source "null" "c" {
  communicator = "none"
}
build {
  sources = ["source.file.b", "source.null.c"]
  post-processor "manifest" {}
}
`)
	writeFile(t, dir, "nomanifest.pkr.hcl", `
source "null" "d" {
  communicator = "none"
}
build {
  sources = ["source.null.d"]
}
`)
	names := func(r Result) []string {
		var n []string
		for _, b := range r.Builds {
			n = append(n, b.BuilderType+"."+b.Name)
		}
		sort.Strings(n)
		return n
	}
	manifestBuilds := func() int {
		data, err := os.ReadFile(filepath.Join(dir, DefaultManifest))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseManifest(data)
		if err != nil {
			t.Fatal(err)
		}
		return len(m.Builds)
	}
	run := func(template string, force bool) (Result, error) {
		return RunPacker(context.Background(), PackerRun{Packer: packer, Template: template, Dir: dir, Force: force})
	}

	first, err := run("a.pkr.hcl", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(first); !reflect.DeepEqual(got, []string{"file.a"}) {
		t.Fatalf("first run: %q", got)
	}
	second, err := run("bc.pkr.hcl", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(second); !reflect.DeepEqual(got, []string{"file.b", "null.c"}) {
		t.Errorf("second run: %q", got)
	}
	if second.RunUUID == first.RunUUID {
		t.Errorf("both runs have RunUUID %q", first.RunUUID)
	}
	if n := manifestBuilds(); n != 3 {
		t.Errorf("manifest has %d builds, want both runs' 3", n)
	}

	// A template that writes no manifest must not be credited with the
	// previous run's builds.
	_, err = run("nomanifest.pkr.hcl", false)
	var te *TemplateError
	if !errors.As(err, &te) || !strings.Contains(te.Message, "did not record this run") {
		t.Errorf("run without manifest post-processor: err = %v", err)
	}

	// -force starts the manifest afresh.
	third, err := run("bc.pkr.hcl", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(third); !reflect.DeepEqual(got, []string{"file.b", "null.c"}) {
		t.Errorf("forced run: %q", got)
	}
	if n := manifestBuilds(); n != 2 {
		t.Errorf("manifest after -force has %d builds, want 2", n)
	}
}

func TestRunPackerCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The foreground sleep gets the SIGINT; the background one ignores it
	// (as asynchronous commands of a non-interactive sh do) and must be
	// killed with the rest of the process group.
	writeFile(t, dir, "slow.pkr.hcl", `
source "null" "y" {
  communicator = "none"
}
build {
  sources = ["source.null.y"]
  provisioner "shell-local" {
    inline = [
      "echo pgid=$(cut -d' ' -f5 /proc/$$/stat)",
      "sleep 31 </dev/null >/dev/null 2>&1 &",
      "echo bgsleep=$!",
      "sleep 30",
      "echo not cancelled",
    ]
  }
  post-processor "manifest" {}
}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		pgid, bgSleep int
		cancelled     time.Time
	)
	_, err := RunPacker(ctx, PackerRun{
		Packer:   packerBinary(t),
		Template: "slow.pkr.hcl",
		Dir:      dir,
		Grace:    DefaultGrace,
		OnEvent: func(e Event) {
			_, text, ok := e.UI()
			if !ok {
				return
			}
			if _, v, found := strings.Cut(text, "pgid="); found {
				pgid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if _, v, found := strings.Cut(text, "bgsleep="); found {
				bgSleep, _ = strconv.Atoi(strings.TrimSpace(v))
				cancelled = time.Now()
				cancel()
			}
		},
	})
	if cancelled.IsZero() {
		t.Fatalf("build never reached the sleep; err = %v", err)
	}
	took := time.Since(cancelled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	var be *BuildError
	if errors.As(err, &be) {
		t.Errorf("cancellation reported as retryable *BuildError: %v", err)
	}
	if took > DefaultGrace/3 {
		t.Errorf("RunPacker returned %v after cancel; packer should stop on SIGINT well within the %v grace", took, DefaultGrace)
	}
	t.Logf("returned %v after cancel: %v", took, err)

	if pgid <= 1 || bgSleep <= 1 {
		t.Fatalf("pgid=%d bgsleep=%d not reported", pgid, bgSleep)
	}
	if pgid == syscall.Getpgrp() {
		t.Fatalf("packer ran in the test's process group %d", pgid)
	}
	// SIGKILL is delivered asynchronously: give the kernel a moment.
	var left []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = liveGroupMembers(t, pgid)
		if alive(bgSleep) {
			left = append(left, fmt.Sprintf("background sleep %d", bgSleep))
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("processes of the cancelled run are left: %q", left)
	}
	if data, err := os.ReadFile(filepath.Join(dir, DefaultManifest)); err == nil {
		t.Errorf("cancelled build wrote a manifest: %s", data)
	}
}

// A packer that ignores SIGINT is SIGKILLed, with its whole group, after
// the grace period.
func TestRunPackerCancelGrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := writeFile(t, dir, "stubborn-packer", `#!/bin/sh
[ "$1" = validate ] && exit 0
trap '' INT
echo "1,,ui,say,pgid=$(cut -d' ' -f5 /proc/$$/stat)"
sleep 60
`)
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "t.pkr.hcl", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const grace = 500 * time.Millisecond
	var pgid int
	start := time.Now()
	_, err := RunPacker(ctx, PackerRun{
		Packer: fake, Template: "t.pkr.hcl", Dir: dir, Grace: grace,
		OnEvent: func(e Event) {
			if _, text, ok := e.UI(); ok {
				if _, v, found := strings.Cut(text, "pgid="); found {
					pgid, _ = strconv.Atoi(v)
					start = time.Now()
					cancel()
				}
			}
		},
	})
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took < grace || took > grace+5*time.Second {
		t.Errorf("returned %v after cancel, want just over the %v grace", took, grace)
	}
	if pgid <= 1 {
		t.Fatalf("pgid %d", pgid)
	}
	var left []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if left = liveGroupMembers(t, pgid); len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("left after SIGKILL: %q", left)
	}
}

// procStat returns the state and process group of pid from /proc.
func procStat(pid int) (state byte, pgrp int, comm string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", false
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, 0, "", false
	}
	f := strings.Fields(s[end+1:]) // state ppid pgrp ...
	if len(f) < 3 {
		return 0, 0, "", false
	}
	pgrp, _ = strconv.Atoi(f[2])
	return f[0][0], pgrp, s[open+1 : end], true
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	state, _, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// liveGroupMembers lists the non-zombie processes in process group pgid.
func liveGroupMembers(t *testing.T, pgid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgrp, comm, ok := procStat(pid)
		if ok && pgrp == pgid && state != 'Z' && state != 'X' {
			out = append(out, fmt.Sprintf("%d %s (%c)", pid, comm, state))
		}
	}
	return out
}

// A stand-in packer records its command lines and environment, and fails
// the build with plain (non-machine-readable) output, as a crashing plugin
// would.
func TestRunPackerCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := writeFile(t, dir, "fake-packer", `#!/bin/sh
printf '%s\n' "$@" > "args.$1"
env > "env.$1"
case "$1" in
validate) echo "1,,ui,say,The configuration is valid." ;;
build)
	echo "1,,ui,say,==> null.y: starting"
	echo "panic: runtime error: index out of range [3] with length 3"
	echo "goroutine 1 [running]:" >&2
	exit 2 ;;
esac
`)
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "t.pkr.hcl", "")
	var log eventLog
	_, err := RunPacker(context.Background(), PackerRun{
		Packer:   fake,
		Template: "t.pkr.hcl",
		Dir:      dir,
		Vars:     map[string]string{"zone": "b", "ami_name": "golden, v1", "count": "3"},
		VarFiles: []string{"common.pkrvars.hcl", "prod.pkrvars.hcl"},
		Env:      []string{"IMAGO_TEST_MARKER=1", "CHECKPOINT_DISABLE=0"},
		Force:    true,
		OnEvent:  log.add,
	})
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %#v, want *BuildError", err)
	}
	if be.ExitCode != 2 || !strings.Contains(be.Message, "panic: runtime error: index out of range") {
		t.Errorf("BuildError = %#v", be)
	}
	vars := []string{"-var-file=common.pkrvars.hcl", "-var-file=prod.pkrvars.hcl",
		"-var", "ami_name=golden, v1", "-var", "count=3", "-var", "zone=b", "t.pkr.hcl"}
	for file, want := range map[string][]string{
		"args.validate": append([]string{"validate", "-machine-readable"}, vars...),
		"args.build":    append([]string{"build", "-machine-readable", "-color=false", "-force"}, vars...),
	} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", file, got, want)
		}
	}
	env, err := os.ReadFile(filepath.Join(dir, "env.build"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"\nCHECKPOINT_DISABLE=1\n", "\nPACKER_NO_COLOR=1\n", "\nIMAGO_TEST_MARKER=1\n"} {
		if !strings.Contains("\n"+string(env), w) {
			t.Errorf("build env lacks %q", strings.TrimSpace(w))
		}
	}
	if says := log.ui(UISay); !reflect.DeepEqual(says, []string{"==> null.y: starting"}) {
		t.Errorf("OnEvent says = %q (validate output must not reach OnEvent)", says)
	}
}

func TestRunPackerInvalid(t *testing.T) {
	for _, r := range []PackerRun{
		{Template: "t.pkr.hcl"},
		{Packer: "packer"},
		{Packer: "packer", Template: "t.pkr.hcl", Vars: map[string]string{"a=b": "c"}},
		{Packer: "packer", Template: "t.pkr.hcl", Vars: map[string]string{"": "c"}},
		{Packer: "packer", Template: "t.pkr.hcl", VarFiles: []string{""}},
	} {
		if _, err := RunPacker(context.Background(), r); !errors.Is(err, ErrInvalidRun) {
			t.Errorf("RunPacker(%#v) = %v, want ErrInvalidRun", r, err)
		}
	}
}

func TestReadLinesAndTail(t *testing.T) {
	long := strings.Repeat("x", maxLine+100)
	var got []string
	readLines(strings.NewReader("a\n"+long+"\nb\r\nc"), func(s string) { got = append(got, s) })
	if len(got) != 4 || got[0] != "a\n" || len(got[1]) != maxLine || got[2] != "b\r\n" || got[3] != "c" {
		t.Errorf("readLines: %d lines, %q %d %q %q", len(got), got[0], len(got[1]), got[2], got[3])
	}

	tail := lineTail{max: 12}
	for _, s := range []string{"one", "two", "three", "four"} {
		tail.add(s)
	}
	if got := tail.String(); got != "…\nthree\nfour" {
		t.Errorf("tail = %q", got)
	}
}
