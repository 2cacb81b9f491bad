// Package libvirtdtest starts a real, private libvirtd for tests: Debian's
// libvirt-daemon and libvirt-daemon-driver-qemu (make deps), in session mode
// (an unprivileged libvirtd, as every user can run one), with every path of
// its own in a temporary directory: its socket ($XDG_RUNTIME_DIR/libvirt/
// libvirt-sock), configuration, domain definitions, logs and the storage
// pool. Nothing is shared with a system libvirtd or another test's daemon,
// and nothing needs the libvirt-qemu user, the kvm group, DBus, dnsmasq or
// systemd.
//
// Run as root (as the tests are here), the daemon runs as the unprivileged
// user nobody: a root libvirtd is always the system daemon, whose paths
// (/run/libvirt, /var/lib/libvirt, /etc/libvirt/qemu.conf) are compiled in.
// The daemon's QEMU processes run as that user too. Console output goes to
// files (qemu.conf stdio_handler = "file"), so no virtlogd is spawned.
//
// Stop destroys every domain, stops libvirtd (its process group: SIGTERM,
// SIGKILL after a grace) and any QEMU process it left (by the pid files in
// its private run directory), and removes the directory.
package libvirtdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/imago/imago/internal/bake/runas"
)

// UnprivilegedUser runs the daemon when the tests run as root.
const UnprivilegedUser = "nobody"

// Daemon is a running private libvirtd.
type Daemon struct {
	// Dir is the daemon's directory (its HOME and XDG directories).
	Dir string
	// Socket is its RPC socket.
	Socket string
	// PoolDir is a directory the daemon may use as a storage pool (not
	// created: the driver defines and builds the pool there).
	PoolDir string
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// URI is the daemon's connection URI for go-libvirt (qemu:///session on
// Socket).
func (d *Daemon) URI() string {
	return "qemu:///session?socket=" + url.QueryEscape(d.Socket)
}

// ProviderURL is the libvirt provider URL of the daemon, with the query
// parameters extra (e.g. "accel=tcg&memory=128") appended.
func (d *Daemon) ProviderURL(extra string) string {
	u := "libvirt:///session?socket=" + url.QueryEscape(d.Socket) + "&pooldir=" + url.QueryEscape(d.PoolDir)
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// Start starts a private libvirtd and returns once it answers on its
// socket (within timeout).
func Start(ctx context.Context, timeout time.Duration) (*Daemon, error) {
	libvirtd, err := exec.LookPath("libvirtd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/libvirtd"); serr != nil {
			return nil, fmt.Errorf("libvirtd: %w (install libvirt-daemon and libvirt-daemon-driver-qemu: make deps)", err)
		}
		libvirtd = "/usr/sbin/libvirtd"
	}
	// Short: the socket path must fit a unix socket address (108 bytes).
	dir, err := os.MkdirTemp("", "lvd-")
	if err != nil {
		return nil, err
	}
	d := &Daemon{Dir: dir, Socket: filepath.Join(dir, "run", "libvirt", "libvirt-sock"), PoolDir: filepath.Join(dir, "pool"), done: make(chan struct{})}
	fail := func(err error) (*Daemon, error) {
		d.Stop()
		return nil, err
	}
	conf := filepath.Join(dir, "config", "libvirt")
	for _, sub := range []string{"run", "cache", "data", filepath.Join("config", "libvirt")} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(filepath.Join(conf, "qemu.conf"), []byte("stdio_handler = \"file\"\n"), 0o600); err != nil {
		return fail(err)
	}
	cmd := exec.Command(libvirtd)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LIBVIRT_LOG_OUTPUTS=3:stderr"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if os.Geteuid() == 0 {
		// runas: the user's uid and gid, no supplementary groups. Not its PID
		// namespace: libvirtd reads /proc (the host's) by the pids it sees,
		// and in a namespace of its own waits for QEMU processes it cannot
		// find there (a boot-and-terminate test took 100 s instead of 12).
		u, err := runas.Parse(UnprivilegedUser)
		if err == nil {
			err = u.Own(dir)
		}
		if err == nil {
			err = u.Apply(cmd)
		}
		if err != nil {
			return fail(err)
		}
		cmd.SysProcAttr.Cloneflags &^= syscall.CLONE_NEWPID
	}
	logf, err := os.OpenFile(filepath.Join(dir, "libvirtd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fail(fmt.Errorf("start libvirtd: %w", err))
	}
	logf.Close()
	d.cmd = cmd
	go func() { cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("unix", d.Socket, time.Second)
		if err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.done:
			return fail(fmt.Errorf("libvirtd exited at start:\n%s", d.LogTail()))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("libvirtd did not answer on %s within %s:\n%s", d.Socket, timeout, d.LogTail()))
		}
	}
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// LogTail is the end of the daemon's log.
func (d *Daemon) LogTail() string {
	data, _ := os.ReadFile(filepath.Join(d.Dir, "libvirtd.log"))
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}

// Stop destroys the daemon's domains, stops it and the QEMU processes it
// started, and removes its directory. Stopping it again does nothing.
func (d *Daemon) Stop() error {
	if d.stopped {
		return nil
	}
	d.stopped = true
	var errs []error
	if d.cmd != nil {
		errs = append(errs, d.destroyDomains())
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
		errs = append(errs, d.killLeftQemus())
	}
	errs = append(errs, os.RemoveAll(d.Dir))
	return errors.Join(errs...)
}

// destroyDomains destroys and undefines every domain of the daemon.
func (d *Daemon) destroyDomains() error {
	u, _ := url.Parse(d.URI())
	conn, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return err
	}
	defer conn.Disconnect()
	doms, _, err := conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return err
	}
	for _, dom := range doms {
		conn.DomainDestroyFlags(dom, 0)
		conn.DomainUndefineFlags(dom, 0)
	}
	return nil
}

// killLeftQemus kills the QEMU processes whose pid files are in the daemon's
// run directory and which still run QEMU (none, after destroyDomains).
func (d *Daemon) killLeftQemus() error {
	pids, _ := filepath.Glob(filepath.Join(d.Dir, "run", "libvirt", "qemu", "run", "*.pid"))
	var left []string
	for _, f := range pids {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 1 {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && strings.Contains(exe, "qemu-system") {
			syscall.Kill(pid, syscall.SIGKILL)
			left = append(left, strconv.Itoa(pid))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("QEMU processes left by libvirtd, killed: %s", strings.Join(left, " "))
	}
	return nil
}
