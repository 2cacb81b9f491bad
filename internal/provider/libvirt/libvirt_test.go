package libvirt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/drivertest"
	"github.com/imago/imago/internal/provider/libvirt/libvirtdtest"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/vmimage"
	"github.com/imago/imago/internal/vmimage/vmimagetest"
)

// Real libvirtd (a private session daemon per test, libvirtdtest), real QEMU
// domains under TCG, VM images made by vmimage.Build from examples/hello.
var (
	testCatalog *catalog.Catalog
	vmImages    map[string]contract.Image // version -> VM image
)

func TestMain(m *testing.M) {
	vmimagetest.Main(m, "libvirt", func(c *catalog.Catalog, imgs map[string]contract.Image) { testCatalog, vmImages = c, imgs })
}

// startDaemon starts a private libvirtd, stopped at the test's end.
func startDaemon(t *testing.T) *libvirtdtest.Daemon {
	t.Helper()
	d, err := libvirtdtest.Start(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("libvirtd log:\n%s", d.LogTail())
			logs, _ := filepath.Glob(filepath.Join(d.PoolDir, "*.log"))
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				if len(data) > 1500 {
					data = data[len(data)-1500:]
				}
				t.Logf("--- %s:\n%s", l, data)
			}
		}
		if err := d.Stop(); err != nil {
			t.Errorf("stop libvirtd: %v", err)
		}
	})
	return d
}

// newHome is a worker's Home whose routers are stopped at the test's end.
func newHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Cleanup(func() {
		if err := local.CleanupHome(home); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return home
}

func openDriver(t *testing.T, lv *libvirtdtest.Daemon, home string) *Driver {
	t.Helper()
	d, err := Open(context.Background(), Config{URI: lv.URI(), PoolDir: lv.PoolDir, Accel: vmimage.AccelTCG, MemoryMB: 128,
		Local: local.Config{Home: home, Images: testCatalog}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestDomainBootsServesAndStops provisions one domain from a VM image, waits
// for the program inside to answer through the hostfwd, checks the domain's
// definition, its console log and volumes, then terminates it: no domain and
// no instance volume is left, the image's disk in the pool is untouched.
func TestDomainBootsServesAndStops(t *testing.T) {
	lv := startDaemon(t)
	d := openDriver(t, lv, newHome(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img := vmImages["v1"]
	start := time.Now()
	f, err := d.Provision(ctx, contract.ProvisionRequest{Token: "boot", Service: "web", Environment: "test", ImageID: img.ID, Size: 1,
		Env: map[string]contract.EnvVar{"GREETING": {Value: "it's a domain"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := vmimagetest.WaitHealthy(ctx, d, f.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("provision to healthy: %s (accel %s)", time.Since(start).Round(time.Millisecond), d.Accel())
	in := f.Instances[0]
	if code, body, err := vmimagetest.HTTPGet("http://" + in.Address + "/"); err != nil || code != 200 || !strings.Contains(body, "v1") {
		t.Fatalf("GET / = %d %q %v, want 200 from v1", code, body, err)
	}
	dom, err := d.hosts[0].conn.DomainLookupByName(domainName(in.ID))
	if err != nil {
		t.Fatal(err)
	}
	x, err := d.hosts[0].conn.DomainGetXMLDesc(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`type='qemu'`, "<kernel>", "hostfwd=tcp:127.0.0.1:" + strings.TrimPrefix(in.Address, "127.0.0.1:") + "-:8080", metaNS} {
		if !strings.Contains(x, want) {
			t.Fatalf("domain XML lacks %q:\n%s", want, x)
		}
	}
	log, _ := os.ReadFile(filepath.Join(lv.PoolDir, domainName(in.ID)+".log"))
	if !strings.Contains(string(log), "imago-init: eth0 up") {
		t.Fatalf("console log lacks the init's line:\n%s", log)
	}
	if fi, err := os.Stat(filepath.Join(lv.PoolDir, domainName(in.ID)+".env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("environment disk: %v %v, want mode 0600", fi, err)
	}
	base := filepath.Join(lv.PoolDir, volPrefix+"base-"+shortDigest(img.Artifacts[vmimage.ArtifactDiskDigest])+".qcow2")
	if err := d.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if doms, _, err := d.hosts[0].conn.ConnectListAllDomains(1, 0); err != nil || len(doms) != 0 {
		t.Fatalf("domains after terminate: %v %v", doms, err)
	}
	if left, _ := filepath.Glob(filepath.Join(lv.PoolDir, domainName(f.ID)+"*")); len(left) != 0 {
		t.Fatalf("the fleet's volumes are still there: %v", left)
	}
	if got, err := vmimage.FileDigest(base); err != nil || got != img.Artifacts[vmimage.ArtifactDiskDigest] {
		t.Fatalf("the image's disk in the pool: %s %v, want %s", got, err, img.Artifacts[vmimage.ArtifactDiskDigest])
	}
	if _, err := d.Describe(ctx, f.ID); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("describe after terminate: %v, want NotFound", err)
	}
}

// TestANewDriverAdoptsRunningDomains: a worker that restarts (a new driver,
// a new connection) and retries the provision gets the same domain, not a
// second one; a domain that powered off is replaced on the next retry.
func TestANewDriverAdoptsRunningDomains(t *testing.T) {
	lv := startDaemon(t)
	home := newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req := contract.ProvisionRequest{Token: "adopt", Service: "web", Environment: "test", ImageID: vmImages["v2"].ID, Size: 1}
	d1 := openDriver(t, lv, home)
	f1, err := d1.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	d1.Close() // the worker is gone
	d2 := openDriver(t, lv, home)
	f2, err := d2.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if f1.ID != f2.ID || f1.Instances[0].Address != f2.Instances[0].Address {
		t.Fatalf("the retry made another domain: %+v, then %+v", f1.Instances, f2.Instances)
	}
	if doms, _, err := d2.hosts[0].conn.ConnectListAllDomains(1, 0); err != nil || len(doms) != 1 {
		t.Fatalf("domains after the retry: %v %v, want the one", doms, err)
	}
	if err := vmimagetest.WaitHealthy(ctx, d2, f2.ID); err != nil {
		t.Fatal(err)
	}
	// The domain dies (as a guest that powers off): Describe says so, and a
	// retry replaces it.
	dom, err := d2.hosts[0].conn.DomainLookupByName(domainName(f2.Instances[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.hosts[0].conn.DomainDestroyFlags(dom, 0); err != nil {
		t.Fatal(err)
	}
	got, err := d2.Describe(ctx, f2.ID)
	if err != nil || got.Instances[0].State != contract.InstanceExited || got.Instances[0].Exit != "destroyed" ||
		!strings.Contains(strings.Join(got.Instances[0].LogTail, "\n"), "imago-init") {
		t.Fatalf("describe after the domain died: %+v %v, want exited (destroyed) with its console's tail", got.Instances, err)
	}
	if _, err := d2.Provision(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := vmimagetest.WaitHealthy(ctx, d2, f2.ID); err != nil {
		t.Fatal(err)
	}
	if err := d2.Terminate(ctx, f2.ID); err != nil {
		t.Fatal(err)
	}
}

// conformanceHarness runs the provider conformance suite on the libvirt
// driver: a private libvirtd per test, real domains, a real router process
// per route key.
type conformanceHarness struct {
	vmimagetest.Conformance
	t    *testing.T
	lv   *libvirtdtest.Daemon
	home string
}

func (h *conformanceHarness) MakeDriver(ctx context.Context) (provider.Driver, error) {
	return Open(ctx, Config{URI: h.lv.URI(), PoolDir: h.lv.PoolDir, Accel: vmimage.AccelTCG, MemoryMB: 128,
		Local: local.Config{Home: h.home, Images: testCatalog}})
}

// LeakProvision makes the provision stop after its first domain started, as
// a worker killed then would.
func (h *conformanceHarness) LeakProvision(ctx context.Context, d provider.Driver, req contract.ProvisionRequest) error {
	ld := d.(*Driver)
	ld.afterStart = func(string) error { return errCrash }
	defer func() { ld.afterStart = nil }()
	_, err := ld.Provision(ctx, req)
	return err
}

var errCrash = errors.New("the worker was killed here (test)")

// TestAWorkerKilledMidProvisionIsAdopted: a provision stops after the first
// of two domains started (the worker was killed); a new driver's retry keeps
// that domain (same address, no second one) and starts the other.
func TestAWorkerKilledMidProvisionIsAdopted(t *testing.T) {
	lv := startDaemon(t)
	home := newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req := contract.ProvisionRequest{Token: "crash", Service: "web", Environment: "test", ImageID: vmImages["v1"].ID, Size: 2}
	d1 := openDriver(t, lv, home)
	d1.afterStart = func(string) error { return errCrash }
	if _, err := d1.Provision(ctx, req); !errors.Is(err, errCrash) {
		t.Fatalf("provision: %v, want the crash", err)
	}
	d1.Close()
	d2 := openDriver(t, lv, home)
	left, err := d2.Describe(ctx, local.FleetID(req.Token))
	if err != nil || len(left.Instances) != 1 {
		t.Fatalf("after the crash: %+v %v, want the one domain started", left, err)
	}
	f, err := d2.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Instances) != 2 || f.Instances[0].ID != left.Instances[0].ID || f.Instances[0].Address != left.Instances[0].Address {
		t.Fatalf("the retry: %+v, want %s kept and a second instance", f.Instances, left.Instances[0].ID)
	}
	if doms, _, err := d2.hosts[0].conn.ConnectListAllDomains(1, 0); err != nil || len(doms) != 2 {
		t.Fatalf("domains after the retry: %v %v, want 2", doms, err)
	}
	if err := vmimagetest.WaitHealthy(ctx, d2, f.ID); err != nil {
		t.Fatal(err)
	}
	if err := d2.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
		return &conformanceHarness{Conformance: vmimagetest.Conformance{VMImages: vmImages}, t: t, lv: startDaemon(t), home: newHome(t)}, nil
	})
}

// TestURL opens libvirt drivers by URL: parameters configure them, bad ones
// are named.
func TestURL(t *testing.T) {
	ctx := context.Background()
	lv := startDaemon(t)
	home := newHome(t)
	p, err := provider.Open(ctx, lv.ProviderURL("accel=tcg&memory=96&pool=imagotest"), provider.OpenEnv{Home: home, Images: testCatalog})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d := p.Driver().(*Driver)
	if p.Name() != "libvirt" || d.Accel() != "tcg" || d.mem != 96 || d.hosts[0].pool.Name != "imagotest" || d.hosts[0].poolDir != lv.PoolDir || d.Home() != home {
		t.Fatalf("opened %s: accel %s, memory %d, pool %s at %s, home %s", p.Name(), d.Accel(), d.mem, d.hosts[0].pool.Name, d.hosts[0].poolDir, d.Home())
	}
	if active, err := d.hosts[0].conn.StoragePoolIsActive(d.hosts[0].pool); err != nil || active != 1 {
		t.Fatalf("pool active: %d %v", active, err)
	}
	for url, want := range map[string]string{
		"libvirt:///system?accel=fast":      `accel: "fast": want auto, kvm or tcg`,
		"libvirt:///system?memory=12":       `memory: "12": want megabytes, 64 to 65536`,
		"libvirt:///system?pooldir=rel/dir": `pooldir: "rel/dir": want an absolute directory path`,
		"libvirt:///elsewhere":              `path: "/elsewhere": want /system or /session`,
		"libvirt://host/system":             "libvirt+ssh://host/system",
		"libvirt+ssh:///system":             "libvirt+ssh:// needs a host",
		"libvirt+ssh://h/system":            "address: required with libvirt+ssh",
		"libvirt:///system?address=::1":     `address: "::1": want an IPv4 address`,
		// The ssh transport dials (nothing listens on port 1: sshd is not installed here).
		"libvirt+ssh://root@127.0.0.1:1/system?address=127.0.0.1&known_hosts_verify=ignore&sshauth=privkey&keyfile=/nonexistent": "127.0.0.1:1",
		"libvirt:///system?mem=1":                     "mem",
		"libvirt:///session?socket=/nonexistent/sock": "/nonexistent/sock",
		// Several hosts: one address per ssh host, each host connected.
		"libvirt+ssh://h/system?host=h2&address=10.0.0.1":                        "address: 1 addresses for 2 hosts",
		"libvirt:///session?socket=/a,/b,/c&address=127.0.0.1,127.0.0.2":         "address: 2 addresses for 3 hosts",
		"libvirt+ssh://h/system?host=h2/system&address=10.0.0.1,10.0.0.2":        `host: "h2/system": want user@host`,
		lv.ProviderURL("accel=tcg&pool=imagotest") + "&socket=/nonexistent/sock": "host qemu:///session?socket=/nonexistent/sock",
	} {
		_, err := provider.Open(ctx, url, provider.OpenEnv{Home: home})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", url, err, want)
		}
		t.Logf("%s: %v", url, err)
	}
}

// TestBadEnvStartsNothing: env names the provider owns, an entrypoint
// variable the env lacks and an image that is no VM image are refused
// (InvalidArgument) before any volume or domain is made.
func TestBadEnvStartsNothing(t *testing.T) {
	lv := startDaemon(t)
	d := openDriver(t, lv, newHome(t))
	ctx := context.Background()
	req := contract.ProvisionRequest{Token: "bad", Service: "web", Environment: "test", ImageID: vmImages["v1"].ID, Size: 1,
		Env: map[string]contract.EnvVar{"PORT": {Value: "1"}}}
	if _, err := d.Provision(ctx, req); provider.ErrorCode(err) != provider.InvalidArgument || !strings.Contains(err.Error(), "env.PORT") {
		t.Fatalf("env PORT: %v, want InvalidArgument naming env.PORT", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain, err := testCatalog.Import(ctx, dir, "web", []string{"./run.sh"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Env, req.ImageID = nil, plain.ID
	if _, err := d.Provision(ctx, req); provider.ErrorCode(err) != provider.InvalidArgument || !strings.Contains(err.Error(), "format: vm") {
		t.Fatalf("a plain image: %v, want InvalidArgument naming format: vm", err)
	}
	if doms, _, err := d.hosts[0].conn.ConnectListAllDomains(1, 0); err != nil || len(doms) != 0 {
		t.Fatalf("domains: %v %v, want none", doms, err)
	}
	if fleets, err := d.ListFleets(ctx, provider.Filter{}); err != nil || len(fleets) != 0 {
		t.Fatalf("fleets: %v %v, want none", fleets, err)
	}
}
