package devserver

import (
	"fmt"
	"net"
	"strconv"
)

// endpoint is a parsed Config.Listen value.
type endpoint struct {
	bindIP net.IP // what the frontend binds: may be unspecified (0.0.0.0 / ::)
	dialIP net.IP // what clients in this process dial: loopback for unspecified
	port   int    // 0 = pick a free one
}

// parseListen parses "host:port". host may be an IP address, "localhost"
// (127.0.0.1), or empty (all interfaces, as in Go's net.Listen).
func parseListen(what, addr string) (endpoint, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return endpoint{}, fmt.Errorf("devserver: invalid %s address %q: %w", what, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return endpoint{}, fmt.Errorf("devserver: invalid %s address %q: bad port %q", what, addr, portStr)
	}
	var ip net.IP
	switch host {
	case "":
		ip = net.IPv4zero
	case "localhost":
		ip = net.IPv4(127, 0, 0, 1)
	default:
		ip = net.ParseIP(host)
		if ip == nil {
			return endpoint{}, fmt.Errorf("devserver: invalid %s address %q: host must be an IP address or \"localhost\"", what, addr)
		}
	}
	dial := ip
	if ip.IsUnspecified() {
		dial = net.IPv4(127, 0, 0, 1)
	}
	return endpoint{bindIP: ip, dialIP: dial, port: port}, nil
}

// dialAddr turns a bound listener address into one a local client can dial.
func dialAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// portReserver holds listeners on the ports chosen for the server until
// release, so that no port is handed out twice and so that a port that is
// already taken is reported before the server starts (the Temporal server
// reacts to bind failures with logger.Fatal).
type portReserver struct {
	ls []net.Listener
}

// reserve binds ip:port (port 0 = any free port) and returns the port.
func (r *portReserver) reserve(ip net.IP, port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	r.ls = append(r.ls, l)
	return l.Addr().(*net.TCPAddr).Port, nil
}

// release closes all reserved listeners. Safe to call more than once.
func (r *portReserver) release() {
	for _, l := range r.ls {
		_ = l.Close()
	}
	r.ls = nil
}
