package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/drivertest"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/vmimage"
	"github.com/imago/imago/internal/vmimage/vmimagetest"
)

// Real VMs: QEMU under TCG (accel=tcg: this host's KVM guests hang), Debian's
// cloud kernel, VM images made by vmimage.Build from examples/hello.
var (
	testCatalog *catalog.Catalog
	vmImages    map[string]contract.Image // version -> VM image
)

func TestMain(m *testing.M) {
	vmimagetest.Main(m, "qemu", func(c *catalog.Catalog, imgs map[string]contract.Image) { testCatalog, vmImages = c, imgs })
}

func openTestDriver(t *testing.T, home string) *Driver {
	t.Helper()
	d, err := Open(context.Background(), Config{Local: local.Config{Home: home, Images: testCatalog}, Accel: vmimage.AccelTCG, MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, home)
		}
		if err := local.CleanupHome(home); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return home
}

func dumpLogs(t *testing.T, home string) {
	filepath.WalkDir(filepath.Join(home, "logs"), func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			data, _ := os.ReadFile(p)
			if len(data) > 2000 {
				data = data[len(data)-2000:]
			}
			t.Logf("--- %s:\n%s", p, data)
		}
		return nil
	})
}

// TestVMBootsServesAndStops provisions one VM from a VM image, waits for the
// program inside to answer through the hostfwd, checks the console log and the
// overlay (the image's disk is untouched), then terminates it.
func TestVMBootsServesAndStops(t *testing.T) {
	home := newHome(t)
	d := openTestDriver(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img := vmImages["v1"]
	before, err := vmimage.FileDigest(img.Artifacts[vmimage.ArtifactDisk])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f, err := d.Provision(ctx, contract.ProvisionRequest{Token: "boot", Service: "web", Environment: "test", ImageID: img.ID, Size: 1,
		Env: map[string]contract.EnvVar{"GREETING": {Value: "it's a VM"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := vmimagetest.WaitHealthy(ctx, d, f.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("boot to healthy: %s (accel %s)", time.Since(start).Round(time.Millisecond), d.Accel())
	in := f.Instances[0]
	if code, body, err := vmimagetest.HTTPGet("http://" + in.Address + "/"); err != nil || code != 200 || !strings.Contains(body, "v1") {
		t.Fatalf("GET / = %d %q %v, want 200 from v1", code, body, err)
	}
	log, _ := os.ReadFile(filepath.Join(home, "logs", f.ID, in.ID+".log"))
	if !strings.Contains(string(log), "imago-init: eth0 up") {
		t.Fatalf("console log lacks the init's line:\n%s", log)
	}
	if fi, err := os.Stat(filepath.Join(home, "vms", f.ID, in.ID+".env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("environment disk: %v %v, want mode 0600", fi, err)
	}
	if err := d.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if ps, err := d.Processes(); err != nil || len(ps) != 0 {
		t.Fatalf("processes after terminate: %+v %v", ps, err)
	}
	if _, err := os.Stat(filepath.Join(home, "vms", f.ID)); !os.IsNotExist(err) {
		t.Fatalf("the fleet's disks are still there: %v", err)
	}
	after, _ := vmimage.FileDigest(img.Artifacts[vmimage.ArtifactDisk])
	if after != before {
		t.Fatalf("the image's disk changed: %s -> %s", before, after)
	}
}

// TestANewDriverAdoptsRunningVMs: a worker that restarts (a new driver on the
// same Home) and retries the provision gets the same VM, not a second one.
func TestANewDriverAdoptsRunningVMs(t *testing.T) {
	home := newHome(t)
	ctx := context.Background()
	req := contract.ProvisionRequest{Token: "adopt", Service: "web", Environment: "test", ImageID: vmImages["v2"].ID, Size: 1}
	f1, err := openTestDriver(t, home).Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	d2 := openTestDriver(t, home)
	f2, err := d2.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if f1.ID != f2.ID || f1.Instances[0].PID != f2.Instances[0].PID || f1.Instances[0].Address != f2.Instances[0].Address {
		t.Fatalf("the retry made another VM: %+v, then %+v", f1.Instances, f2.Instances)
	}
	if ps, err := d2.Processes(); err != nil || len(ps) != 1 || ps[0].InstanceID != f1.Instances[0].ID {
		t.Fatalf("processes after the retry: %+v %v, want the one VM", ps, err)
	}
	if err := d2.Terminate(ctx, f2.ID); err != nil {
		t.Fatal(err)
	}
}

// TestProvisionRefusesAnImageWithoutADisk: a plain local image is no VM image.
func TestProvisionRefusesAnImageWithoutADisk(t *testing.T) {
	home := newHome(t)
	d := openTestDriver(t, home)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := testCatalog.Import(context.Background(), dir, "web", []string{"./run.sh"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Provision(context.Background(), contract.ProvisionRequest{Token: "plain", Service: "web", Environment: "test", ImageID: img.ID, Size: 1})
	if provider.ErrorCode(err) != provider.InvalidArgument || !strings.Contains(fmt.Sprint(err), "format: vm") {
		t.Fatalf("provision of a plain image: %v, want InvalidArgument naming format: vm", err)
	}
}

// conformanceHarness runs the provider conformance suite on the qemu driver:
// real VMs, a real router process per route key, a fresh Home per test.
type conformanceHarness struct {
	vmimagetest.Conformance
	t    *testing.T
	home string
}

func (h *conformanceHarness) MakeDriver(ctx context.Context) (provider.Driver, error) {
	return Open(ctx, Config{Local: local.Config{Home: h.home, Images: testCatalog}, Accel: vmimage.AccelTCG, MemoryMB: 128})
}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
		return &conformanceHarness{Conformance: vmimagetest.Conformance{VMImages: vmImages}, t: t, home: newHome(t)}, nil
	})
}

// TestURL opens qemu drivers by URL: parameters configure them, bad ones are
// named.
func TestURL(t *testing.T) {
	ctx := context.Background()
	home := newHome(t)
	p, err := provider.Open(ctx, "qemu://?accel=tcg&memory=96&machine=microvm", provider.OpenEnv{Home: home, Images: testCatalog})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Driver().(*Driver)
	if p.Name() != "qemu" || d.Accel() != "tcg" || d.l.mem != 96 || d.l.machine != vmimage.MachineMicroVM || d.Home() != home {
		t.Fatalf("opened %s: accel %s, memory %d, machine %s, home %s", p.Name(), d.Accel(), d.l.mem, d.l.machine, d.Home())
	}
	for url, want := range map[string]string{
		"qemu://?accel=fast":      `accel: "fast": want auto, kvm or tcg`,
		"qemu://?memory=12":       `memory: "12": want megabytes, 64 to 65536`,
		"qemu://?machine=q35":     `machine: "q35": want pc or microvm`,
		"qemu://host/x":           "has a host or path",
		"qemu://?accel=tcg&mem=1": "mem",
	} {
		if _, err := provider.Open(ctx, url, provider.OpenEnv{Home: home}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", url, err, want)
		}
	}
}
