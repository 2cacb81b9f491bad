package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCheck(t *testing.T) {
	strict := New(Allow{})
	allowed := New(MustParseAllow("127.0.0.1, 10.20.0.0/16, ::1, 0.0.0.0/0"))
	for _, tc := range []struct {
		ip             string
		strict, allow  string // "" allowed, else a part of the refusal
		allowableByEnv bool
	}{
		{"93.184.215.14", "", "", false},
		{"2606:4700::1111", "", "", false},
		{"169.254.169.254", "(the cloud metadata address), never allowed", "never allowed", false},
		{"::ffff:169.254.169.254", "169.254.169.254 is link-local (the cloud metadata address)", "never allowed", false},
		{"fd00:ec2::254", "AWS metadata address (IPv6), never allowed", "never allowed", false},
		{"100.100.100.200", "Alibaba Cloud metadata address", "never allowed", false},
		{"169.254.10.1", "link-local, never allowed", "never allowed", false},
		{"fe80::1", "link-local, never allowed", "never allowed", false},
		{"0.0.0.0", "unspecified", "unspecified", false},
		{"::", "unspecified", "unspecified", false},
		{"224.0.0.1", "multicast", "multicast", false},
		{"ff02::1", "multicast", "multicast", false},
		{"255.255.255.255", "broadcast", "broadcast", false},
		{"127.0.0.1", "127.0.0.1 is loopback; an operator can allow it with IMAGO_ANALYSIS_ALLOW=127.0.0.1", "", true},
		{"127.0.0.2", "loopback", "", true}, // 0.0.0.0/0 allows it
		{"::ffff:127.0.0.1", "127.0.0.1 is loopback", "", true},
		{"::1", "::1 is loopback", "", true},
		{"10.20.3.4", "private", "", true},
		{"10.21.3.4", "private", "", true},
		{"172.16.0.1", "private", "", true},
		{"192.168.1.1", "private", "", true},
		{"fc00::1", "private", "private", true},
		{"100.64.0.1", "CGNAT", "", true},
		{"198.18.0.1", "special-purpose (198.18.0.1 is not a permitted destination (denied by: 198.18.0.0/15))", "", true},
	} {
		for _, g := range []struct {
			guard *Guard
			want  string
		}{{strict, tc.strict}, {allowed, tc.allow}} {
			err := g.guard.Check(netip.MustParseAddr(tc.ip), false)
			if g.want == "" {
				if err != nil {
					t.Errorf("%s: %v, want allowed", tc.ip, err)
				}
				continue
			}
			var re *RefusedError
			if !errors.As(err, &re) || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), g.want) {
				t.Errorf("%s: %v, want a refusal containing %q", tc.ip, err, g.want)
				continue
			}
			if g.guard == strict && re.Allowable != tc.allowableByEnv {
				t.Errorf("%s: allowable %v, want %v", tc.ip, re.Allowable, tc.allowableByEnv)
			}
		}
	}
	// A name on the allow list may reach private addresses, never metadata.
	if err := strict.Check(netip.MustParseAddr("10.0.0.1"), true); err != nil {
		t.Errorf("named private: %v", err)
	}
	if err := strict.Check(netip.MustParseAddr("169.254.169.254"), true); !errors.Is(err, ErrRefused) {
		t.Errorf("named metadata: %v", err)
	}
}

func TestParseAllow(t *testing.T) {
	a, err := ParseAllow(" 127.0.0.1 , Prometheus.Internal., 10.20.30.40/16,::1,")
	if err != nil {
		t.Fatal(err)
	}
	if !a.allowsHost("prometheus.internal") || !a.allowsHost("PROMETHEUS.internal.") || a.allowsHost("internal") {
		t.Errorf("hosts %v", a.hosts)
	}
	for ip, want := range map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "10.20.255.1": true, "10.21.0.1": false, "::1": true} {
		if got := a.allowsAddr(netip.MustParseAddr(ip)); got != want {
			t.Errorf("allows %s = %v, want %v", ip, got, want)
		}
	}
	for _, bad := range []struct{ in, want string }{
		{"169.254.169.254", `"169.254.169.254" is link-local (the cloud metadata address) (169.254.169.254/32), never allowed`},
		{"169.254.0.0/16", "never allowed"},
		{"fe80::1", "never allowed"},
		{"0.0.0.0", "unspecified"},
		{"http://prometheus:9090", "is not a host name"},
		{"prometheus:9090", "is not a host name"},
		{"10.0.0.0/33", "is not a host name, an IP address or a CIDR"},
		{"a b", "is not a host name"},
	} {
		if _, err := ParseAllow(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.HasPrefix(err.Error(), EnvAllow+": ") {
			t.Errorf("ParseAllow(%q) = %v, want an error naming %s containing %q", bad.in, err, EnvAllow, bad.want)
		}
	}
}

// nothingConnected proves that no connection reached ln before this call: the
// first connection it accepts now is one made here.
func nothingConnected(t *testing.T, ln net.Listener) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("the listener had accepted a connection from %s before: the guard let it through", got.RemoteAddr())
	}
}

func TestDialRefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx := context.Background()

	for _, addr := range []string{ln.Addr().String(), "localhost:" + port} {
		if _, err := New(Allow{}).DialContext(ctx, "tcp", addr); !errors.Is(err, ErrRefused) {
			t.Fatalf("dial %s without allow: %v, want refused", addr, err)
		}
		nothingConnected(t, ln)
	}
	// Allowed by address, and by name.
	for allow, addr := range map[string]string{"127.0.0.1": ln.Addr().String(), "localhost": "localhost:" + port} {
		c, err := New(MustParseAllow(allow)).DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("dial %s allowed by %s: %v", addr, allow, err)
		}
		c.Close()
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
	// The metadata address is refused before any packet leaves: Control runs
	// before connect(2), so this returns at once with the guard's error.
	_, err = New(MustParseAllow("0.0.0.0/0")).DialContext(ctx, "tcp", "169.254.169.254:80")
	var re *RefusedError
	if !errors.As(err, &re) || re.Addr.String() != "169.254.169.254" || re.Allowable {
		t.Fatalf("dial metadata: %v", err)
	}
}

func TestClientFollowsNoRedirect(t *testing.T) {
	var hit atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL+"/secret", http.StatusFound))
	defer redirect.Close()

	c := New(MustParseAllow("127.0.0.1")).Client(0)
	resp, err := c.Get(redirect.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hit.Load() != 0 {
		t.Fatalf("status %d, target hit %d times; want the 302 itself and no hit", resp.StatusCode, hit.Load())
	}

	// Without allow, the loopback server is refused, by address in the URL.
	if _, err := New(Allow{}).Client(0).Get(target.URL); !errors.Is(err, ErrRefused) {
		t.Fatalf("loopback without allow: %v", err)
	}
	if hit.Load() != 0 {
		t.Fatal("the refused request reached the server")
	}
}
