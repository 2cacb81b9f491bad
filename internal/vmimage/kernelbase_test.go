package vmimage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
)

// A kernel base's files, packed as a local image and unpacked again, give the
// kernel and initrd back; without an initrd StageKernel writes imago's own for
// the host's kernel (its version from the vmlinuz-<version> name).
func TestKernelBaseRoundTrips(t *testing.T) {
	dir := t.TempDir()
	vmlinuz, initrd := filepath.Join(dir, "vmlinuz-9.9.9-test"), filepath.Join(dir, "initrd-test")
	if err := os.WriteFile(vmlinuz, []byte("kernel bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(initrd, []byte("initrd bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(dir, "stage")
	if err := os.Mkdir(stage, 0o700); err != nil {
		t.Fatal(err)
	}
	version, err := StageKernel(Kernel{Vmlinuz: vmlinuz, Initrd: initrd}, stage)
	if err != nil || version != "9.9.9-test" {
		t.Fatalf("StageKernel = %q, %v; want version 9.9.9-test", version, err)
	}
	archive, err := image.Pack(stage)
	if err != nil {
		t.Fatal(err)
	}
	img := contract.Image{ID: "img-000000000001", Digest: image.Digest(archive), Labels: map[string]string{LabelKernel: version}}
	out := filepath.Join(dir, "out")
	k, err := UnpackKernel(bytes.NewReader(archive), img, out)
	if err != nil {
		t.Fatal(err)
	}
	defer RemoveTree(out)
	for f, want := range map[string]string{k.Vmlinuz: "kernel bytes", k.Initrd: "initrd bytes"} {
		if got, err := os.ReadFile(f); err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v; want %q", f, got, err, want)
		}
	}
	// Not a kernel base: refused, naming the command that makes one.
	img.Labels = nil
	if _, err := UnpackKernel(bytes.NewReader(archive), img, filepath.Join(dir, "out2")); err == nil || !strings.Contains(err.Error(), "import-kernel") {
		t.Fatalf("UnpackKernel of a plain image: %v", err)
	}
	// A kernel whose version cannot be told needs its initrd.
	odd := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(odd, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StageKernel(Kernel{Vmlinuz: odd}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "--initrd") {
		t.Fatalf("StageKernel without initrd of %s: %v", odd, err)
	}
	if v, err := StageKernel(Kernel{Vmlinuz: odd, Initrd: initrd}, t.TempDir()); err != nil || v != "bzImage" {
		t.Fatalf("StageKernel %s with an initrd = %q, %v", odd, v, err)
	}

	// The host's kernel with the initrd imago writes.
	host, err := FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	stage2 := t.TempDir()
	if _, err := StageKernel(Kernel{Vmlinuz: host.Vmlinuz}, stage2); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(stage2, InitrdFile))
	if err != nil || !bytes.HasPrefix(data, []byte("070701")) {
		t.Fatalf("the initrd imago writes is a newc cpio archive: %.6q, %v", data, err)
	}
}

// The identity a VM bake's input digest and marker record: a kernel base by
// its ID and archive digest, the host's kernel by its file's digest.
func TestKernelIdentityNamesTheKernel(t *testing.T) {
	base := contract.Image{ID: "img-00000000000a", Digest: "sha256:" + strings.Repeat("1", 64)}
	id, err := KernelIdentity(&base)
	if err != nil || !strings.Contains(id, base.ID) || !strings.Contains(id, base.Digest) {
		t.Fatalf("KernelIdentity(base) = %q, %v", id, err)
	}
	k := filepath.Join(t.TempDir(), "vmlinuz-1.0")
	if err := os.WriteFile(k, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(KernelEnv, k)
	t.Setenv(InitrdEnv, "")
	one, err := KernelIdentity(nil)
	if err != nil || !strings.HasPrefix(one, "host kernel vmlinuz-1.0 sha256:") {
		t.Fatalf("KernelIdentity(host) = %q, %v", one, err)
	}
	if err := os.WriteFile(k, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if two, _ := KernelIdentity(nil); two == one {
		t.Fatalf("a changed host kernel keeps its identity %q", one)
	}
}
