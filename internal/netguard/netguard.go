// Package netguard guards the outbound requests imago makes to URLs a user chose
// (the prometheus and http analysis providers of a rollout spec), so that a spec
// cannot turn imago's worker into a way into the networks it sits on (SSRF).
//
// The check runs at dial time, on the address each connection is about to
// connect to, after DNS resolution: a name that resolves (or rebinds) to an inner
// address is refused like the address itself, and nothing is sent to it, not even
// a SYN (net.Dialer.Control runs before connect). Refused always:
//
//   - link-local addresses (169.254.0.0/16, fe80::/10), among them the cloud
//     metadata services (169.254.169.254, fd00:ec2::254) and Alibaba's
//     100.100.100.200;
//   - unspecified (0.0.0.0/8, ::), multicast, broadcast and reserved (240.0.0.0/4)
//     addresses.
//
// Refused unless the operator allows them with IMAGO_ANALYSIS_ALLOW (hosts and
// CIDRs, comma-separated): loopback, private (10/8, 172.16/12, 192.168/16,
// fc00::/7), shared CGNAT (100.64/10) and the rest of IANA's special-purpose
// registries, as kept by code.dny.dev/ssrf. IPv4-mapped IPv6 addresses are judged
// as the IPv4 address they reach.
//
// The client never follows a redirect (the 3xx answer is returned as it is, for
// the caller to report), never goes through a proxy from the environment (the
// guard would see only the proxy), and bounds every phase of a request with a
// timeout.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// EnvAllow names the environment variable of the operator's allow list.
const EnvAllow = "IMAGO_ANALYSIS_ALLOW"

// ErrRefused is matched (errors.Is) by every refusal of the guard.
var ErrRefused = errors.New("refused by imago's outbound guard")

// RefusedError is a refused dial: what was dialed and why it may not be.
type RefusedError struct {
	Addr netip.Addr
	Why  string // "link-local (the cloud metadata address)", "loopback", ...
	// Allowable tells whether IMAGO_ANALYSIS_ALLOW could allow it.
	Allowable bool
}

func (e *RefusedError) Error() string {
	if e.Allowable {
		return fmt.Sprintf("%v: %s is %s; an operator can allow it with %s=%s (hosts and CIDRs, comma-separated)",
			ErrRefused, e.Addr, e.Why, EnvAllow, e.Addr)
	}
	return fmt.Sprintf("%v: %s is %s, never allowed", ErrRefused, e.Addr, e.Why)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// never are the networks no allow list opens: metadata services live there, and
// the unspecified address reaches the local host.
var never = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "link-local (the cloud metadata address)"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "the AWS metadata address (IPv6)"},
	{netip.MustParsePrefix("100.100.100.200/32"), "the Alibaba Cloud metadata address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (it reaches this host)"},
	{netip.MustParsePrefix("::/128"), "unspecified (it reaches this host)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "broadcast or reserved"},
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Allow is the operator's list of hosts and networks that may be dialed although
// they are loopback, private or otherwise special. The zero value allows nothing.
type Allow struct {
	prefixes []netip.Prefix
	hosts    map[string]bool // lower-case names, without a trailing dot
	text     string
}

// ParseAllow reads a comma-separated list of host names, IP addresses and CIDRs,
// e.g. "127.0.0.1, prometheus.internal, 10.20.0.0/16". An entry in a network
// that is never allowed (link-local, metadata, unspecified, multicast) is an
// error, as is anything else that is not a host, an address or a CIDR.
func ParseAllow(s string) (Allow, error) {
	a := Allow{text: strings.TrimSpace(s)}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		bad := func(why string) (Allow, error) {
			return Allow{}, fmt.Errorf("%s: %q %s; want host names, IP addresses and CIDRs, comma-separated (e.g. 127.0.0.1,prometheus.internal,10.20.0.0/16)", EnvAllow, e, why)
		}
		var p netip.Prefix
		if pp, err := netip.ParsePrefix(e); err == nil {
			p = pp.Masked()
		} else if ip, err := netip.ParseAddr(e); err == nil {
			ip = ip.Unmap()
			p = netip.PrefixFrom(ip, ip.BitLen())
		} else {
			name := strings.ToLower(strings.TrimSuffix(e, "."))
			if !validHost(name) {
				return bad("is not a host name, an IP address or a CIDR (no scheme, port or path)")
			}
			if a.hosts == nil {
				a.hosts = map[string]bool{}
			}
			a.hosts[name] = true
			continue
		}
		for _, n := range never {
			// Wider entries (0.0.0.0/0) are fine: Check refuses these before the allow list.
			if n.prefix.Contains(p.Addr()) && p.Bits() >= n.prefix.Bits() {
				return bad(fmt.Sprintf("is %s (%s), never allowed", n.why, n.prefix))
			}
		}
		a.prefixes = append(a.prefixes, p)
	}
	return a, nil
}

// MustParseAllow is ParseAllow for lists known to be good (tests); it panics on an error.
func MustParseAllow(s string) Allow {
	a, err := ParseAllow(s)
	if err != nil {
		panic(err)
	}
	return a
}

// String is the list as given.
func (a Allow) String() string { return a.text }

func validHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (a Allow) allowsAddr(ip netip.Addr) bool {
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (a Allow) allowsHost(host string) bool {
	return a.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// Guard checks outbound connections against its allow list.
type Guard struct {
	allow   Allow
	special *ssrf.Guardian // IANA's special-purpose registries; the allow list is ours
}

// New returns a guard that allows what allow lists besides public addresses.
func New(allow Allow) *Guard {
	return &Guard{allow: allow, special: ssrf.New(ssrf.WithAnyPort())}
}

// Check returns a *RefusedError when ip may not be dialed. named says the
// connection goes to a host name the allow list names: then only what is never
// allowed is refused.
func (g *Guard) Check(ip netip.Addr, named bool) error {
	ip = ip.Unmap() // ::ffff:10.0.0.1 reaches 10.0.0.1
	for _, n := range never {
		if n.prefix.Contains(ip) {
			return &RefusedError{Addr: ip, Why: n.why}
		}
	}
	if named || g.allow.allowsAddr(ip) {
		return nil
	}
	var why string
	switch {
	case ip.IsLoopback():
		why = "loopback"
	case ip.IsPrivate():
		why = "private"
	case cgnat.Contains(ip):
		why = "shared address space (CGNAT, 100.64.0.0/10)"
	default:
		if err := g.special.SafeAddr(ip); err != nil {
			why = "special-purpose (" + strings.TrimPrefix(err.Error(), ssrf.ErrProhibitedIP.Error()+": ") + ")"
		}
	}
	if why == "" {
		return nil
	}
	return &RefusedError{Addr: ip, Why: why, Allowable: true}
}

// Control is a net.Dialer Control function that refuses what Check refuses (by
// address only; see DialContext for names on the allow list).
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	return g.control(false)(network, address, nil)
}

func (g *Guard) control(named bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if network != "tcp4" && network != "tcp6" {
			return fmt.Errorf("%w: network %s (only TCP)", ErrRefused, network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot read the address %q: %v", ErrRefused, address, err)
		}
		return g.Check(ap.Addr(), named)
	}
}

// dialTimeout bounds a connect.
const dialTimeout = 5 * time.Second

// DialContext dials addr ("host:port") with the guard checking every address it
// connects to. A host name on the allow list may resolve to loopback and
// private addresses; every other name only to public ones.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Control: g.control(g.allow.allowsHost(host))}
	return d.DialContext(ctx, network, addr)
}

// Client returns an HTTP client whose every connection goes through the guard,
// that follows no redirect (the 3xx answer is returned) and gives a request
// timeout in all (0: 10s) to connect, shake hands, and answer.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  nil, // a proxy would dial, not us
			DialContext:            g.DialContext,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    min(timeout, 5*time.Second),
			ResponseHeaderTimeout:  timeout,
			ExpectContinueTimeout:  time.Second,
			MaxIdleConns:           16,
			IdleConnTimeout:        30 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
