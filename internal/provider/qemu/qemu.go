// Package qemu is imago's "qemu" provider driver: every instance is a virtual
// machine booted from a bootable image (a bake with format: vm, internal/vmimage)
// by a detached qemu-system-x86_64 process.
//
// It is the local driver (internal/provider/local) with a Launcher: fleets,
// state files, routers, resize, adoption after a worker crash and the leak
// reaper's view are the local driver's, and the instance's process is QEMU. An
// instance's root disk is a qcow2 overlay of the image's read-only disk
// (nothing writes the image), a second raw disk holds its environment (PORT,
// HOST, the rollout's env; 0600, never on the kernel command line), user-mode
// networking forwards 127.0.0.1:<port> (the instance's address) to the guest's
// port 8080, and its console is the instance log. A QMP socket per instance
// lets an operator (or Terminate, through SIGTERM, which QEMU handles as a
// clean quit) stop it.
//
// Layout of Home, beside the local driver's:
//
//	vms/<fleetID>/<instanceID>.qcow2   the instance's overlay
//	vms/<fleetID>/<instanceID>.env     its environment disk (0600)
//	run/<instanceID>.qmp               its QMP socket
//	run/qemu-accel                     the accelerator accel=auto chose (a probe boot)
package qemu

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/vmimage"
)

// Scheme is the qemu driver's provider URL scheme.
const Scheme = "qemu"

// DefaultMemoryMB is a guest's memory when the URL names none.
const DefaultMemoryMB = 128

func init() { provider.Register(Scheme, &URLOpener{}) }

// Config configures the qemu driver.
type Config struct {
	// Local is the local driver's configuration (Home, Images, RouterCommand…);
	// its Launcher is the qemu driver's.
	Local local.Config
	// Accel is auto (KVM when a probe boot works, else TCG), kvm or tcg.
	Accel string
	// Machine is vmimage.MachinePC (the default) or vmimage.MachineMicroVM.
	Machine string
	// MemoryMB is each guest's memory (default DefaultMemoryMB).
	MemoryMB int
}

// Driver is the qemu provider driver: the local driver booting VMs.
type Driver struct {
	*local.Driver
	l *launcher
}

var _ provider.Driver = (*Driver)(nil)

// Open returns a qemu driver on cfg.Local.Home. It fails when QEMU or
// qemu-img is missing (make deps), and with accel auto, probes KVM once per
// Home.
func Open(ctx context.Context, cfg Config) (*Driver, error) {
	qemu, err := vmimage.FindQemu()
	if err != nil {
		return nil, fmt.Errorf("qemu provider: %w", err)
	}
	tools, err := vmimage.FindTools()
	if err != nil {
		return nil, fmt.Errorf("qemu provider: %w", err)
	}
	l := &launcher{qemu: qemu, qemuImg: tools.QemuImg, machine: cfg.Machine, mem: cfg.MemoryMB, verified: map[string]string{}}
	if l.machine == "" {
		l.machine = vmimage.MachinePC
	}
	if l.mem == 0 {
		l.mem = DefaultMemoryMB
	}
	lc := cfg.Local
	lc.Launcher = l
	d, err := local.Open(lc)
	if err != nil {
		return nil, err
	}
	l.home = d.Home()
	if l.accel, err = chooseAccel(ctx, qemu, d.Home(), cfg.Accel); err != nil {
		return nil, fmt.Errorf("qemu provider: %w", err)
	}
	return &Driver{Driver: d, l: l}, nil
}

// Accel is the accelerator the driver's VMs run with (kvm or tcg).
func (d *Driver) Accel() string { return d.l.accel }

// chooseAccel resolves accel: kvm and tcg as asked, auto by a probe boot under
// KVM whose result is kept in Home/run/qemu-accel.
func chooseAccel(ctx context.Context, qemu, home, accel string) (string, error) {
	switch accel {
	case vmimage.AccelKVM, vmimage.AccelTCG:
		return accel, nil
	case "", vmimage.AccelAuto:
	default:
		return "", fmt.Errorf("accel %q: want auto, kvm or tcg", accel)
	}
	file := filepath.Join(home, "run", "qemu-accel")
	if data, err := os.ReadFile(file); err == nil {
		if a := strings.TrimSpace(string(data)); a == vmimage.AccelKVM || a == vmimage.AccelTCG {
			return a, nil
		}
	}
	chosen := vmimage.AccelTCG
	if k, err := vmimage.FindKernel(); err == nil {
		if ok, _ := vmimage.ProbeKVM(ctx, qemu, k, 10*time.Second); ok {
			chosen = vmimage.AccelKVM
		}
	}
	return chosen, os.WriteFile(file, []byte(chosen+"\n"), 0o600)
}

// launcher boots instances as VMs (local.Launcher).
type launcher struct {
	qemu, qemuImg string
	machine       string
	mem           int
	accel         string
	home          string

	mu       sync.Mutex
	verified map[string]string // disk path -> digest checked
}

// vm is what a VM image's record says about its boot files.
type vm struct {
	disk   string
	kernel vmimage.Kernel
}

func vmOf(img contract.Image) (vm, error) {
	v := vm{disk: img.Artifacts[vmimage.ArtifactDisk],
		kernel: vmimage.Kernel{Vmlinuz: img.Artifacts[vmimage.ArtifactKernel], Initrd: img.Artifacts[vmimage.ArtifactInitrd]}}
	if v.disk == "" || v.kernel.Vmlinuz == "" || v.kernel.Initrd == "" {
		return v, provider.Errorf(provider.InvalidArgument,
			"image %s is not a VM image (no %s, %s and %s artifacts): bake it with format: vm", img.ID, vmimage.ArtifactDisk, vmimage.ArtifactKernel, vmimage.ArtifactInitrd)
	}
	return v, nil
}

// Prepare checks that img is a VM image whose disk is the one its record
// names (digest, checked once per driver and disk), with its kernel and initrd.
func (l *launcher) Prepare(ctx context.Context, img contract.Image) error {
	v, err := vmOf(img)
	if err != nil {
		return err
	}
	want := img.Artifacts[vmimage.ArtifactDiskDigest]
	l.mu.Lock()
	done := l.verified[v.disk] == want
	l.mu.Unlock()
	if !done {
		got, err := vmimage.FileDigest(v.disk)
		if err != nil {
			return provider.Errorf(provider.FailedPrecondition, "image %s: its VM disk: %v", img.ID, err)
		}
		if got != want {
			return provider.Errorf(provider.FailedPrecondition, "image %s: its VM disk %s is %s, the record says %s: the disk was modified", img.ID, v.disk, got, want)
		}
		l.mu.Lock()
		l.verified[v.disk] = want
		l.mu.Unlock()
	}
	for _, f := range []string{v.kernel.Vmlinuz, v.kernel.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return provider.Errorf(provider.FailedPrecondition, "image %s: %v", img.ID, err)
		}
	}
	return nil
}

func (l *launcher) fleetDir(fleetID string) string { return filepath.Join(l.home, "vms", fleetID) }

// qmpPath is the instance's QMP socket, or "" when the path would be too long
// for a unix socket (108 bytes).
func (l *launcher) qmpPath(instanceID string) string {
	p := filepath.Join(l.home, "run", instanceID+".qmp")
	if len(p) >= 100 {
		return ""
	}
	return p
}

// Command makes the instance's overlay and environment disk and returns its
// QEMU command.
func (l *launcher) Command(ctx context.Context, img contract.Image, f contract.Fleet, in contract.Instance, port int, env map[string]string) (*exec.Cmd, error) {
	v, err := vmOf(img)
	if err != nil {
		return nil, err
	}
	dir := l.fleetDir(f.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	overlay := filepath.Join(dir, in.ID+".qcow2")
	if err := vmimage.Overlay(ctx, l.qemuImg, v.disk, overlay); err != nil {
		return nil, fmt.Errorf("instance %s: %w", in.ID, err)
	}
	guest := map[string]string{}
	for k, val := range env {
		guest[k] = val
	}
	guest[entrypoint.Port], guest[entrypoint.Host] = fmt.Sprint(vmimage.GuestPort), vmimage.GuestHost
	envDisk := filepath.Join(dir, in.ID+".env")
	if err := vmimage.EnvDisk(envDisk, guest); err != nil {
		return nil, fmt.Errorf("instance %s: %w", in.ID, err)
	}
	qmp := l.qmpPath(in.ID)
	if qmp != "" {
		os.Remove(qmp)
	}
	b := vmimage.Boot{Machine: l.machine, Accel: l.accel, MemoryMB: l.mem, Kernel: v.kernel,
		Overlay: overlay, EnvDisk: envDisk, HostPort: port, QMP: qmp}
	return exec.Command(l.qemu, b.Args()...), nil
}

// Forget removes the fleet's disks and QMP sockets.
func (l *launcher) Forget(fleetID string) error {
	socks, _ := filepath.Glob(filepath.Join(l.home, "run", fleetID+"-*.qmp"))
	for _, s := range socks {
		os.Remove(s)
	}
	if err := os.RemoveAll(l.fleetDir(fleetID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// URLOpener opens qemu drivers from URLs:
//
//	qemu://                               on the worker's IMAGO_HOME, accel auto, 128 MB guests
//	qemu://?accel=tcg&memory=256&machine=microvm
//
// The URL has no host or path: the driver runs VMs on the machine it runs on.
type URLOpener struct {
	// Base is the configuration the URL's parameters change; its Local.Home
	// and Local.Images default to the OpenEnv's.
	Base Config
}

// OpenDriverURL implements provider.URLOpener.
func (o *URLOpener) OpenDriverURL(ctx context.Context, u *url.URL, env provider.OpenEnv) (provider.Driver, error) {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return nil, fmt.Errorf("qemu provider: %q has a host or path; write qemu:// (options as query parameters: ?accel=tcg&memory=128&machine=pc)", u.Redacted())
	}
	cfg := o.Base
	cfg.Local = cfg.Local.WithEnv(env)
	q := provider.NewURLParams(u)
	AccelMemoryParams(q, &cfg.Accel, &cfg.MemoryMB)
	switch m := q.String("machine"); m {
	case "":
	case vmimage.MachinePC, vmimage.MachineMicroVM:
		cfg.Machine = m
	default:
		q.Fail("machine", "%q: want pc or microvm", m)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("qemu provider: %w", err)
	}
	return Open(ctx, cfg)
}

// AccelMemoryParams reads the query parameters accel (auto, kvm or tcg) and
// memory (megabytes, 64 to 65536) of a VM driver's URL (qemu://, libvirt://)
// into accel and memoryMB, each only when present. Bad values are recorded in q.
func AccelMemoryParams(q *provider.URLParams, accel *string, memoryMB *int) {
	switch a := q.String("accel"); a {
	case "":
	case vmimage.AccelAuto, vmimage.AccelKVM, vmimage.AccelTCG:
		*accel = a
	default:
		q.Fail("accel", "%q: want auto, kvm or tcg", a)
	}
	if m := q.String("memory"); m != "" {
		var mb int
		if _, err := fmt.Sscanf(m, "%d", &mb); err != nil || mb < 64 || mb > 65536 || fmt.Sprint(mb) != m {
			q.Fail("memory", "%q: want megabytes, 64 to 65536", m)
		}
		*memoryMB = mb
	}
}
