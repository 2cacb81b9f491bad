package vmimage

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imago/imago/internal/image"
)

func TestRunScriptQuotesWordsAndKeepsVariables(t *testing.T) {
	got := RunScript([]string{"./hello", "--port", "$PORT", `a "b" \c`, "`x`"})
	want := "exec \"./hello\" \"--port\" \"$PORT\" \"a \\\"b\\\" \\\\c\" \"\\`x\\`\"\n"
	if got != want {
		t.Fatalf("RunScript = %q, want %q", got, want)
	}
	// The shell the init runs it with expands $PORT and nothing else.
	cmd := exec.Command("/bin/sh", "-c", strings.Replace(got, "exec", "printf '%s|'", 1))
	cmd.Env = []string{"PORT=8080"}
	out, err := cmd.Output()
	if err != nil || string(out) != "./hello|--port|8080|a \"b\" \\c|`x`|" {
		t.Fatalf("the shell runs %q, %v", out, err)
	}
}

func TestEnvDiskIsPrivateAndEndsItsAssignments(t *testing.T) {
	p := filepath.Join(t.TempDir(), "env")
	if err := EnvDisk(p, map[string]string{"PORT": "8080", "QUOTE": "it's"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 4096 {
		t.Fatalf("env disk: %v %v, want 4096 bytes, mode 0600", fi, err)
	}
	// What the init does with it: sed up to #imago-end, then source it.
	cmd := exec.Command("/bin/sh", "-c", `sed '/^#imago-end$/q' "$1" > "$1.sh" && set -a && . "$1.sh" && printf '%s|%s' "$PORT" "$QUOTE"`, "sh", p)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil || string(out) != "8080|it's" {
		t.Fatalf("sourced env: %q %v", out, err)
	}
}

// TestBuildWritesABootableDiskAndInitrd builds a VM image of a one-file archive
// with the real tools (mkfs.ext4, qemu-img, cpio to read the initrd back).
func TestBuildWritesABootableDiskAndInitrd(t *testing.T) {
	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive, err := image.Pack(app)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "app.tar.gz")
	if err := os.WriteFile(path, archive, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "vm")
	arts, err := Build(context.Background(), BuildInput{Archive: path, Digest: image.Digest(archive), Entrypoint: []string{"./run.sh"}, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{ArtifactDisk, ArtifactKernel, ArtifactInitrd} {
		if _, err := os.Stat(arts[k]); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if d, err := FileDigest(arts[ArtifactDisk]); err != nil || d != arts[ArtifactDiskDigest] {
		t.Fatalf("disk digest %s %v, recorded %s", d, err, arts[ArtifactDiskDigest])
	}
	if fi, _ := os.Stat(arts[ArtifactDisk]); fi.Mode().Perm() != 0o400 {
		t.Fatalf("disk mode %v, want 0400 (instances boot overlays)", fi.Mode())
	}
	info, err := exec.Command("qemu-img", "info", "--output=json", arts[ArtifactDisk]).Output()
	if err != nil {
		t.Fatal(err)
	}
	var qi struct {
		Format  string `json:"format"`
		Backing string `json:"backing-filename"`
	}
	if err := json.Unmarshal(info, &qi); err != nil || qi.Format != "qcow2" || qi.Backing != "" {
		t.Fatalf("qemu-img info: %s %v", info, err)
	}
	// The root file system holds the app, the init and busybox (debugfs reads ext4 without mounting).
	raw := filepath.Join(dir, "root.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", arts[ArtifactDisk], raw).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	ls, err := exec.Command("/usr/sbin/debugfs", "-R", "ls -p /app", raw).Output()
	if err != nil || !strings.Contains(string(ls), "/run.sh/") {
		t.Fatalf("debugfs ls /app: %s %v", ls, err)
	}
	run, err := exec.Command("/usr/sbin/debugfs", "-R", "cat /etc/imago/run", raw).Output()
	if err != nil || string(run) != "exec \"./run.sh\"\n" {
		t.Fatalf("/etc/imago/run: %q %v", run, err)
	}
	// The initrd is a newc archive cpio reads, with the init and the virtio modules.
	f, err := os.Open(arts[ArtifactInitrd])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = f
	list, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"init", "bin/busybox", "modules.order", "kernel/drivers/block/virtio_blk.ko", "kernel/drivers/net/virtio_net.ko"} {
		if !strings.Contains("\n"+string(list), "\n"+want+"\n") {
			t.Fatalf("initrd lacks %s:\n%s", want, list)
		}
	}
}
