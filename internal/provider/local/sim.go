package local

// The "sim" instance kind: a lightweight stand-in for real instances, for scale
// and concurrency benchmarks (1,000 instances on one machine) and for tests.
//
// An image is a sim image when its catalog record has the label
// "imago.kind: sim" or its entrypoint is ["imago-sim"]. The driver then runs all
// instances of a fleet as HTTP listeners inside ONE detached process per fleet, the
// sim host, instead of one process per instance. Each listener serves on its own
// port of the fleet's loopback address (simIP: 127.x.y.z, one per fleet, so
// fleets of thousands never run out of ports) and answers "/" with the image's
// "version" label (the image ID when it has none) and "/healthz" with 200 "ok", so
// routers, health probes and smoke checks work unchanged. Instances of a sim
// fleet share the host's pid.
//
// The sim host is the driver's executable re-executed with the environment
// markers below (like routers): main (or TestMain) must call RunSimIfChild first.
// IMAGO_SIM_COMMAND (or Config.SimCommand) names another program that does, e.g.
// when the worker binary does not. The host is started with the extra argument
// -imago-sim-host, so a program that does not call RunSimIfChild fails its flag
// parsing and exits at once instead of running as itself.
//
// The host writes Home/run/sim/<fleetID>.json (pid, start time, control address)
// once it listens for control requests; the driver sends it the full desired set
// of listeners (POST /sync), the host opens the missing ones, closes (gracefully)
// the ones not listed and answers which ports it could not bind. The fleet state
// records each instance's port and the host's pid, as for process instances, and
// the same plan-then-start discipline keeps Provision and Resize idempotent: the
// host keys listeners by instance ID, so a retry never doubles an instance.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/httpx"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/router"
)

// Sim image markers.
const (
	// SimKindLabel with value SimKind marks a sim image.
	SimKindLabel = "imago.kind"
	SimKind      = "sim"
	// SimEntrypoint as an image's whole entrypoint also marks a sim image.
	SimEntrypoint = "imago-sim"
	// SimCommandEnv overrides the program started as sim host (default: the
	// current executable). Its main must call RunSimIfChild.
	SimCommandEnv = "IMAGO_SIM_COMMAND"
	// SimHostFlag is the argument the sim host is started with.
	SimHostFlag = "-imago-sim-host"
)

// Environment of a sim host (besides IMAGO_HOME and IMAGO_FLEET_ID).
const (
	envSim    = "IMAGO_SIM_HOST" // value: the run file the host writes
	simVerKey = "version"        // image label holding the version a sim instance answers
)

// IsSimImage reports whether img runs as sim instances.
func IsSimImage(img contract.Image) bool {
	return img.Labels[SimKindLabel] == SimKind || (len(img.Entrypoint) == 1 && img.Entrypoint[0] == SimEntrypoint)
}

func simVersion(img contract.Image) string {
	if v := img.Labels[simVerKey]; v != "" {
		return v
	}
	return img.ID
}

// simRun is the run file of a sim host.
type simRun struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	Control   string `json:"control"` // host:port of the control endpoint
}

// simListener is one instance of a sim fleet, in a sync request.
type simListener struct {
	ID   string `json:"id"`
	Host string `json:"host,omitempty"` // an IP address; "" is 127.0.0.1
	Port int    `json:"port"`
}

// listenerOf is the listener of a sim instance, at its recorded address.
func listenerOf(in contract.Instance) simListener {
	h, ps, _ := net.SplitHostPort(in.Address)
	port, _ := strconv.Atoi(ps)
	return simListener{ID: in.ID, Host: h, Port: port}
}

func (l simListener) addr() string {
	h := l.Host
	if h == "" {
		h = loopback
	}
	return net.JoinHostPort(h, strconv.Itoa(l.Port))
}

// simIP is the loopback address the instances of a sim fleet listen on: one
// per fleet, derived from its ID, in 127.0.0.0/8 outside 127.0.0.0/16. Each
// address has the whole port range to itself, so thousands of listeners never
// exhaust the ports that client connections and routers on 127.0.0.1 need (a
// listener cannot take a port that a closed client connection on the same
// address still holds in TIME_WAIT).
func simIP(fleetID string) string {
	h := fnv.New32a()
	h.Write([]byte(fleetID))
	v := h.Sum32()
	return fmt.Sprintf("127.%d.%d.%d", 1+v%254, (v>>8)%256, 1+(v>>16)%254)
}

type simSyncRequest struct {
	Version   string        `json:"version"`
	Listeners []simListener `json:"listeners"`
}

type simSyncResponse struct {
	// Failed holds, per instance ID, why its port could not be bound.
	Failed map[string]string `json:"failed,omitempty"`
}

func (d *Driver) simRunFile(fleetID string) string {
	return filepath.Join(d.home, "run", "sim", fleetID+".json")
}

func (d *Driver) readSimRun(fleetID string) (simRun, bool) {
	var r simRun
	data, err := os.ReadFile(d.simRunFile(fleetID))
	if err != nil || json.Unmarshal(data, &r) != nil || r.PID == 0 || !alive(r.PID, r.StartTime) {
		return simRun{}, false
	}
	return r, true
}

// simHost returns the live sim host of st's fleet, starting one when none runs.
// Stray hosts of the fleet (not the recorded one) are stopped first: the fleet
// never has two.
func (d *Driver) simHost(ctx context.Context, st *fleetState) (simRun, error) {
	id := st.Fleet.ID
	if r, ok := d.readSimRun(id); ok {
		return r, nil
	}
	logPath := d.simHostLog(id)
	if err := d.stopStraySimHosts(ctx, id, logPath); err != nil {
		return simRun{}, err
	}
	runFile := d.simRunFile(id)
	os.Remove(runFile)
	cmd := exec.Command(d.simCmd[0], append(append([]string(nil), d.simCmd[1:]...), SimHostFlag)...)
	cmd.Dir = d.home
	cmd.Env = append(d.baseEnv(), envFleet+"="+id, envSim+"="+runFile)
	pid, start, exited, err := startDetached(cmd, logPath,
		fmt.Sprintf("starting sim host of fleet %s (image %s): %s", id, st.Fleet.ImageID, strings.Join(cmd.Args, " ")))
	if err != nil {
		return simRun{}, fmt.Errorf("start sim host of fleet %s: %w", id, err)
	}
	ready, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var r simRun
	err = poll(ready, time.Millisecond, func() (bool, error) {
		var ok bool
		if r, ok = d.readSimRun(id); ok && r.PID == pid {
			return true, nil
		}
		select {
		case err := <-exited:
			return false, provider.Errorf(provider.FailedPrecondition,
				"sim host of fleet %s (%s) exited at once (%v): its main must call local.RunSimIfChild, or set %s to a program that does",
				id, d.simCmd[0], err, SimCommandEnv)
		default:
		}
		return false, nil
	})
	switch {
	case err == nil:
		return r, nil
	case ready.Err() == nil || !errors.Is(err, ready.Err()): // the host exited
		return simRun{}, err
	case ctx.Err() != nil:
		stopProcs(context.WithoutCancel(ctx), []procRef{{pid, start}}, time.Second)
		return simRun{}, ctx.Err()
	}
	stopProcs(ctx, []procRef{{pid, start}}, time.Second)
	return simRun{}, fmt.Errorf("sim host of fleet %s (%s) did not become ready within 15s: its main must call local.RunSimIfChild, or set %s",
		id, d.simCmd[0], SimCommandEnv)
}

// simHostLog is the log of fleet id's sim host. startDetached creates it
// before it starts the host, and the driver never removes it.
func (d *Driver) simHostLog(id string) string {
	return filepath.Join(d.home, "logs", id, "sim-host.log")
}

// stopStraySimHosts stops the sim hosts of fleet id still running (not the
// recorded one: simHost found none live). A fleet whose host log does not
// exist never had a host started under this home, so it has none to stop and
// the scan of every process's environment (/proc/*/environ) is skipped: that
// scan grows with the processes on the machine, and a campaign of 400 first
// deployments paid it for each (P8, docs/performance.md).
func (d *Driver) stopStraySimHosts(ctx context.Context, id, logPath string) error {
	if _, err := os.Lstat(logPath); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ents, err := scanProcs(d.home)
	if err != nil {
		return err
	}
	var strays []procRef
	for _, e := range ents {
		if e.env[envFleet] == id && e.env[envSim] != "" {
			strays = append(strays, procRef{e.pid, e.startTime})
		}
	}
	if err := stopProcs(ctx, strays, stopGrace); err != nil {
		return fmt.Errorf("stop stray sim host of fleet %s: %w", id, err)
	}
	return nil
}

// simClient talks to sim hosts' control ports; simSync's context bounds a whole
// sync (a host stops listeners gracefully, up to stopGrace).
var simClient = &http.Client{Transport: &http.Transport{
	Proxy:                 nil,
	DialContext:           (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
	ResponseHeaderTimeout: stopGrace + 30*time.Second,
	IdleConnTimeout:       30 * time.Second,
}}

// simSync sends the host the full set of listeners it must serve.
func simSync(ctx context.Context, host simRun, req simSyncRequest) (simSyncResponse, error) {
	var out simSyncResponse
	body, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, stopGrace+30*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host.Control+"/sync", bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	resp, err := simClient.Do(hreq)
	if err != nil {
		return out, fmt.Errorf("sim host %d: %w", host.PID, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("sim host %d answered %s: %s", host.PID, resp.Status, bytes.TrimSpace(data))
	}
	return out, json.Unmarshal(data, &out)
}

// onHost reports whether instance in is served by host (recorded with its pid).
func (st *fleetState) onHost(in contract.Instance, host simRun) bool {
	return in.PID == host.PID && st.StartTimes[in.ID] == host.StartTime && in.Address != ""
}

// startSim makes every instance of st (a sim fleet) serve on its host: it
// starts the host if none runs, plans a port for each instance the host does not
// serve yet (recorded before the host opens it), syncs the host to the full set,
// and records the host's pid for every instance. The caller holds the fleet lock.
func (d *Driver) startSim(ctx context.Context, st *fleetState, img contract.Image) (contract.Fleet, error) {
	host, err := d.simHost(ctx, st)
	if err != nil {
		return contract.Fleet{}, err
	}
	retry := map[string]bool{}
	for round := 0; ; round++ {
		changed := false
		for i := range st.Fleet.Instances {
			in := &st.Fleet.Instances[i]
			if st.onHost(*in, host) && !retry[in.ID] {
				continue
			}
			prev := in.Address
			if retry[in.ID] {
				prev = ""
			}
			ip := simIP(st.Fleet.ID)
			port, err := d.pickPort(ip, prev)
			if err != nil {
				return contract.Fleet{}, err
			}
			in.Address, in.PID = net.JoinHostPort(ip, strconv.Itoa(port)), 0
			delete(st.StartTimes, in.ID)
			changed = true
		}
		if changed {
			if err := d.writeState(st); err != nil { // planned: addresses, no pid yet
				return contract.Fleet{}, err
			}
		}
		req := simSyncRequest{Version: simVersion(img)}
		for _, in := range st.Fleet.Instances {
			req.Listeners = append(req.Listeners, listenerOf(in))
		}
		res, err := simSync(ctx, host, req)
		if err != nil {
			return contract.Fleet{}, fmt.Errorf("start sim instances of fleet %s: %w", st.Fleet.ID, err)
		}
		retry = map[string]bool{}
		for i := range st.Fleet.Instances {
			in := &st.Fleet.Instances[i]
			if _, failed := res.Failed[in.ID]; failed {
				retry[in.ID] = true
				continue
			}
			in.PID, st.StartTimes[in.ID] = host.PID, host.StartTime
		}
		if err := d.writeState(st); err != nil {
			return contract.Fleet{}, err
		}
		if len(retry) == 0 {
			return st.live(), nil
		}
		if round >= 4 {
			return contract.Fleet{}, fmt.Errorf("start sim instances of fleet %s: cannot bind ports: %v", st.Fleet.ID, res.Failed)
		}
	}
}

// shrinkSim closes the listeners of the instances of st beyond keep (the caller
// trims them from the state afterwards). A host that is not running has none.
func (d *Driver) shrinkSim(ctx context.Context, st *fleetState, keep []contract.Instance) error {
	host, ok := d.readSimRun(st.Fleet.ID)
	if !ok {
		return nil
	}
	req := simSyncRequest{}
	for _, in := range keep {
		if !st.onHost(in, host) {
			continue
		}
		req.Listeners = append(req.Listeners, listenerOf(in))
	}
	if img, err := d.simImage(ctx, st); err == nil {
		req.Version = simVersion(img)
	}
	_, err := simSync(ctx, host, req)
	return err
}

func (d *Driver) simImage(ctx context.Context, st *fleetState) (contract.Image, error) {
	if d.images == nil {
		return contract.Image{}, errors.New("no image source")
	}
	return d.images.Get(ctx, st.Fleet.ImageID)
}

// RunSimIfChild runs a sim host and exits when this process was started as one
// by the local driver; otherwise it returns at once. Call it first in main (and in
// TestMain) of every program that opens a local driver provisioning sim images,
// or point IMAGO_SIM_COMMAND at a program that does.
func RunSimIfChild() {
	runFile := os.Getenv(envSim)
	if runFile == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runSimHost(ctx, runFile); err != nil {
		fmt.Fprintf(os.Stderr, "%s imago sim host: %v\n", time.Now().Format(time.RFC3339Nano), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// simHostState is the sim host's set of listeners.
type simHostState struct {
	mu        sync.Mutex // serializes syncs
	version   atomicString
	listeners map[string]*simServer
}

type simServer struct {
	addr string
	srv  *http.Server
}

type atomicString struct {
	mu sync.RWMutex
	s  string
}

func (a *atomicString) Load() string   { a.mu.RLock(); defer a.mu.RUnlock(); return a.s }
func (a *atomicString) Store(s string) { a.mu.Lock(); a.s = s; a.mu.Unlock() }

func runSimHost(ctx context.Context, runFile string) error {
	h := &simHostState{listeners: map[string]*simServer{}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			fmt.Fprintln(w, h.version.Load())
		case "/healthz":
			fmt.Fprintln(w, "ok")
		default:
			http.NotFound(w, r)
		}
	})
	control := http.NewServeMux()
	control.HandleFunc("POST /sync", func(w http.ResponseWriter, r *http.Request) {
		var req simSyncRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := h.sync(r.Context(), req, handler)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	control.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := httpx.NewServer(control, httpx.ShortTimeouts) // a sync takes at most stopGrace (10 s)
	go srv.Serve(ln)
	run, _ := json.Marshal(simRun{PID: os.Getpid(), StartTime: startTimeOf(os.Getpid()), Control: ln.Addr().String()})
	if err := router.WriteAtomic(runFile, append(run, '\n')); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	h.sync(sctx, simSyncRequest{}, handler)
	if data, err := os.ReadFile(runFile); err == nil && bytes.Equal(bytes.TrimSpace(data), run) {
		os.Remove(runFile)
	}
	return nil
}

// sync makes the host serve exactly req.Listeners.
func (h *simHostState) sync(ctx context.Context, req simSyncRequest, handler http.Handler) simSyncResponse {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.Version != "" {
		h.version.Store(req.Version)
	}
	want := map[string]string{}
	for _, l := range req.Listeners {
		want[l.ID] = l.addr()
	}
	// Close what is not wanted (or wanted on another address), gracefully, in parallel.
	var wg sync.WaitGroup
	for id, s := range h.listeners {
		if a, ok := want[id]; ok && a == s.addr {
			continue
		}
		delete(h.listeners, id)
		wg.Add(1)
		go func(s *simServer) {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, stopGrace)
			defer cancel()
			if s.srv.Shutdown(sctx) != nil {
				s.srv.Close()
			}
		}(s)
	}
	wg.Wait()
	res := simSyncResponse{}
	for _, l := range req.Listeners {
		if _, ok := h.listeners[l.ID]; ok {
			continue
		}
		ln, err := net.Listen("tcp", l.addr())
		if err != nil {
			if res.Failed == nil {
				res.Failed = map[string]string{}
			}
			res.Failed[l.ID] = err.Error()
			continue
		}
		srv := httpx.NewServer(handler, httpx.ShortTimeouts)
		go srv.Serve(ln)
		h.listeners[l.ID] = &simServer{addr: l.addr(), srv: srv}
	}
	return res
}

// removeSimRun forgets the run file of a terminated fleet's host.
func (d *Driver) removeSimRun(fleetID string) error {
	if err := os.Remove(d.simRunFile(fleetID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
