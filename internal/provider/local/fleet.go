package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/secretref"
)

// stopGrace is how long Terminate and StopRouter wait after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

func sortFleets(fs []contract.Fleet) {
	sort.Slice(fs, func(i, j int) bool {
		if !fs[i].Created.Equal(fs[j].Created) {
			return fs[i].Created.Before(fs[j].Created)
		}
		return fs[i].ID < fs[j].ID
	})
}

// Provision creates the fleet of req.Token, or adopts the one an earlier call
// made: instances still running are kept, instances whose process died are
// restarted, and an instance whose process was started but never recorded (a
// crash in between) is found through /proc and adopted. So a retried Provision
// never doubles a fleet.
//
// After a Resize, the fleet's token stays valid: a retry may repeat the original
// request's size or ask for the resized one, and either way gets (and repairs)
// the fleet at its resized size; Provision never undoes a Resize. It also
// finishes a Resize that was interrupted half way.
func (d *Driver) Provision(ctx context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
	if req.Token == "" {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: a request token is required")
	}
	if req.Size < 1 {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: fleet size must be at least 1, got %d", req.Size)
	}
	if err := checkKey(contract.RouteKey{Service: req.Service, Environment: req.Environment}); err != nil {
		return contract.Fleet{}, err
	}
	if err := provider.CheckName("image ID", req.ImageID); err != nil {
		return contract.Fleet{}, err
	}
	id := FleetID(req.Token)
	unlock, err := lockFile(ctx, d.fleetLock(id))
	if err != nil {
		return contract.Fleet{}, fmt.Errorf("provision fleet %s: %w", id, err)
	}
	defer unlock()

	st, err := d.readState(id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st = &fleetState{
			Fleet: contract.Fleet{
				ID: id, Service: req.Service, Environment: req.Environment, ImageID: req.ImageID,
				Token: req.Token, Labels: req.Labels, Created: time.Now().UTC(),
			},
			StartTimes:  map[string]uint64{},
			Size:        req.Size,
			RequestSize: req.Size,
			Env:         req.Env,
		}
		for n := 1; n <= req.Size; n++ {
			st.Fleet.Instances = append(st.Fleet.Instances, contract.Instance{ID: fmt.Sprintf("%s-%d", id, n), State: contract.InstanceStopped})
		}
	case err != nil:
		return contract.Fleet{}, err
	default:
		f := st.Fleet
		if f.Token != req.Token || f.Service != req.Service || f.Environment != req.Environment || f.ImageID != req.ImageID ||
			(req.Size != st.requestSize() && req.Size != st.desiredSize()) || !maps.Equal(st.Env, req.Env) {
			size := fmt.Sprintf("%d instances", st.requestSize())
			if st.desiredSize() != st.requestSize() {
				size += fmt.Sprintf(", resized to %d", st.desiredSize())
			}
			return contract.Fleet{}, provider.Errorf(provider.InvalidArgument,
				"provision: token %q already made fleet %s (%s/%s, image %s, %s); a retry must repeat the same request",
				req.Token, f.ID, f.Environment, f.Service, f.ImageID, size)
		}
		// Finish a Resize that was interrupted: the desired size wins over the
		// request's (which may be the size before the Resize).
		if err := d.reconcileSize(ctx, st); err != nil {
			return contract.Fleet{}, err
		}
	}

	dir, img, err := d.ensureImage(ctx, req.ImageID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if IsSimImage(img) {
		st.Sim = true
		if err := d.writeState(st); err != nil {
			return contract.Fleet{}, err
		}
		return d.startSim(ctx, st, img)
	}
	l, err := d.prepareLaunch(ctx, dir, img, st.Env)
	if err != nil {
		return contract.Fleet{}, err
	}
	// Record the plan before starting anything.
	if err := d.writeState(st); err != nil {
		return contract.Fleet{}, err
	}
	return d.startInstances(st, l)
}

// startInstances makes every instance of st run: it keeps live ones, adopts an
// unrecorded live process of an instance, and starts the others, recording each
// instance's address before its process starts and its pid right after. The
// caller holds the fleet lock and has written st.
func (d *Driver) startInstances(st *fleetState, l launch) (contract.Fleet, error) {
	id := st.Fleet.ID
	var err error
	var orphans map[string]procEntry // instance ID -> unrecorded live process, scanned once
	for i := range st.Fleet.Instances {
		in := &st.Fleet.Instances[i]
		if in.PID != 0 && alive(in.PID, st.StartTimes[in.ID]) {
			continue
		}
		if orphans == nil {
			if orphans, err = d.fleetProcs(id); err != nil {
				return contract.Fleet{}, err
			}
		}
		if p, ok := orphans[in.ID]; ok {
			in.PID, st.StartTimes[in.ID] = p.pid, p.startTime
			if port := p.env["PORT"]; port != "" {
				in.Address = net.JoinHostPort("127.0.0.1", port)
			}
			if err := d.writeState(st); err != nil {
				return contract.Fleet{}, err
			}
			continue
		}
		port, err := d.pickPort(loopback, in.Address)
		if err != nil {
			return contract.Fleet{}, err
		}
		in.Address, in.PID = net.JoinHostPort(loopback, strconv.Itoa(port)), 0
		delete(st.StartTimes, in.ID)
		if err := d.writeState(st); err != nil { // planned: address, no pid yet
			return contract.Fleet{}, err
		}
		pid, start, err := d.spawnInstance(st.Fleet, *in, port, l)
		if err != nil {
			return contract.Fleet{}, err
		}
		if d.afterSpawn != nil {
			if err := d.afterSpawn(in.ID); err != nil {
				return contract.Fleet{}, err
			}
		}
		in.PID, st.StartTimes[in.ID] = pid, start
		if err := d.writeState(st); err != nil {
			return contract.Fleet{}, err
		}
	}
	return st.live(), nil
}

// fleetProcs returns the live processes started for fleet id, by instance ID,
// preferring the session leader when an instance has several processes.
func (d *Driver) fleetProcs(id string) (map[string]procEntry, error) {
	ents, err := scanProcs(d.home)
	if err != nil {
		return nil, err
	}
	out := map[string]procEntry{}
	for _, e := range ents {
		if e.env[envFleet] != id || e.env[envInstance] == "" {
			continue
		}
		if prev, ok := out[e.env[envInstance]]; ok && prev.pgrp == prev.pid {
			continue
		}
		out[e.env[envInstance]] = e
	}
	return out, nil
}

// ensureImage unpacks the image once per Home and returns its directory and record.
// The archive must match the record's digest, and the record its ID; either
// mismatch means the catalog was changed behind imago's back, and is refused
// (FailedPrecondition) before anything is unpacked.
func (d *Driver) ensureImage(ctx context.Context, id string) (string, contract.Image, error) {
	if d.images == nil {
		return "", contract.Image{}, provider.Errorf(provider.FailedPrecondition, "local provider: no image source configured")
	}
	img, err := d.images.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return "", img, &provider.Error{Code: provider.NotFound, Msg: "provision: image " + id, Err: err}
	}
	if err != nil {
		return "", img, err
	}
	// Checked on every use: the entrypoint run from an unpacked tree comes from the record.
	if img.Archive != "" {
		if derived, ok := catalog.CheckID(img); !ok {
			return "", img, provider.Errorf(provider.FailedPrecondition,
				"image %s record does not match its ID (its digest, service, entrypoint and format make %s): the catalog was modified", id, derived)
		}
	}
	dir := d.imageDir(id)
	if _, err := os.Stat(dir); err == nil {
		return dir, img, nil
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", img, err
	}
	defer unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, img, nil // unpacked while we waited
	}
	r, err := d.images.OpenArchive(ctx, img)
	if err != nil {
		return "", img, err
	}
	defer r.Close()
	err = image.Unpack(r, dir, img.Digest, d.limits)
	var digestErr *image.DigestError
	switch {
	case errors.As(err, &digestErr):
		return "", img, provider.Errorf(provider.FailedPrecondition,
			"image %s archive does not match its digest: the catalog was modified (the record says %s, the archive is %s); restore the archive or revoke the image",
			id, digestErr.Want, digestErr.Got)
	case errors.Is(err, image.ErrRefused):
		return "", img, &provider.Error{Code: provider.FailedPrecondition, Msg: "image " + id, Err: err}
	case err != nil:
		return "", img, fmt.Errorf("image %s: %w", id, err)
	}
	return dir, img, nil
}

// launch is how the instances of a fleet start: the program, the words of
// the entrypoint after it (unexpanded), and the rollout's env with its secrets
// resolved. It lives in memory only: the state file keeps the references.
type launch struct {
	dir, path string
	args      []string // unexpanded: $PORT and $HOST differ per instance
	words     []string // the image's entrypoint as recorded, for the log
	env       map[string]string
	img       contract.Image // for the driver's Launcher
}

// prepareLaunch finds the program of img unpacked in dir (see
// entrypoint.Program), checks that every variable the entrypoint uses is PORT,
// HOST or a key of env, and resolves env's secrets (secretref; https through the
// outbound guard). Every error comes before any instance starts.
func (d *Driver) prepareLaunch(ctx context.Context, dir string, img contract.Image, env map[string]contract.EnvVar) (launch, error) {
	if len(img.Entrypoint) == 0 || img.Entrypoint[0] == "" {
		return launch{}, provider.Errorf(provider.InvalidArgument, "image %s has no entrypoint", img.ID)
	}
	path, err := entrypoint.Program(dir, img.Entrypoint[0])
	if err != nil {
		return launch{}, provider.Errorf(provider.InvalidArgument, "image %s: entrypoint: %v", img.ID, err)
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if !entrypoint.ValidName(name) || entrypoint.Reserved(name) {
			return launch{}, provider.Errorf(provider.InvalidArgument, "env.%s: not a name the rollout may set (POSIX names; PORT, HOST and IMAGO_* are the provider's)", name)
		}
	}
	if err := entrypoint.CheckEnv(img.Entrypoint, func(n string) bool { _, ok := env[n]; return ok }); err != nil {
		return launch{}, provider.Errorf(provider.InvalidArgument, "image %s: %v", img.ID, err)
	}
	if d.launcher != nil {
		if err := d.launcher.Prepare(ctx, img); err != nil {
			return launch{}, err
		}
	}
	l := launch{dir: dir, path: path, args: img.Entrypoint[1:], words: img.Entrypoint, env: make(map[string]string, len(env)), img: img}
	for name, v := range env {
		if v.Secret == "" {
			l.env[name] = v.Value
			continue
		}
		val, err := secretref.Resolve(ctx, d.secretClient, v.Secret)
		if err != nil {
			return launch{}, provider.Errorf(provider.FailedPrecondition, "env.%s: %v", name, err)
		}
		l.env[name] = val
	}
	return l, nil
}

// instanceEnv is the environment of an instance listening on host:port, as
// entrypoint.Expand and the process see it: l's env, PORT and HOST.
func (l launch) instanceEnv(host string, port int) map[string]string {
	env := maps.Clone(l.env)
	if env == nil {
		env = map[string]string{}
	}
	env[entrypoint.Port], env[entrypoint.Host] = strconv.Itoa(port), host
	return env
}

// loopback is the address instances, routers and sim hosts' control
// endpoints listen on (sim instances: simIP).
const loopback = "127.0.0.1"

// pickPort returns a free port on host (an IP address): prev's port when prev
// is on host and the port is still free, else a port not handed out in the
// last minute: on 127.0.0.1 the kernel's choice (kernelPort); on a sim fleet's
// own address a random draw from the whole ephemeral range, since the kernel's
// own choice (port 0, with SO_REUSEADDR as Go listens) comes from one parity of
// one half of it, about 7,000 ports, too few for sim fleets of thousands of
// instances.
func (d *Driver) pickPort(host, prev string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if now.Sub(d.swept) > time.Second { // not at every call: a sim fleet reserves thousands
		for a, t := range d.reserved {
			if now.Sub(t) > time.Minute {
				delete(d.reserved, a)
			}
		}
		d.swept = now
	}
	if h, ps, err := net.SplitHostPort(prev); err == nil && h == host {
		if p, err := strconv.Atoi(ps); err == nil && p > 0 && portFree(host, p) {
			d.reserved[prev] = now
			return p, nil
		}
	}
	if host == loopback {
		return d.kernelPort(host, now)
	}
	lo, hi := ephemeralPorts()
	var last error
	for range 1000 {
		p := lo + rand.IntN(hi-lo+1)
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		if _, taken := d.reserved[addr]; taken {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			last = err
			continue
		}
		ln.Close()
		d.reserved[addr] = now
		return p, nil
	}
	return 0, fmt.Errorf("find a free port on %s: 1000 ports of %d-%d tried, all in use or handed out in the last minute (last: %v)", host, lo, hi, last)
}

// kernelPort is the kernel's choice of a free port on host (port 0), not handed
// out in the last minute: what real instances and routers on 127.0.0.1 get. It
// is the choice every other program and test on 127.0.0.1 makes too, so a port
// one of them was just given (and holds only later, as a test reserving a
// router's address does) is not handed out again here, as a random draw from
// the whole range could. d.mu is held.
func (d *Driver) kernelPort(host string, now time.Time) (int, error) {
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		if _, taken := d.reserved[addr]; !taken {
			d.reserved[addr] = now
			return p, nil
		}
	}
	return 0, fmt.Errorf("find a free port on %s: every port the kernel offered was handed out in the last minute", host)
}

// ephemeralPorts is the kernel's ephemeral port range (32768-60999 when unknown).
func ephemeralPorts() (lo, hi int) {
	lo, hi = 32768, 60999
	if fs, err := procFS(); err == nil {
		if r, err := fs.SysctlInts("net.ipv4.ip_local_port_range"); err == nil && len(r) == 2 && 1024 <= r[0] && r[0] < r[1] && r[1] <= 65535 {
			lo, hi = r[0], r[1]
		}
	}
	return lo, hi
}

func portFree(host string, p int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// baseEnv is the clean environment of every process the driver starts.
func (d *Driver) baseEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	home := os.Getenv("HOME")
	if home == "" {
		home = "/"
	}
	return []string{"PATH=" + path, "HOME=" + home, envHome + "=" + d.home}
}

// startDetached starts cmd in its own session with stdin from /dev/null and
// stdout+stderr appended to logPath, and reaps it in the background. It returns
// the pid, the process start time, and a channel closed when the process exits
// (only while this process lives; the child outlives it).
func startDetached(cmd *exec.Cmd, logPath, banner string) (int, uint64, <-chan error, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return 0, 0, nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "--- imago %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), banner)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, nil, err
	}
	pid := cmd.Process.Pid
	start := startTimeOf(pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap, so no zombie stays while we live
	return pid, start, exited, nil
}

// spawnInstance starts the process of instance in, the way a crashed driver would
// have too (the environment markers are what adoption looks for). The child's
// environment is clean: baseEnv, the rollout's env, PORT, HOST and the markers.
func (d *Driver) spawnInstance(f contract.Fleet, in contract.Instance, port int, l launch) (int, uint64, error) {
	env := l.instanceEnv(loopback, port)
	args, err := entrypoint.Expand(l.args, env)
	if err != nil { // prepareLaunch checked the variables
		return 0, 0, provider.Errorf(provider.InvalidArgument, "image %s: entrypoint: %v", f.ImageID, err)
	}
	cmd := exec.Command(l.path, args...)
	cmd.Dir = l.dir
	cmd.Env = d.baseEnv()
	if d.launcher != nil {
		// The rollout's env goes into the instance, not into the launcher's process.
		if cmd, err = d.launcher.Command(context.Background(), l.img, f, in, port, l.env); err != nil {
			return 0, 0, err
		}
		cmd.Env = append(d.baseEnv(), entrypoint.Port+"="+strconv.Itoa(port))
	} else {
		for _, k := range slices.Sorted(maps.Keys(env)) {
			cmd.Env = append(cmd.Env, k+"="+env[k])
		}
	}
	cmd.Env = append(cmd.Env, envInstance+"="+in.ID, envFleet+"="+f.ID)
	logPath := d.instanceLog(f.ID, in.ID)
	// The banner shows the entrypoint as recorded: expanded, it could show a secret.
	pid, start, exited, err := startDetached(cmd, logPath,
		fmt.Sprintf("starting instance %s of fleet %s (image %s) on port %d: %s", in.ID, f.ID, f.ImageID, port, strings.Join(l.words, " ")))
	if err != nil {
		return 0, 0, fmt.Errorf("start instance %s of fleet %s: %w", in.ID, f.ID, err)
	}
	go recordExit(logPath, in.ID, pid, exited)
	return pid, start, nil
}

// Terminate stops every process of the fleet (SIGTERM to each instance's process
// group, SIGKILL after 10s) and then forgets the fleet. A fleet that is gone
// already is not an error. It does not look at routes: the portable Provider
// guards against terminating a fleet that still gets traffic.
func (d *Driver) Terminate(ctx context.Context, fleetID string) error {
	if provider.CheckName("fleet", fleetID) != nil {
		return nil // no such fleet can exist
	}
	unlock, err := lockFile(ctx, d.fleetLock(fleetID))
	if err != nil {
		return fmt.Errorf("terminate fleet %s: %w", fleetID, err)
	}
	defer unlock()
	st, err := d.readState(fleetID)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var procs []procRef
	if st != nil {
		for _, in := range st.Fleet.Instances {
			if in.PID != 0 {
				procs = append(procs, procRef{in.PID, st.StartTimes[in.ID]})
			}
		}
	}
	// Also processes no state records (a crash between start and record, or
	// children of an instance).
	if err := d.stopAndRemove(ctx, "terminate fleet "+fleetID, procs,
		func(env map[string]string) bool { return env[envFleet] == fleetID }, d.fleetFile(fleetID)); err != nil {
		return err
	}
	if d.launcher != nil {
		if err := d.launcher.Forget(fleetID); err != nil {
			return fmt.Errorf("terminate fleet %s: %w", fleetID, err)
		}
	}
	return d.removeSimRun(fleetID)
}

// stopAndRemove stops procs and every process of this home whose environment
// marked accepts (SIGTERM to each process group, SIGKILL after stopGrace), then
// removes file, which may be gone already. what names the operation in the error
// of a stop that failed.
func (d *Driver) stopAndRemove(ctx context.Context, what string, procs []procRef, marked func(env map[string]string) bool, file string) error {
	ents, err := scanProcs(d.home)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if marked(e.env) {
			procs = append(procs, procRef{e.pid, e.startTime})
		}
	}
	if err := stopProcs(ctx, procs, stopGrace); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
