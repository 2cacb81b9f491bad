// Package vmimage turns a local imago image (the deterministic tar.gz of a bake's
// staged files, internal/image) into a bootable VM image, with Debian's tools and
// no root privileges, no loop mounts and no container engine:
//
//	/app/…            the image's files (the entrypoint runs here)
//	/bin/busybox      busybox-static, with a symlink per applet in /bin
//	/init             the init: mounts proc, sys, dev; brings up eth0 (10.0.2.15/24,
//	                  QEMU user networking); reads the instance's environment from
//	                  the second disk; runs the entrypoint with PORT and HOST set,
//	                  its output on the console; powers the VM off when it exits
//	/etc/imago/run    the entrypoint as a shell command line ($PORT is expanded)
//
// The tree is written as an ext4 file system with `mkfs.ext4 -d` and converted to
// qcow2 with `qemu-img convert`. The kernel and initrd, copied beside the disk,
// are a kernel base's from the catalog (kernelbase.go) when the bake names one
// as its base, else the host's: Debian's linux-image-cloud-amd64
// (/boot/vmlinuz-*-cloud-amd64) with an initrd Build writes.
//
// An instance boots the disk read-only through a qcow2 overlay of its own
// (Overlay), with a second, raw disk holding its environment (EnvDisk).
package vmimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/imago/imago/internal/image"
)

// GuestPort is the port an imago program listens on inside a VM ($PORT there);
// the qemu provider forwards a loopback port of the host to it.
const GuestPort = 8080

// GuestHost is the address programs listen on inside a VM ($HOST there).
const GuestHost = "0.0.0.0"

// Artifact keys of a VM image in its catalog record (contract.Image.Artifacts).
const (
	ArtifactDisk       = "vm-disk"        // the qcow2 root disk (absolute path)
	ArtifactDiskDigest = "vm-disk-digest" // sha256:… of the qcow2 file
	ArtifactKernel     = "vm-kernel"      // the kernel (vmlinuz) the disk boots with
	ArtifactInitrd     = "vm-initrd"      // its initrd
)

// Environment variables that override the kernel and the busybox binary.
const (
	KernelEnv  = "IMAGO_VM_KERNEL"
	InitrdEnv  = "IMAGO_VM_INITRD"
	BusyboxEnv = "IMAGO_VM_BUSYBOX"
)

// Kernel is a kernel and the initrd it boots with.
type Kernel struct {
	Vmlinuz, Initrd string
}

// FindKernel returns $IMAGO_VM_KERNEL (and $IMAGO_VM_INITRD, when set) or the
// newest /boot/vmlinuz-*-cloud-amd64 (Debian's linux-image-cloud-amd64: make
// deps). An empty Initrd means Build makes one (BuildInitrd).
func FindKernel() (Kernel, error) {
	if k := os.Getenv(KernelEnv); k != "" {
		return Kernel{Vmlinuz: k, Initrd: os.Getenv(InitrdEnv)}, nil
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
	sort.Strings(ks)
	if len(ks) == 0 {
		return Kernel{}, errors.New("no kernel for VM images: install Debian's linux-image-cloud-amd64 (make deps) or set IMAGO_VM_KERNEL")
	}
	return Kernel{Vmlinuz: ks[len(ks)-1]}, nil
}

// findBusybox returns $IMAGO_VM_BUSYBOX or /bin/busybox (busybox-static).
func findBusybox() (string, error) {
	p := os.Getenv(BusyboxEnv)
	if p == "" {
		p = "/bin/busybox"
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("busybox for the VM init: %w (install busybox-static: make deps)", err)
	}
	return p, nil
}

// Tools are the host programs a build and a boot use.
type Tools struct {
	MkfsExt4, QemuImg string
}

// FindTools looks mkfs.ext4 and qemu-img up in PATH (and /usr/sbin, /sbin).
func FindTools() (Tools, error) {
	var t Tools
	var err error
	if t.MkfsExt4, err = lookPath("mkfs.ext4"); err != nil {
		return t, fmt.Errorf("%w (install e2fsprogs: make deps)", err)
	}
	if t.QemuImg, err = lookPath("qemu-img"); err != nil {
		return t, fmt.Errorf("%w (install qemu-utils: make deps)", err)
	}
	return t, nil
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// BuildInput is what Build makes a VM image of.
type BuildInput struct {
	Archive    string   // the image's tar.gz (internal/image)
	Digest     string   // its digest, checked while unpacking
	Entrypoint []string // the image's entrypoint, relative to its files (./hello)
	OutDir     string   // where disk.qcow2, vmlinuz and initrd.img go
	Kernel     Kernel   // zero: FindKernel
}

// Build writes OutDir/disk.qcow2 and copies the kernel and initrd into OutDir;
// it returns the record's artifacts (ArtifactDisk, ArtifactDiskDigest,
// ArtifactKernel, ArtifactInitrd).
func Build(ctx context.Context, in BuildInput) (map[string]string, error) {
	tools, err := FindTools()
	if err != nil {
		return nil, err
	}
	bb, err := findBusybox()
	if err != nil {
		return nil, err
	}
	k := in.Kernel
	if k.Vmlinuz == "" {
		if k, err = FindKernel(); err != nil {
			return nil, err
		}
	}
	if len(in.Entrypoint) == 0 {
		return nil, errors.New("vm image: the image has no entrypoint")
	}
	tmp, err := os.MkdirTemp("", "imago-vm-")
	if err != nil {
		return nil, err
	}
	defer RemoveTree(tmp) // image.Unpack leaves the tree read-only
	root := filepath.Join(tmp, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(in.Archive)
	if err != nil {
		return nil, fmt.Errorf("vm image: %w", err)
	}
	err = image.Unpack(f, filepath.Join(root, "app"), in.Digest, image.Limits{})
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("vm image: unpack %s: %w", in.Archive, err)
	}
	if err := writeRoot(ctx, root, bb, in.Entrypoint); err != nil {
		return nil, err
	}
	size, err := treeSize(root)
	if err != nil {
		return nil, err
	}
	// Room for the file system's own structures and a little scratch space.
	mb := (size*5/4)>>20 + 32
	raw := filepath.Join(tmp, "root.img")
	if err := run(ctx, tools.MkfsExt4, "-q", "-F", "-t", "ext4", "-L", "imago-root", "-E", "root_owner=0:0", "-d", root, raw, fmt.Sprintf("%dM", mb)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(in.OutDir, 0o700); err != nil {
		return nil, err
	}
	disk := filepath.Join(in.OutDir, "disk.qcow2")
	if err := run(ctx, tools.QemuImg, "convert", "-q", "-O", "qcow2", raw, disk); err != nil {
		return nil, err
	}
	if err := os.Chmod(disk, 0o400); err != nil { // the base never changes: instances boot overlays
		return nil, err
	}
	digest, err := fileDigest(disk)
	if err != nil {
		return nil, err
	}
	arts := map[string]string{ArtifactDisk: disk, ArtifactDiskDigest: digest,
		ArtifactKernel: filepath.Join(in.OutDir, "vmlinuz"), ArtifactInitrd: filepath.Join(in.OutDir, "initrd.img")}
	if err := copyFile(k.Vmlinuz, arts[ArtifactKernel]); err != nil {
		return nil, fmt.Errorf("vm image: copy %s: %w", k.Vmlinuz, err)
	}
	if k.Initrd != "" {
		err = copyFile(k.Initrd, arts[ArtifactInitrd])
	} else {
		err = BuildInitrd(k.Vmlinuz, bb, arts[ArtifactInitrd])
	}
	if err != nil {
		return nil, fmt.Errorf("vm image: initrd: %w", err)
	}
	return arts, nil
}

// initScript is /init. The kernel runs it as pid 1 (init=/init). Every line it
// prints goes to the console (the instance's log).
const initScript = `#!/bin/busybox sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs tmp /tmp
ip link set lo up
i=0
while ! ip link show eth0 >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo 'nameserver 10.0.2.3' > /run/resolv.conf
# The instance's environment: the second disk holds shell assignments up to
# the line #imago-end (the qemu provider writes it; secrets never reach the
# kernel command line).
if [ -b /dev/vdb ]; then
	sed '/^#imago-end$/q' /dev/vdb > /run/imago.env
	set -a
	. /run/imago.env
	set +a
fi
export PORT="${PORT:-8080}" HOST="${HOST:-0.0.0.0}"
echo "imago-init: eth0 up, starting the entrypoint on port $PORT"
cd /app
/bin/sh /etc/imago/run
echo "imago-init: the entrypoint exited with status $?; powering off"
sync
reboot -f
`

// writeRoot adds the init, busybox and the directories the init mounts on to root.
func writeRoot(ctx context.Context, root, busybox string, entry []string) error {
	for _, d := range []string{"bin", "proc", "sys", "dev", "run", "tmp", "etc/imago"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(busybox, filepath.Join(root, "bin", "busybox")); err != nil {
		return fmt.Errorf("vm image: %w", err)
	}
	if err := os.Chmod(filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("vm image: %s --list: %w", busybox, err)
	}
	for _, name := range strings.Fields(string(out)) {
		if name == "busybox" || strings.Contains(name, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", name)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(initScript), 0o755); err != nil {
		return err
	}
	if err := os.Symlink("/run/resolv.conf", filepath.Join(root, "etc", "resolv.conf")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "etc", "imago", "run"), []byte(RunScript(entry)), 0o644)
}

// RunScript is /etc/imago/run: exec of the entrypoint, each word in double
// quotes so that $PORT, $HOST and the rollout's variables expand (as the local
// provider's entrypoint.Expand does) and nothing else does.
func RunScript(entry []string) string {
	var b strings.Builder
	b.WriteString("exec")
	for _, w := range entry {
		b.WriteString(` "`)
		for _, r := range w {
			if r == '"' || r == '\\' || r == '`' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('\n')
	return b.String()
}

// EnvDisk writes the raw environment disk of an instance (EnvData). The file
// is 0600: it may hold resolved secrets.
func EnvDisk(path string, env map[string]string) error {
	os.Remove(path)
	return os.WriteFile(path, EnvData(env), 0o600)
}

// Overlay creates (again) path, a qcow2 overlay whose backing file is base:
// the instance writes only the overlay, never the image's disk.
func Overlay(ctx context.Context, qemuImg, base, path string) error {
	os.Remove(path)
	if err := run(ctx, qemuImg, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", path); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// FileDigest is sha256:… of the file at path.
func FileDigest(path string) (string, error) { return fileDigest(path) }

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func run(ctx context.Context, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(prog), args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

func treeSize(root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.Type().IsRegular() {
			fi, err := de.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
