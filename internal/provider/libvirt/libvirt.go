// Package libvirt is imago's "libvirt" provider driver: every instance is a
// libvirt domain booted from a bootable image (a bake with format: vm,
// internal/vmimage), through libvirtd's RPC protocol
// (github.com/digitalocean/go-libvirt, pure Go: no libvirt C library on the
// worker) and domain XML written with libvirt.org/go/libvirtxml.
//
// libvirt holds the whole state: an instance is the domain imago-<instanceID>
// whose <metadata> records its fleet (token, service, environment, image,
// labels, creation time, size, the env with secrets as references) and its
// port, so a worker that crashed, or another worker on the same Home, adopts
// the domains by reading them back. A driver may span several hosts (one
// connection each, hosts.go): a fleet's domains are spread across them and
// each record names its host. Per host, a directory storage pool holds
// each image's disk, kernel and initrd once (uploaded through the RPC stream,
// checked by digest once per driver), and per instance a qcow2 overlay backed
// by the image's disk (nothing writes the image), a raw environment disk
// (vmimage.EnvData, 0600) and the console log.
//
// Domains are of type qemu (TCG) unless a probe boot under KVM works
// (vmimage.ProbeKVM) and the URL does not say accel=tcg. libvirt 9.0 has no
// passt backend and the host runs no dnsmasq, so a guest's network is QEMU's
// user-mode network with a hostfwd from 127.0.0.1:<port> (or the URL's
// address=, the instance's address) to the guest's port, given through <qemu:commandline>, the NIC at
// a fixed PCI address. The router is the local driver's (a process on the
// worker): with libvirt+ssh, instances listen on the host's address= for it.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/provider/qemu"
	"github.com/imago/imago/internal/vmimage"
)

// Schemes of the libvirt driver's provider URLs.
const (
	Scheme    = "libvirt"
	SchemeSSH = "libvirt+ssh"
)

// DefaultMemoryMB is a guest's memory when the URL names none.
const DefaultMemoryMB = 128

// DefaultPool is the storage pool the driver uses when the URL names none.
const DefaultPool = "imago"

func init() {
	provider.Register(Scheme, &URLOpener{})
	provider.Register(SchemeSSH, &URLOpener{})
}

// Config configures the libvirt driver.
type Config struct {
	// URI is the libvirt connection URI go-libvirt dials: qemu:///system,
	// qemu:///session?socket=/path, qemu+libssh://host/system...
	URI string
	// Hosts, when set, are the libvirt hosts the driver spreads instances
	// across, one connection each (URI and Address are then unused).
	Hosts []Host
	// Local configures the local driver that runs the routers (Home, Images,
	// RouterCommand); its Launcher is unused.
	Local local.Config
	// Pool is the storage pool of images and instance disks (DefaultPool);
	// when it does not exist, PoolDir is required and the driver defines a
	// directory pool there.
	Pool, PoolDir string
	// Accel is auto (KVM when a probe boot on the worker works), kvm or tcg.
	Accel string
	// MemoryMB is each guest's memory (default DefaultMemoryMB).
	MemoryMB int
	// Address is the IPv4 address of the libvirt host that instances'
	// hostfwds listen on and the worker's routers reach them at (default
	// 127.0.0.1: the worker runs on the host).
	Address string
}

// Driver is the libvirt provider driver. Routes, routers and fleet metrics
// are the embedded local driver's; fleets are libvirt domains.
type Driver struct {
	*local.Driver
	hosts  []*host
	images provider.ImageSource
	// secretClient reads https secret references: Local.SecretClient, else
	// the outbound guard with an empty allow list, as the local driver.
	secretClient *http.Client
	accel        string
	mem          int
	locks        string // directory of the fleets' lock files

	mu       sync.Mutex
	digests  map[string]string // local file -> its digest
	reserved map[int]time.Time // ports handed out recently

	// afterStart, when set (tests), runs after an instance's domain started;
	// an error aborts the Provision or Resize there, as a worker killed then.
	afterStart func(instanceID string) error
}

var (
	_ provider.Driver        = (*Driver)(nil)
	_ provider.Resizer       = (*Driver)(nil)
	_ provider.MetricsDriver = (*Driver)(nil)
)

// Open connects to libvirtd at cfg.URI (or to every one of cfg.Hosts) and
// returns a driver on cfg.Local.Home.
func Open(ctx context.Context, cfg Config) (*Driver, error) {
	hosts := cfg.Hosts
	if len(hosts) == 0 {
		hosts = []Host{{URI: cfg.URI, Address: cfg.Address}}
	}
	accel := cfg.Accel
	switch accel {
	case vmimage.AccelKVM, vmimage.AccelTCG:
	case "", vmimage.AccelAuto:
		accel = probeAccel(ctx)
	default:
		return nil, fmt.Errorf("libvirt provider: accel %q: want auto, kvm or tcg", accel)
	}
	ld, err := local.Open(cfg.Local)
	if err != nil {
		return nil, err
	}
	d := &Driver{Driver: ld, images: cfg.Local.Images, accel: accel, mem: cfg.MemoryMB,
		locks: filepath.Join(ld.Home(), "libvirt"), digests: map[string]string{}, reserved: map[int]time.Time{}}
	if d.mem == 0 {
		d.mem = DefaultMemoryMB
	}
	if d.secretClient = cfg.Local.SecretClient; d.secretClient == nil {
		d.secretClient = netguard.New(netguard.Allow{}).Client(0)
	}
	if err := os.MkdirAll(d.locks, 0o700); err != nil {
		return nil, err
	}
	poolName := cfg.Pool
	if poolName == "" {
		poolName = DefaultPool
	}
	for _, hc := range hosts {
		h, err := openHost(hc, poolName, cfg.PoolDir)
		if err != nil {
			d.disconnect()
			return nil, err
		}
		for _, o := range d.hosts {
			if o.name == h.name {
				h.conn.Disconnect()
				d.disconnect()
				return nil, fmt.Errorf("libvirt provider: host %s named twice", h.name)
			}
		}
		d.hosts = append(d.hosts, h)
	}
	return d, nil
}

// probeAccel is kvm when a probe boot of the worker's kernel under KVM works,
// else tcg. The probe runs on the worker: for a remote host, say accel=.
func probeAccel(ctx context.Context) string {
	qemu, err := vmimage.FindQemu()
	if err != nil {
		return vmimage.AccelTCG
	}
	k, err := vmimage.FindKernel()
	if err != nil {
		return vmimage.AccelTCG
	}
	if ok, _ := vmimage.ProbeKVM(ctx, qemu, k, 10*time.Second); ok {
		return vmimage.AccelKVM
	}
	return vmimage.AccelTCG
}

// Accel is the accelerator the driver's domains run with (kvm or tcg).
func (d *Driver) Accel() string { return d.accel }

// Close disconnects from every libvirtd. Domains keep running.
func (d *Driver) Close() error {
	return errors.Join(d.disconnect(), d.Driver.Close())
}

// lockFleet takes the fleet's lock (a flock in Home/libvirt): Provision,
// Resize and Terminate of one fleet are serialized across the worker's
// drivers and processes.
func (d *Driver) lockFleet(ctx context.Context, fleetID string) (func(), error) {
	l := flock.New(filepath.Join(d.locks, fleetID+".lock"), flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	ok, err := l.TryLockContext(ctx, 10*time.Millisecond)
	if err == nil && !ok {
		err = errors.New("not taken")
	}
	if err != nil {
		return nil, fmt.Errorf("lock fleet %s: %w", fleetID, err)
	}
	return func() { l.Unlock() }, nil
}

// pickPort returns a free 127.0.0.1 port (the kernel's choice), not one
// handed out in the last minute. On a remote host the port may be taken
// there: the domain then fails to start and startInstance picks another.
func (d *Driver) pickPort() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	for p, at := range d.reserved {
		if now.Sub(at) > time.Minute {
			delete(d.reserved, p)
		}
	}
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, taken := d.reserved[p]; !taken {
			d.reserved[p] = now
			return p, nil
		}
	}
	return 0, errors.New("no free loopback port")
}

// URLOpener opens libvirt drivers from URLs:
//
//	libvirt:///system                      the system libvirtd (/run/libvirt/libvirt-sock)
//	libvirt:///session?socket=/path        a session libvirtd (its socket)
//	libvirt+ssh://user@host/system         a remote libvirtd through ssh (go-libvirt's
//	                                       ssh dialer: keyfile=, known_hosts=, sshauth=)
//	…?pool=imago&pooldir=/var/lib/imago/pool&memory=128&accel=tcg&address=10.0.0.5
//
// address (an IPv4 address of the libvirt host the worker reaches) is
// required with libvirt+ssh: instances listen there, not on the host's
// loopback.
//
// Several hosts, one connection each, instances spread across them:
//
//	libvirt+ssh://root@vm1/system?host=root@vm2,root@vm3:2222&address=10.0.0.1,10.0.0.2,10.0.0.3
//	libvirt:///session?socket=/run/a/libvirt-sock,/run/b/libvirt-sock
//
// host= (repeated or a comma list) adds ssh hosts after the URL's, with the
// same path and ssh parameters; address= then lists one address per host in
// that order. socket= with several sockets is one local libvirtd each (one
// address= serves them all). pool and pooldir are the same on every host.
type URLOpener struct {
	// Base is the configuration the URL's parameters change; its Local.Home
	// and Local.Images default to the OpenEnv's.
	Base Config
}

// sshParams are go-libvirt's ssh dialer parameters, passed on.
var sshParams = []string{"keyfile", "known_hosts", "known_hosts_verify", "sshauth", "no_verify"}

// OpenDriverURL implements provider.URLOpener.
func (o *URLOpener) OpenDriverURL(ctx context.Context, u *url.URL, env provider.OpenEnv) (provider.Driver, error) {
	cfg := o.Base
	cfg.Local = cfg.Local.WithEnv(env)
	q := provider.NewURLParams(u)
	pass := url.Values{}
	var targets []url.URL
	switch u.Scheme {
	case Scheme:
		if u.Host != "" {
			q.Fail("host", "%q: libvirt:// reaches the local libvirtd; write libvirt+ssh://%s%s for a remote one", u.Host, u.Host, u.Path)
		}
		sockets := q.List("socket")
		if len(sockets) == 0 {
			targets = append(targets, url.URL{Scheme: "qemu", Path: u.Path})
		}
		for _, s := range sockets {
			targets = append(targets, url.URL{Scheme: "qemu", Path: u.Path, RawQuery: url.Values{"socket": {s}}.Encode()})
		}
	case SchemeSSH:
		if u.Host == "" {
			q.Fail("host", "libvirt+ssh:// needs a host: libvirt+ssh://user@host/system")
		}
		for _, p := range sshParams {
			if v := q.String(p); v != "" {
				pass.Set(p, v)
			}
		}
		targets = append(targets, url.URL{Scheme: "qemu+libssh", Host: u.Host, User: u.User, Path: u.Path, RawQuery: pass.Encode()})
		for _, h := range q.List("host") {
			hu, err := url.Parse("ssh://" + h)
			if err != nil || hu.Host == "" || hu.Path != "" || hu.RawQuery != "" || hu.Fragment != "" {
				q.Fail("host", "%q: want user@host or user@host:port", h)
				continue
			}
			targets = append(targets, url.URL{Scheme: "qemu+libssh", Host: hu.Host, User: hu.User, Path: u.Path, RawQuery: pass.Encode()})
		}
	}
	addrs := q.List("address")
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || ip.To4() == nil {
			q.Fail("address", "%q: want an IPv4 address of the libvirt host", a)
		}
	}
	switch {
	case u.Scheme == SchemeSSH && len(addrs) == 0 && cfg.Address == "":
		q.Fail("address", "required with libvirt+ssh: the IPv4 address of the host that instances listen on and the worker reaches")
	case u.Scheme == SchemeSSH && len(targets) > 1 && len(addrs) != len(targets):
		q.Fail("address", "%d addresses for %d hosts: list one per host, in the order of the URL's host and then host=", len(addrs), len(targets))
	case len(addrs) > 1 && len(addrs) != len(targets):
		q.Fail("address", "%d addresses for %d hosts: give one for all or one per host", len(addrs), len(targets))
	}
	if u.Path != "/system" && u.Path != "/session" {
		q.Fail("path", "%q: want /system or /session", u.Path)
	}
	if len(addrs) == 1 {
		cfg.Address = addrs[0]
	}
	if len(targets) == 1 {
		cfg.URI = targets[0].String()
	} else {
		for i, t := range targets {
			h := Host{URI: t.String(), Address: cfg.Address}
			if len(addrs) == len(targets) {
				h.Address = addrs[i]
			}
			cfg.Hosts = append(cfg.Hosts, h)
		}
	}
	qemu.AccelMemoryParams(q, &cfg.Accel, &cfg.MemoryMB)
	if p := q.String("pool"); p != "" {
		if err := provider.CheckName("pool", p); err != nil {
			q.Fail("pool", "%v", err)
		}
		cfg.Pool = p
	}
	if p := q.String("pooldir"); p != "" {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, "'\"<>&") {
			q.Fail("pooldir", "%q: want an absolute directory path", p)
		}
		cfg.PoolDir = p
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("libvirt provider: %w", err)
	}
	return Open(ctx, cfg)
}
