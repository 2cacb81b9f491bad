package vmimage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Accelerators.
const (
	AccelAuto = "auto" // KVM when a probe boot works, else TCG
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Machines.
const (
	// MachinePC is QEMU's i440FX PC with virtio PCI devices: slower to boot
	// than microvm, but its kernel finds a clock source (HPET, ACPI PM timer)
	// on a loaded host, where a microvm guest under TCG can hang calibrating
	// its TSC against the PIT.
	MachinePC = "pc"
	// MachineMicroVM is QEMU's microvm with virtio-mmio devices.
	MachineMicroVM = "microvm"
)

// Boot is how one instance boots.
type Boot struct {
	Machine  string // MachinePC or MachineMicroVM
	Accel    string // kvm or tcg
	MemoryMB int
	Kernel   Kernel
	Overlay  string // the instance's root disk (a qcow2 overlay of the image's disk)
	EnvDisk  string // the raw environment disk (EnvDisk)
	HostPort int    // the loopback port forwarded to GuestPort
	QMP      string // the QMP unix socket path ("" for none)
}

// Args is the qemu-system-x86_64 command line of b (without the program): the
// machine, its console on stdout, no display, user-mode networking with a
// hostfwd from 127.0.0.1:HostPort to the guest's GuestPort.
func (b Boot) Args() []string {
	cpu := "max"
	if b.Accel == AccelKVM {
		cpu = "host"
	}
	// Devices: virtio-mmio on microvm, virtio PCI (without option ROMs) on pc.
	blk, net := "virtio-blk-device", "virtio-net-device,netdev=net0"
	if b.Machine != MachineMicroVM {
		blk, net = "virtio-blk-pci", "virtio-net-pci,netdev=net0,romfile="
	}
	args := []string{
		"-M", b.Machine, "-accel", b.Accel, "-cpu", cpu, "-m", strconv.Itoa(b.MemoryMB), "-smp", "1",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-serial", "stdio",
		"-kernel", b.Kernel.Vmlinuz, "-initrd", b.Kernel.Initrd,
		"-append", KernelArgs,
		"-drive", "id=root,file=" + b.Overlay + ",format=qcow2,if=none",
		"-device", blk + ",drive=root",
		"-drive", "id=env,file=" + b.EnvDisk + ",format=raw,if=none,readonly=on",
		"-device", blk + ",drive=env",
		"-netdev", UserNetdev("net0", "127.0.0.1", b.HostPort),
		"-device", net,
	}
	if b.QMP != "" {
		args = append(args, "-qmp", "unix:"+b.QMP+",server=on,wait=off")
	}
	return args
}

// FindQemu looks qemu-system-x86_64 up in PATH.
func FindQemu() (string, error) {
	p, err := lookPath("qemu-system-x86_64")
	if err != nil {
		return "", fmt.Errorf("%w (install qemu-system-x86: make deps)", err)
	}
	return p, nil
}

// ProbeKVM reports whether a KVM guest gets as far as running the kernel: it
// boots k under KVM without a root disk and waits (up to timeout) for the
// kernel's first console line. On hosts where /dev/kvm exists but guests hang
// at kernel entry (nested virtualisation), it says no.
func ProbeKVM(ctx context.Context, qemu string, k Kernel, timeout time.Duration) (bool, error) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "64",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-serial", "stdio",
		"-kernel", k.Vmlinuz, "-append", "console=ttyS0 panic=-1")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	if err := cmd.Start(); err != nil {
		return false, err
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Linux version") {
			return true, nil
		}
	}
	return false, nil
}

// Quit asks the QEMU behind the QMP socket to quit (the QMP quit command: QEMU
// flushes and closes the disks and exits). It returns an error when the socket
// cannot be reached or does not answer within grace.
func Quit(ctx context.Context, sock string, grace time.Duration) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(grace))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // the greeting
		return fmt.Errorf("qmp %s: %w", sock, err)
	}
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, `{"execute":"quit"}`} {
		if _, err := io.WriteString(c, cmd+"\n"); err != nil {
			return fmt.Errorf("qmp %s: %w", sock, err)
		}
		if _, err := r.ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("qmp %s: %w", sock, err)
		}
	}
	return nil
}
