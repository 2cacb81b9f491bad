package vmimage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The modules a guest needs before its root file system: virtio over MMIO
// (microvm) and PCI (pc), its disks and its network card.
var guestModules = []string{
	"kernel/drivers/virtio/virtio_mmio.ko",
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/drivers/block/virtio_blk.ko",
	"kernel/drivers/net/virtio_net.ko",
}

// initrdInit is the initrd's /init: load the virtio modules, mount the root
// disk, switch to it.
const initrdInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in $(/bin/busybox cat /modules.order); do /bin/busybox insmod /$m 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do /bin/busybox sleep 0.05; i=$((i+1)); done
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "imago-initrd: cannot mount /dev/vda"; /bin/busybox reboot -f; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /init
`

// kernelVersion is the version in a /boot/vmlinuz-<version> name.
func kernelVersion(vmlinuz string) (string, error) {
	v, ok := strings.CutPrefix(filepath.Base(vmlinuz), "vmlinuz-")
	if !ok || v == "" {
		return "", fmt.Errorf("kernel %s: want a vmlinuz-<version> file name (its modules are /lib/modules/<version>)", vmlinuz)
	}
	return v, nil
}

// BuildInitrd writes a small initrd (an uncompressed newc cpio archive) for the
// kernel vmlinuz: busybox, the virtio modules from /lib/modules/<version> and
// an init that mounts /dev/vda and switches to it. Debian's own initrd needs
// more than 128 MB of guest memory to unpack; this one needs a few.
func BuildInitrd(vmlinuz, busybox, out string) error {
	ver, err := kernelVersion(vmlinuz)
	if err != nil {
		return err
	}
	modDir := filepath.Join("/lib/modules", ver)
	deps, err := readModulesDep(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return fmt.Errorf("initrd: %w (install the kernel's package: make deps)", err)
	}
	var order []string
	seen := map[string]bool{}
	var add func(m string) error
	add = func(m string) error {
		if seen[m] {
			return nil
		}
		d, ok := deps[m]
		if !ok {
			return fmt.Errorf("initrd: module %s is not in %s/modules.dep", m, modDir)
		}
		// modules.dep lists a module's dependencies so that loading them from
		// the last to the first works.
		for i := len(d) - 1; i >= 0; i-- {
			if err := add(d[i]); err != nil {
				return err
			}
		}
		seen[m] = true
		order = append(order, m)
		return nil
	}
	for _, m := range guestModules {
		if err := add(m); err != nil {
			return err
		}
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	var w cpioWriter
	w.dir("bin")
	w.file("bin/busybox", 0o755, bb)
	w.file("init", 0o755, []byte(initrdInit))
	w.file("modules.order", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	made := map[string]bool{}
	for _, m := range order {
		for d := path.Dir(m); d != "." && !made[d]; d = path.Dir(d) {
			made[d] = true
		}
	}
	dirs := make([]string, 0, len(made))
	for d := range made {
		dirs = append(dirs, d)
	}
	// Parents first: shorter paths sort first among a path's ancestors.
	sortByDepth(dirs)
	for _, d := range dirs {
		w.dir(d)
	}
	for _, m := range order {
		data, err := os.ReadFile(filepath.Join(modDir, m))
		if err != nil {
			return fmt.Errorf("initrd: %w", err)
		}
		w.file(m, 0o644, data)
	}
	return os.WriteFile(out, w.close(), 0o600)
}

func sortByDepth(dirs []string) {
	depth := func(s string) int { return strings.Count(s, "/") }
	for i := 1; i < len(dirs); i++ {
		for j := i; j > 0 && (depth(dirs[j]) < depth(dirs[j-1]) || depth(dirs[j]) == depth(dirs[j-1]) && dirs[j] < dirs[j-1]); j-- {
			dirs[j], dirs[j-1] = dirs[j-1], dirs[j]
		}
	}
}

func readModulesDep(p string) (map[string][]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if ok {
			out[mod] = strings.Fields(deps)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New(p + " lists no modules")
	}
	return out, nil
}

// cpioWriter writes a newc ("070701") cpio archive, the format the kernel
// unpacks as an initramfs. Hand-written: the format is a fixed header of hex
// fields per entry, and no module of the project's lists writes it.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

func (w *cpioWriter) entry(name string, mode uint32, data []byte) {
	w.ino++
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
	w.buf.Write(data)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string)                         { w.entry(name, 0o040000|0o755, nil) }
func (w *cpioWriter) file(name string, perm uint32, b []byte) { w.entry(name, 0o100000|perm, b) }
func (w *cpioWriter) close() []byte {
	w.entry("TRAILER!!!", 0, nil)
	return w.buf.Bytes()
}
