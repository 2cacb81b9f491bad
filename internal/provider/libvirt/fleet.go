package libvirt

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/secretref"
	"github.com/imago/imago/internal/vmimage"
)

// metaNS is the XML namespace of the driver's domain <metadata>.
const metaNS = "https://imago.dev/xmlns/libvirt/1"

// record is what a domain's metadata says: its fleet and itself. The record
// of a fleet's lowest-numbered domain is the fleet's (Resize writes it first).
type record struct {
	Fleet       contract.Fleet             `json:"fleet"` // without instances
	Size        int                        `json:"size"`
	RequestSize int                        `json:"requestSize"`
	Env         map[string]contract.EnvVar `json:"env,omitempty"` // secrets as references
	Instance    string                     `json:"instance"`
	Host        string                     `json:"host"` // the libvirt host the domain is on (its URI, redacted)
	Addr        string                     `json:"addr"` // the host address the hostfwd listens on
	Port        int                        `json:"port"`
}

type metaXML struct {
	XMLName xml.Name `xml:"instance"`
	JSON    string   `xml:",chardata"`
}

// domain is a domain of the driver with its record and state.
type domain struct {
	h     *host
	dom   golibvirt.Domain
	rec   record
	n     int // instance number
	state contract.Instance
}

func domainName(instanceID string) string { return volPrefix + instanceID }

// domains returns the driver's domains on every host whose name starts with
// volPrefix+prefix, by fleet ID then instance number. A host that does not
// answer is an error naming it: its instances are not left out.
func (d *Driver) domains(prefix string) ([]domain, error) {
	var out []domain
	for _, h := range d.hosts {
		doms, err := d.hostDomains(h, prefix)
		if err != nil {
			return nil, h.hostErr(err)
		}
		out = append(out, doms...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].rec.Fleet.ID != out[j].rec.Fleet.ID {
			return out[i].rec.Fleet.ID < out[j].rec.Fleet.ID
		}
		return out[i].n < out[j].n
	})
	return out, nil
}

// hostDomains returns the domains on h whose name starts with
// volPrefix+prefix.
func (d *Driver) hostDomains(h *host, prefix string) ([]domain, error) {
	all, _, err := h.conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	var out []domain
	for _, dom := range all {
		if !strings.HasPrefix(dom.Name, volPrefix+prefix) {
			continue
		}
		meta, err := h.conn.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{metaNS}, golibvirt.DomainAffectConfig)
		var le golibvirt.Error
		if err != nil && !errors.As(err, &le) {
			return nil, fmt.Errorf("domain %s: %w", dom.Name, err) // the connection, not the domain
		}
		if err != nil {
			continue // undefined meanwhile, or not one of ours (no imago metadata)
		}
		var mx metaXML
		var rec record
		if xml.Unmarshal([]byte(meta), &mx) != nil || json.Unmarshal([]byte(mx.JSON), &rec) != nil || domainName(rec.Instance) != dom.Name {
			continue
		}
		n := instanceNumber(rec.Fleet.ID, rec.Instance)
		if n == 0 {
			continue
		}
		dm := domain{h: h, dom: dom, rec: rec, n: n}
		dm.state, err = h.instanceState(dom, rec)
		if isNoSuch(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dm)
	}
	return out, nil
}

// instanceNumber is n of "<fleetID>-<n>", 0 for another form.
func instanceNumber(fleetID, id string) int {
	s, ok := strings.CutPrefix(id, fleetID+"-")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0
	}
	return n
}

// exitTailLines is how many lines of an exited instance's console Describe
// shows.
const exitTailLines = 20

// instanceState is the contract view of a domain: running while QEMU runs
// the guest; stopped when defined and never started (a Provision cut short);
// exited once it powered off or crashed.
func (h *host) instanceState(dom golibvirt.Domain, rec record) (contract.Instance, error) {
	in := contract.Instance{ID: rec.Instance, Address: net.JoinHostPort(rec.Addr, strconv.Itoa(rec.Port)),
		Log: filepath.Join(h.poolDir, domainName(rec.Instance)+".log")}
	st, reason, err := h.conn.DomainGetState(dom, 0)
	if err != nil {
		return in, err
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked, golibvirt.DomainPaused, golibvirt.DomainPmsuspended:
		in.State = contract.InstanceRunning
	case golibvirt.DomainShutoff:
		if golibvirt.DomainShutoffReason(reason) == golibvirt.DomainShutoffUnknown {
			in.State = contract.InstanceStopped
		} else {
			in.State, in.Exit = contract.InstanceExited, shutoffReason(golibvirt.DomainShutoffReason(reason))
		}
	case golibvirt.DomainCrashed:
		in.State, in.Exit = contract.InstanceExited, "crashed"
	default: // shutting down, no state
		in.State = contract.InstanceStopped
	}
	if in.State != contract.InstanceExited {
		in.Log = ""
	} else if tail := local.LogTail(in.Log, 4096); len(tail) > 0 {
		// The console log is readable here when libvirtd runs on the worker's host.
		in.LogTail = tail[max(0, len(tail)-exitTailLines):]
	}
	return in, nil
}

func shutoffReason(r golibvirt.DomainShutoffReason) string {
	switch r {
	case golibvirt.DomainShutoffShutdown:
		return "powered off"
	case golibvirt.DomainShutoffDestroyed:
		return "destroyed"
	case golibvirt.DomainShutoffCrashed:
		return "crashed"
	case golibvirt.DomainShutoffFailed:
		return "failed to start"
	}
	return fmt.Sprintf("shut off (reason %d)", r)
}

// fleetOf is the fleet of doms (one fleet's, sorted): the first record's
// fields, every domain an instance.
func fleetOf(doms []domain) contract.Fleet {
	f := doms[0].rec.Fleet
	f.Instances = nil
	for _, dm := range doms {
		f.Instances = append(f.Instances, dm.state)
	}
	return f
}

func (d *Driver) fleetDomains(fleetID string) ([]domain, error) {
	return d.domains(fleetID + "-")
}

// Describe returns the fleet with the live state of its domains.
func (d *Driver) Describe(ctx context.Context, fleetID string) (contract.Fleet, error) {
	if provider.CheckName("fleet", fleetID) != nil {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %q", fleetID)
	}
	doms, err := d.fleetDomains(fleetID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if len(doms) == 0 {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %s", fleetID)
	}
	return fleetOf(doms), nil
}

// ListFleets returns the fleets whose domains are on the host.
func (d *Driver) ListFleets(ctx context.Context, f provider.Filter) ([]contract.Fleet, error) {
	doms, err := d.domains("fl-")
	if err != nil {
		return nil, err
	}
	var out []contract.Fleet
	for i := 0; i < len(doms); {
		j := i
		for j < len(doms) && doms[j].rec.Fleet.ID == doms[i].rec.Fleet.ID {
			j++
		}
		fl := fleetOf(doms[i:j])
		i = j
		if (f.Service == "" || fl.Service == f.Service) && (f.Environment == "" || fl.Environment == f.Environment) {
			out = append(out, fl)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Provision defines and starts the fleet's domains, or returns the fleet
// already made for req.Token, replacing domains that are not running.
func (d *Driver) Provision(ctx context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
	if req.Token == "" {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: a request token is required")
	}
	if req.Size < 1 {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: fleet size must be at least 1, got %d", req.Size)
	}
	for what, v := range map[string]string{"service": req.Service, "environment": req.Environment, "image ID": req.ImageID} {
		if err := provider.CheckName(what, v); err != nil {
			return contract.Fleet{}, err
		}
	}
	id := local.FleetID(req.Token)
	unlock, err := d.lockFleet(ctx, id)
	if err != nil {
		return contract.Fleet{}, err
	}
	defer unlock()
	doms, err := d.fleetDomains(id)
	if err != nil {
		return contract.Fleet{}, err
	}
	rec := record{Fleet: contract.Fleet{ID: id, Service: req.Service, Environment: req.Environment, ImageID: req.ImageID,
		Token: req.Token, Labels: req.Labels, Created: time.Now().UTC()}, Size: req.Size, RequestSize: req.Size, Env: req.Env}
	if len(doms) > 0 {
		have := doms[0].rec
		f := have.Fleet
		if f.Token != req.Token || f.Service != req.Service || f.Environment != req.Environment || f.ImageID != req.ImageID ||
			(req.Size != have.RequestSize && req.Size != have.Size) || !maps.Equal(have.Env, req.Env) {
			size := fmt.Sprintf("%d instances", have.RequestSize)
			if have.Size != have.RequestSize {
				size += fmt.Sprintf(", resized to %d", have.Size)
			}
			return contract.Fleet{}, provider.Errorf(provider.InvalidArgument,
				"provision: token %q already made fleet %s (%s/%s, image %s, %s); a retry must repeat the same request",
				req.Token, f.ID, f.Environment, f.Service, f.ImageID, size)
		}
		rec = have
	}
	return d.reconcile(ctx, rec, doms)
}

// Resize grows or shrinks the fleet in place: the fleet's record (its
// lowest-numbered domain's first) takes the new size, then surplus domains
// (the highest-numbered) are removed and missing ones started.
func (d *Driver) Resize(ctx context.Context, fleetID string, size int) (contract.Fleet, error) {
	if size < 1 {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "resize: fleet size must be at least 1, got %d", size)
	}
	if provider.CheckName("fleet", fleetID) != nil {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %q", fleetID)
	}
	unlock, err := d.lockFleet(ctx, fleetID)
	if err != nil {
		return contract.Fleet{}, err
	}
	defer unlock()
	doms, err := d.fleetDomains(fleetID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if len(doms) == 0 {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %s", fleetID)
	}
	rec := doms[0].rec
	rec.Size = size
	for _, dm := range doms {
		if dm.n > size || dm.rec.Size == size {
			continue
		}
		r := dm.rec
		r.Size = size
		if err := dm.h.setRecord(dm.dom, r); err != nil {
			return contract.Fleet{}, fmt.Errorf("resize fleet %s: %w", fleetID, dm.h.hostErr(err))
		}
	}
	return d.reconcile(ctx, rec, doms)
}

// reconcile makes instances 1..rec.Size run, each a running domain: it keeps
// running ones, replaces the others and removes those numbered above the
// size. The caller holds the fleet lock.
func (d *Driver) reconcile(ctx context.Context, rec record, doms []domain) (contract.Fleet, error) {
	have := map[int]domain{}
	counts := map[*host]int{} // the fleet's running instances by host
	for _, dm := range doms {
		if dm.n > rec.Size {
			if err := dm.h.removeInstance(dm.rec.Instance); err != nil {
				return contract.Fleet{}, dm.h.hostErr(err)
			}
			continue
		}
		have[dm.n] = dm
		if dm.state.State == contract.InstanceRunning {
			counts[dm.h]++
		}
	}
	var l *launch
	for n := 1; n <= rec.Size; n++ {
		if dm, ok := have[n]; ok && dm.state.State == contract.InstanceRunning {
			continue
		}
		if l == nil {
			var err error
			if l, err = d.prepare(ctx, rec.Fleet.ImageID, rec.Env); err != nil {
				return contract.Fleet{}, err
			}
		}
		in := fmt.Sprintf("%s-%d", rec.Fleet.ID, n)
		if dm, ok := have[n]; ok {
			if err := dm.h.removeInstance(in); err != nil {
				return contract.Fleet{}, dm.h.hostErr(err)
			}
		}
		r := rec
		r.Instance = in
		h := d.pickHost(counts)
		if err := d.startInstance(ctx, h, r, l); err != nil {
			return contract.Fleet{}, h.hostErr(err)
		}
		counts[h]++
		if d.afterStart != nil {
			if err := d.afterStart(in); err != nil {
				return contract.Fleet{}, err
			}
		}
	}
	doms, err := d.fleetDomains(rec.Fleet.ID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if len(doms) == 0 {
		return contract.Fleet{}, fmt.Errorf("fleet %s: its domains are gone", rec.Fleet.ID)
	}
	return fleetOf(doms), nil
}

// launch is what every instance of a fleet boots: the image's files (local,
// with their digests; put into a host's pool by filesOn) and the resolved
// environment.
type launch struct {
	imageID string
	local   [3]imageFile // disk, kernel, initrd
	size    uint64       // the disk's virtual size
	env     map[string]string
	on      map[*host][3]string // volume paths of local on a host
}

// imageFile is a file of an image on the worker and the pool volume it goes
// to (its name carries the file's digest: storage.go, ensureFile).
type imageFile struct {
	path, volume string
}

// prepare gets the image's record, checks it is a VM image, puts its disk,
// kernel and initrd into the pool and resolves the env's secrets.
func (d *Driver) prepare(ctx context.Context, imageID string, env map[string]contract.EnvVar) (*launch, error) {
	if d.images == nil {
		return nil, provider.Errorf(provider.FailedPrecondition, "libvirt provider: no image source configured")
	}
	img, err := d.images.Get(ctx, imageID)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, &provider.Error{Code: provider.NotFound, Msg: "provision: image " + imageID, Err: err}
	}
	if err != nil {
		return nil, err
	}
	disk, digest := img.Artifacts[vmimage.ArtifactDisk], img.Artifacts[vmimage.ArtifactDiskDigest]
	kernel, initrd := img.Artifacts[vmimage.ArtifactKernel], img.Artifacts[vmimage.ArtifactInitrd]
	if disk == "" || digest == "" || kernel == "" || initrd == "" {
		return nil, provider.Errorf(provider.InvalidArgument,
			"image %s is not a VM image (no %s, %s and %s artifacts): bake it with format: vm", img.ID, vmimage.ArtifactDisk, vmimage.ArtifactKernel, vmimage.ArtifactInitrd)
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if !entrypoint.ValidName(name) || entrypoint.Reserved(name) {
			return nil, provider.Errorf(provider.InvalidArgument, "env.%s: not a name the rollout may set (POSIX names; PORT, HOST and IMAGO_* are the provider's)", name)
		}
	}
	if err := entrypoint.CheckEnv(img.Entrypoint, func(n string) bool { _, ok := env[n]; return ok }); err != nil {
		return nil, provider.Errorf(provider.InvalidArgument, "image %s: %v", img.ID, err)
	}
	l := &launch{env: map[string]string{}}
	for name, v := range env {
		if v.Secret == "" {
			l.env[name] = v.Value
			continue
		}
		val, err := secretref.Resolve(ctx, d.secretClient, v.Secret)
		if err != nil {
			return nil, provider.Errorf(provider.FailedPrecondition, "env.%s: %v", name, err)
		}
		l.env[name] = val
	}
	l.env[entrypoint.Port], l.env[entrypoint.Host] = strconv.Itoa(vmimage.GuestPort), vmimage.GuestHost
	if l.size, err = qcow2Size(disk); err != nil {
		return nil, provider.Errorf(provider.FailedPrecondition, "image %s: its VM disk: %v", img.ID, err)
	}
	got, err := d.localDigest(disk)
	if err == nil && got != digest {
		err = fmt.Errorf("%s is %s, the record says %s: the disk was modified", disk, got, digest)
	}
	if err != nil {
		return nil, provider.Errorf(provider.FailedPrecondition, "image %s: its VM disk: %v", img.ID, err)
	}
	l.imageID, l.on = img.ID, map[*host][3]string{}
	l.local[0] = imageFile{disk, volPrefix + "base-" + shortDigest(digest) + ".qcow2"}
	for i, f := range []struct{ kind, path string }{{"kernel", kernel}, {"initrd", initrd}} {
		sum, err := d.localDigest(f.path)
		if err != nil {
			return nil, provider.Errorf(provider.FailedPrecondition, "image %s: %v", img.ID, err)
		}
		l.local[i+1] = imageFile{f.path, volPrefix + f.kind + "-" + shortDigest(sum)}
	}
	return l, nil
}

// filesOn puts the image's disk, kernel and initrd into h's pool (once per
// host) and returns their paths there.
func (l *launch) filesOn(h *host) ([3]string, error) {
	if p, ok := l.on[h]; ok {
		return p, nil
	}
	var p [3]string
	for i, f := range l.local {
		var err error
		if p[i], err = h.ensureFile(f.volume, f.path); err != nil {
			return p, provider.Errorf(provider.FailedPrecondition, "image %s: %v", l.imageID, h.hostErr(err))
		}
	}
	l.on[h] = p
	return p, nil
}

// localDigest is the digest of a local file, computed once per driver.
func (d *Driver) localDigest(path string) (string, error) {
	d.mu.Lock()
	sum, ok := d.digests[path]
	d.mu.Unlock()
	if ok {
		return sum, nil
	}
	sum, err := vmimage.FileDigest(path)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.digests[path] = sum
	d.mu.Unlock()
	return sum, nil
}

// startAttempts bounds how often an instance is started again on another
// port when its domain fails to start (the port was taken meanwhile).
const startAttempts = 3

// startInstance makes the instance's volumes on h, defines its domain there
// and starts it.
func (d *Driver) startInstance(ctx context.Context, h *host, rec record, l *launch) error {
	files, err := l.filesOn(h)
	if err != nil {
		return err
	}
	var last error
	for range startAttempts {
		port, err := d.pickPort()
		if err != nil {
			return err
		}
		rec.Host, rec.Addr, rec.Port = h.name, h.addr, port
		if last = d.tryStart(h, rec, l, files); last == nil {
			return nil
		}
		if err := h.removeInstance(rec.Instance); err != nil {
			return errors.Join(last, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("instance %s: %w", rec.Instance, last)
}

func (d *Driver) tryStart(h *host, rec record, l *launch, files [3]string) error {
	name := domainName(rec.Instance)
	overlay, err := h.overlay(name+".qcow2", files[0], l.size)
	if err != nil {
		return err
	}
	env, err := h.envDisk(name+".env", l.env)
	if err != nil {
		return err
	}
	x, err := d.domainXML(rec, files, overlay, env, filepath.Join(h.poolDir, name+".log"))
	if err != nil {
		return err
	}
	dom, err := h.conn.DomainDefineXMLFlags(x, 0)
	if err != nil {
		return fmt.Errorf("define domain %s: %w", name, err)
	}
	if err := h.conn.DomainCreate(dom); err != nil {
		return fmt.Errorf("start domain %s: %w", name, err)
	}
	return nil
}

// nicSlot is the PCI slot of the guest's NIC on bus pci.0: the NIC is no
// libvirt device (<qemu:commandline>), so libvirt must not give its slot to
// another.
const nicSlot = "0x1e"

// domainXML is the instance's domain: direct kernel boot of the image's
// kernel and initrd, the overlay as vda, the environment as vdb (read-only),
// the console into the log file, and QEMU's user network with a hostfwd from
// rec.Addr:rec.Port to the guest's port. files are the image's disk, kernel
// and initrd on the host.
func (d *Driver) domainXML(rec record, files [3]string, overlay, env, log string) (string, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	var meta strings.Builder
	meta.WriteString(`<imago:instance xmlns:imago="` + metaNS + `">`)
	if err := xml.EscapeText(&meta, data); err != nil {
		return "", err
	}
	meta.WriteString(`</imago:instance>`)
	typ, cpu := "qemu", "maximum"
	if d.accel == vmimage.AccelKVM {
		typ, cpu = "kvm", "host-passthrough"
	}
	name := domainName(rec.Instance)
	disk := func(dev, path, format string, ro bool) libvirtxml.DomainDisk {
		dd := libvirtxml.DomainDisk{Device: "disk", Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
			Target: &libvirtxml.DomainDiskTarget{Dev: dev, Bus: "virtio"}}
		if ro {
			dd.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		}
		return dd
	}
	dom := &libvirtxml.Domain{
		Type: typ, Name: name,
		Metadata: &libvirtxml.DomainMetadata{XML: meta.String()},
		Memory:   &libvirtxml.DomainMemory{Value: uint(d.mem), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel: files[1], Initrd: files[2], Cmdline: vmimage.KernelArgs},
		CPU:        &libvirtxml.DomainCPU{Mode: cpu},
		OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{disk("vda", overlay, "qcow2", false), disk("vdb", env, "raw", true)},
			Serials: []libvirtxml.DomainSerial{{Source: &libvirtxml.DomainChardevSource{
				File: &libvirtxml.DomainChardevSourceFile{Path: log}}}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
		QEMUCommandline: &libvirtxml.DomainQEMUCommandline{Args: []libvirtxml.DomainQEMUCommandlineArg{
			{Value: "-netdev"}, {Value: vmimage.UserNetdev("imagonet", rec.Addr, rec.Port)},
			{Value: "-device"}, {Value: "virtio-net-pci,netdev=imagonet,bus=pci.0,addr=" + nicSlot + ",romfile="},
		}},
	}
	return dom.Marshal()
}

// setRecord rewrites the domain's metadata (its persistent definition).
func (h *host) setRecord(dom golibvirt.Domain, rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	x, err := xml.Marshal(metaXML{JSON: string(data)})
	if err != nil {
		return err
	}
	return h.conn.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{string(x)},
		golibvirt.OptString{"imago"}, golibvirt.OptString{metaNS}, golibvirt.DomainAffectConfig)
}

// removeInstance stops the instance's domain (SIGTERM to QEMU, which quits
// cleanly; SIGKILL after libvirt's grace), undefines it and deletes its
// volumes. A domain or volume already gone is fine.
func (h *host) removeInstance(instanceID string) error {
	name := domainName(instanceID)
	dom, err := h.conn.DomainLookupByName(name)
	switch {
	case isNoSuch(err):
	case err != nil:
		return err
	default:
		if err := h.conn.DomainDestroyFlags(dom, golibvirt.DomainDestroyGraceful); err != nil && !isNoSuch(err) && !isNotRunning(err) {
			if err := h.conn.DomainDestroyFlags(dom, 0); err != nil && !isNoSuch(err) && !isNotRunning(err) {
				return fmt.Errorf("stop domain %s: %w", name, err)
			}
		}
		if err := h.conn.DomainUndefineFlags(dom, 0); err != nil && !isNoSuch(err) {
			return fmt.Errorf("undefine domain %s: %w", name, err)
		}
	}
	var errs []error
	for _, v := range []string{name + ".qcow2", name + ".env", name + ".log"} {
		vol, err := h.conn.StorageVolLookupByName(h.pool, v)
		if err == nil {
			err = h.conn.StorageVolDelete(vol, 0)
		}
		if err != nil && !isNoSuch(err) {
			errs = append(errs, fmt.Errorf("delete volume %s: %w", v, err))
		}
	}
	// The console log is a volume only once the pool was refreshed.
	if err := os.Remove(filepath.Join(h.poolDir, name+".log")); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrPermission) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isNotRunning reports whether err is libvirt's "domain is not running".
func isNotRunning(err error) bool {
	var le golibvirt.Error
	return errors.As(err, &le) && le.Code == uint32(golibvirt.ErrOperationInvalid)
}

// Terminate stops and undefines every domain of the fleet, on every host,
// and deletes its volumes. A fleet already gone is fine; a host that does
// not answer is an error naming it.
func (d *Driver) Terminate(ctx context.Context, fleetID string) error {
	if provider.CheckName("fleet", fleetID) != nil {
		return nil
	}
	unlock, err := d.lockFleet(ctx, fleetID)
	if err != nil {
		return err
	}
	defer unlock()
	doms, err := d.fleetDomains(fleetID)
	if err != nil {
		return err
	}
	var errs []error
	for _, dm := range doms {
		errs = append(errs, dm.h.hostErr(dm.h.removeInstance(dm.rec.Instance)))
	}
	for _, h := range d.hosts {
		errs = append(errs, h.hostErr(h.deleteVolumes(domainName(fleetID+"-"))))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("terminate fleet %s: %w", fleetID, err)
	}
	return nil
}
