package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/packerplugin"
)

// repoRoot is the directory holding the module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// packerBinary is $IMAGO_PACKER, else the pinned packer that
// tools/packer/build.sh builds into <repo>/bin (a no-op when it is there).
func packerBinary(t *testing.T, ctx context.Context, root string) string {
	t.Helper()
	if p := os.Getenv("IMAGO_PACKER"); p != "" {
		return p
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "tools", "packer", "build.sh"), filepath.Join(root, "bin"))
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tools/packer/build.sh: %v\n%s", err, out)
	}
	t.Logf("packer: %s (%s)", filepath.Join(root, "bin", "packer"), time.Since(start).Round(time.Millisecond))
	return filepath.Join(root, "bin", "packer")
}

// sandbox is a packer environment that touches nothing outside its directory.
type sandbox struct {
	t       *testing.T
	ctx     context.Context
	packer  string
	dir     string // working directory of the packer commands
	tmp     string // their TMPDIR
	plugins string // PACKER_PLUGIN_PATH
	env     []string
}

func newSandbox(t *testing.T, ctx context.Context, packer string) *sandbox {
	base := t.TempDir()
	s := &sandbox{t: t, ctx: ctx, packer: packer, dir: filepath.Join(base, "work"), tmp: filepath.Join(base, "tmp"),
		plugins: filepath.Join(base, "plugins")}
	for _, d := range []string{s.dir, s.tmp, filepath.Join(base, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PACKER_") || name == "HOME" || name == "TMPDIR" {
			continue
		}
		s.env = append(s.env, kv)
	}
	s.env = append(s.env,
		"CHECKPOINT_DISABLE=1",
		"HOME="+filepath.Join(base, "home"),
		"PACKER_CONFIG_DIR="+filepath.Join(base, "config"),
		"PACKER_PLUGIN_PATH="+s.plugins,
		"PACKER_CACHE_DIR="+filepath.Join(base, "cache"),
		"TMPDIR="+s.tmp,
	)
	return s
}

func (s *sandbox) run(args ...string) (string, error) {
	cmd := exec.CommandContext(s.ctx, s.packer, args...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// assertNoProcessFrom fails when a process runs an executable under dir (a
// plugin packer did not stop).
func assertNoProcessFrom(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		if exe, err := os.Readlink(p); err == nil && strings.HasPrefix(exe, dir) {
			t.Errorf("process %s still runs %s", filepath.Base(filepath.Dir(p)), exe)
		}
	}
}

func writeApp(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"hello":        "#!/bin/sh\necho \"hello from $(cat \"$(dirname \"$0\")/VERSION\")\"\n",
		"README.md":    "left out of the image\n",
		"conf/app.ini": "port=0\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
}

const template = `
packer {
  required_plugins {
    imago = {
      source  = "github.com/imago/imago"
      version = ">= 0.1.0"
    }
  }
}

variable "fail" {
  type    = bool
  default = false
}

source "imago-local" "hello" {
  service    = "hello"
  source_dir = "app"
  provision = [
    "echo v1-$RELEASE > VERSION",
    var.fail ? "echo about to fail; exit 7" : "echo provisioned with $RELEASE",
  ]
  env        = { RELEASE = "r42" }
  pass_env   = ["PATH"]
  entrypoint = ["./hello"]
  include    = ["hello", "VERSION", "conf"]
  labels     = { team = "core" }
}

build {
  sources = ["source.imago-local.hello"]

  provisioner "shell-local" {
    inline = ["test -f ${build.StagingDir}/VERSION"]
  }

  post-processor "manifest" {
    output      = "manifest.json"
    custom_data = { image = "${build.ImageID}" }
  }
}
`

func TestPackerBuildsWithPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	root := repoRoot(t)
	packer := packerBinary(t, ctx, root)

	// The plugin binary, built the way a user would.
	binDir := t.TempDir()
	plugin := filepath.Join(binDir, "packer-plugin-imago")
	start := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-o", plugin, "./cmd/packer-plugin-imago")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("go build ./cmd/packer-plugin-imago: %s", time.Since(start).Round(time.Millisecond))

	s := newSandbox(t, ctx, packer)
	defer assertNoProcessFrom(t, filepath.Dir(s.dir))
	writeApp(t, filepath.Join(s.dir, "app"))
	if err := os.WriteFile(filepath.Join(s.dir, "hello.pkr.hcl"), []byte(template), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := s.run("plugins", "install", "--path", plugin, "github.com/imago/imago")
	if err != nil {
		t.Fatalf("packer plugins install: %v\n%s", err, out)
	}
	installed := filepath.Join(s.plugins, "github.com", "imago", "imago",
		fmt.Sprintf("packer-plugin-imago_v0.1.0_x5.0_%s_%s", runtime.GOOS, runtime.GOARCH))
	for _, f := range []string{installed, installed + "_SHA256SUM"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("after install: %v\n%s", err, out)
		}
	}
	if out, err := s.run("plugins", "installed"); err != nil || !strings.Contains(out, installed) {
		t.Fatalf("packer plugins installed: %v\n%s", err, out)
	}

	// packer validate runs Prepare: the template is valid, and a bad source
	// gets all its problems reported at once.
	if out, err := s.run("validate", "."); err != nil {
		t.Fatalf("packer validate: %v\n%s", err, out)
	}
	bad := filepath.Join(s.dir, "bad")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	badTemplate := `source "imago-local" "bad" {
  service  = "Bad Name"
  files    = ["missing.txt"]
  pass_env = ["NOT-A-NAME"]
}
build { sources = ["source.imago-local.bad"] }
`
	if err := os.WriteFile(filepath.Join(bad, "bad.pkr.hcl"), []byte(badTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = s.run("validate", "bad")
	if err == nil {
		t.Fatalf("packer validate accepted a bad source:\n%s", out)
	}
	for _, want := range []string{"4 error(s) occurred", `service "Bad Name"`, "files[0] missing.txt: does not exist", `pass_env[0]: "NOT-A-NAME"`, "entrypoint is required"} {
		if !strings.Contains(out, want) {
			t.Errorf("packer validate output lacks %q:\n%s", want, out)
		}
	}

	// A failing provision command fails the build and leaves nothing behind.
	start = time.Now()
	out, err = s.run("build", "-machine-readable", "-var", "fail=true", ".")
	if err == nil {
		t.Fatalf("packer build with a failing command succeeded:\n%s", out)
	}
	for _, want := range []string{"about to fail", "exit code 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("failed build output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dir, packerplugin.DefaultOutputDir)); err == nil {
		t.Errorf("a failed build left %s", packerplugin.DefaultOutputDir)
	}
	t.Logf("failing packer build: %s", time.Since(start).Round(time.Millisecond))

	// The real build.
	start = time.Now()
	out, err = s.run("build", "-machine-readable", ".")
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, out)
	}
	t.Logf("packer build: %s", time.Since(start).Round(time.Millisecond))
	m := regexp.MustCompile(`(?m)^\d+,imago-local\.hello,artifact,0,id,(img-[0-9a-f]{12})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no artifact,0,id line:\n%s", out)
	}
	id := m[1]
	if !strings.Contains(out, "artifact,0,builder-id,imago.local") || !strings.Contains(out, "provisioned with r42") {
		t.Errorf("packer output:\n%s", out)
	}

	archivePath := filepath.Join(s.dir, packerplugin.DefaultOutputDir, id+".tar.gz")
	archive, err := os.ReadFile(archivePath)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(t.TempDir(), "img")
	if err := image.Unpack(bytes.NewReader(archive), unpacked, image.Digest(archive), image.Limits{}); err != nil {
		t.Fatalf("the output archive is not a valid image: %v", err)
	}
	for file, want := range map[string]string{"VERSION": "v1-r42\n", "conf/app.ini": "port=0\n"} {
		if b, err := os.ReadFile(filepath.Join(unpacked, filepath.FromSlash(file))); err != nil || string(b) != want {
			t.Errorf("%s in the image = %q, %v", file, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(unpacked, "README.md")); err == nil {
		t.Error("README.md is in the image but not in include")
	}
	if got := image.ID(image.Digest(archive), "hello", []string{"./hello"}); got != id {
		t.Errorf("artifact id %s, but the archive's ID is %s", id, got)
	}

	var manifest struct {
		Builds []struct {
			ArtifactID  string            `json:"artifact_id"`
			BuilderType string            `json:"builder_type"`
			CustomData  map[string]string `json:"custom_data"`
		} `json:"builds"`
	}
	if b, err := os.ReadFile(filepath.Join(s.dir, "manifest.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Builds) != 1 || manifest.Builds[0].ArtifactID != id || manifest.Builds[0].BuilderType != "imago-local" ||
		manifest.Builds[0].CustomData["image"] != id {
		t.Errorf("manifest = %+v", manifest)
	}

	// Building again without -force is refused only for a different image;
	// the same image is simply rewritten.
	if out, err := s.run("build", "-machine-readable", "."); err != nil || !strings.Contains(out, "artifact,0,id,"+id) {
		t.Errorf("rebuilding the same image: %v\n%s", err, out)
	}

	// No staging or include directory is left in packer's TMPDIR.
	left, _ := filepath.Glob(filepath.Join(s.tmp, "imago-*"))
	if len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}

	// The in-process builder gives the same image for the same inputs.
	t.Setenv("TMPDIR", t.TempDir())
	a, err := packerplugin.Build(ctx, map[string]any{
		"service":    "hello",
		"source_dir": filepath.Join(s.dir, "app"),
		"provision":  []string{"echo v1-$RELEASE > VERSION", "echo provisioned with $RELEASE"},
		"env":        map[string]string{"RELEASE": "r42"},
		"pass_env":   []string{"PATH"},
		"entrypoint": []string{"./hello"},
		"include":    []string{"hello", "VERSION", "conf"},
		"output_dir": filepath.Join(t.TempDir(), "out"),
	}, packerplugin.NewLineUi(func(l string) { t.Log(l) }))
	if err != nil {
		t.Fatal(err)
	}
	if a.Id() != id {
		t.Errorf("in-process image %s, packer built %s", a.Id(), id)
	}
	if inProcess, err := a.ReadArchive(); err != nil || !bytes.Equal(inProcess, archive) {
		t.Errorf("in-process archive differs from packer's (%v)", err)
	}
}
