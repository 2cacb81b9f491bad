package libvirt

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/vmimage"
	"github.com/imago/imago/internal/vmimage/vmimagetest"
)

// TestAFleetSpreadsOverTwoHosts: a driver over two real libvirtds puts a
// fleet of two on both (one each, the record naming its host, the image's
// disk uploaded once to each pool); the instances serve; a new driver opened
// by a two-socket URL adopts them (Describe lists both, a retried Provision
// starts nothing); Resize shrinks and grows across the hosts; Terminate
// removes them from both hosts; and once a host is
// down, Describe fails naming it instead of leaving its instances out.
func TestAFleetSpreadsOverTwoHosts(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	home := newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d1, err := Open(ctx, Config{Hosts: []Host{{URI: a.URI(), PoolDir: a.PoolDir}, {URI: b.URI(), PoolDir: b.PoolDir}},
		Accel: vmimage.AccelTCG, MemoryMB: 128, Local: local.Config{Home: home, Images: testCatalog}})
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Close()
	img := vmImages["v1"]
	req := contract.ProvisionRequest{Token: "spread", Service: "web", Environment: "test", ImageID: img.ID, Size: 2}
	start := time.Now()
	f, err := d1.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := vmimagetest.WaitHealthy(ctx, d1, f.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("provision of 2 on 2 hosts to healthy: %s", time.Since(start).Round(time.Millisecond))
	doms, err := d1.fleetDomains(f.ID)
	if err != nil || len(doms) != 2 || doms[0].h == doms[1].h {
		t.Fatalf("the fleet's domains: %+v %v, want one on each host", doms, err)
	}
	for _, dm := range doms {
		if dm.rec.Host != dm.h.name {
			t.Fatalf("%s is on %s, its record says %q", dm.rec.Instance, dm.h.name, dm.rec.Host)
		}
	}
	for _, lv := range []string{a.PoolDir, b.PoolDir} {
		base := filepath.Join(lv, volPrefix+"base-"+shortDigest(img.Artifacts[vmimage.ArtifactDiskDigest])+".qcow2")
		if _, err := os.Stat(base); err != nil {
			t.Fatalf("the image's disk in the pool: %v", err)
		}
	}
	d1.Close() // the worker is gone

	// pooldir is unused here: both daemons have the pool already.
	p, err := provider.Open(ctx, "libvirt:///session?accel=tcg&memory=128&pooldir=/unused&socket="+
		url.QueryEscape(a.Socket+","+b.Socket), provider.OpenEnv{Home: home, Images: testCatalog})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d2 := p.Driver().(*Driver)
	if len(d2.hosts) != 2 {
		t.Fatalf("the URL opened %d hosts, want 2", len(d2.hosts))
	}
	got, err := d2.Describe(ctx, f.ID)
	if err != nil || len(got.Instances) != 2 || got.Instances[0].Address != f.Instances[0].Address || got.Instances[1].Address != f.Instances[1].Address {
		t.Fatalf("describe by a new driver: %+v %v, want %+v", got.Instances, err, f.Instances)
	}
	again, err := d2.Provision(ctx, req)
	if err != nil || len(again.Instances) != 2 || again.Instances[1].Address != f.Instances[1].Address {
		t.Fatalf("the retry: %+v %v, want the same two instances", again.Instances, err)
	}
	for _, h := range d2.hosts {
		if n, _, err := h.conn.ConnectListAllDomains(1, 0); err != nil || len(n) != 1 {
			t.Fatalf("domains on %s after the retry: %v %v, want 1", h.name, n, err)
		}
	}
	// Resize: shrinking removes the second host's instance; growing puts
	// the new one on the host with fewer of the fleet's, the second again.
	if got, err := d2.Resize(ctx, f.ID, 1); err != nil || len(got.Instances) != 1 {
		t.Fatalf("resize to 1: %+v %v", got, err)
	}
	second := d2.hosts[1]
	if doms[1].h.name == d2.hosts[0].name {
		second = d2.hosts[0]
	}
	if n, _, err := second.conn.ConnectListAllDomains(1, 0); err != nil || len(n) != 0 {
		t.Fatalf("domains on %s after resize to 1: %v %v, want none", second.name, n, err)
	}
	if got, err := d2.Resize(ctx, f.ID, 2); err != nil || len(got.Instances) != 2 {
		t.Fatalf("resize to 2: %+v %v", got, err)
	}
	if n, _, err := second.conn.ConnectListAllDomains(1, 0); err != nil || len(n) != 1 {
		t.Fatalf("domains on %s after resize to 2: %v %v, want 1", second.name, n, err)
	}
	if err := vmimagetest.WaitHealthy(ctx, d2, f.ID); err != nil {
		t.Fatal(err)
	}
	if err := d2.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	for _, h := range d2.hosts {
		if n, _, err := h.conn.ConnectListAllDomains(1, 0); err != nil || len(n) != 0 {
			t.Fatalf("domains on %s after terminate: %v %v, want none", h.name, n, err)
		}
	}
	if _, err := d2.Describe(ctx, f.ID); provider.ErrorCode(err) != provider.NotFound {
		t.Fatalf("describe after terminate: %v, want NotFound", err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Describe(ctx, f.ID); err == nil || !strings.Contains(err.Error(), "libvirt host qemu:///session?socket="+b.Socket+":") {
		t.Fatalf("describe with a host down: %v, want an error naming %s", err, b.Socket)
	}
}
