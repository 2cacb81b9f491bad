package libvirt

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// Host is one libvirt host of a driver.
type Host struct {
	// URI is the libvirt connection URI go-libvirt dials (as Config.URI).
	URI string
	// Address is the IPv4 address of the host that instances' hostfwds listen
	// on and the worker's routers reach them at (default 127.0.0.1).
	Address string
	// PoolDir is where the storage pool is defined on this host when it does
	// not exist (default Config.PoolDir).
	PoolDir string
}

// host is a connected libvirt host: its connection, its storage pool and
// the volumes uploaded to it.
type host struct {
	name    string // the URI, redacted: errors and records name the host by it
	conn    *golibvirt.Libvirt
	pool    golibvirt.StoragePool
	poolDir string
	addr    string

	mu       sync.Mutex
	uploaded map[string]string // volume name -> its path, checked by digest
}

// openHost connects to the host and opens (or defines) its storage pool.
func openHost(hc Host, pool, poolDir string) (*host, error) {
	u, err := url.Parse(hc.URI)
	if err != nil {
		return nil, fmt.Errorf("libvirt provider: uri: %w", err)
	}
	name := u.Redacted()
	if n, err := url.PathUnescape(name); err == nil {
		name = n // a socket's path as written
	}
	h := &host{name: name, addr: hc.Address, uploaded: map[string]string{}}
	if hc.PoolDir != "" {
		poolDir = hc.PoolDir
	}
	if h.addr == "" {
		h.addr = "127.0.0.1"
	}
	if ip := net.ParseIP(h.addr); ip == nil || ip.To4() == nil {
		return nil, fmt.Errorf("libvirt provider: host %s: address %q: want an IPv4 address of the libvirt host", h.name, h.addr)
	}
	if h.conn, err = golibvirt.ConnectToURI(u); err != nil {
		return nil, fmt.Errorf("libvirt provider: host %s: %w", h.name, err)
	}
	if err := h.openPool(pool, poolDir); err != nil {
		h.conn.Disconnect()
		return nil, fmt.Errorf("libvirt provider: host %s: %w", h.name, err)
	}
	return h, nil
}

// disconnect closes every host's connection.
func (d *Driver) disconnect() error {
	var errs []error
	for _, h := range d.hosts {
		if err := h.conn.Disconnect(); err != nil {
			errs = append(errs, fmt.Errorf("libvirt host %s: %w", h.name, err))
		}
	}
	return errors.Join(errs...)
}

// hostErr names the host in err, unless err is nil.
func (h *host) hostErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("libvirt host %s: %w", h.name, err)
}

// pickHost is where a fleet's next instance goes: the host with the fewest of
// the fleet's instances (counts, by host), ties broken by the hosts' order.
// Instances thus go round robin over the hosts.
func (d *Driver) pickHost(counts map[*host]int) *host {
	best := d.hosts[0]
	for _, h := range d.hosts[1:] {
		if counts[h] < counts[best] {
			best = h
		}
	}
	return best
}
