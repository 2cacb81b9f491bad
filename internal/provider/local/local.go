// Package local is imago's "local" provider driver: no cloud, no containers.
//
// An image is unpacked once per host under Home/images/<id>; an instance is a
// detached OS process started from the image's entrypoint on a free 127.0.0.1
// port; a fleet is a state file Home/fleets/<fleetID>.json; a router is a detached
// reverse-proxy process (package router) per service and environment, configured
// through Home/routes/<env>/<service>.json. Instances and routers outlive the
// driver (and the worker), as VMs and load balancers outlive their orchestrator;
// the state files and environment markers on the processes let a new driver, or a
// retried activity, adopt them.
//
// Layout of Home:
//
//	images/<imageID>/                  unpacked image (read-only)
//	images/<imageID>.lock              flock serializing the unpack
//	fleets/<fleetID>.json              fleet state: provider.Fleet + pid start times
//	fleets/<fleetID>.lock              flock serializing Provision/Resize/Terminate
//	routes/<env>/<service>.json        route file the router watches
//	routes/<env>/<service>.lock        flock serializing SetRoute/StopRouter
//	run/<env>-<service>.router.json    router pid, start time, listen and admin addresses
//	logs/<fleetID>/<instanceID>.log    instance stdout+stderr
//	logs/routers/<env>-<service>.log   router stdout+stderr
package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/router"
)

// ImageSource is where image records and archives come from; *catalog.Catalog
// satisfies it. It is the provider's, which openers hand drivers (OpenEnv).
type ImageSource = provider.ImageSource

// Config configures the local driver.
type Config struct {
	// Home is the driver's state directory ($IMAGO_HOME).
	Home string
	// Images is where image records and archives come from. It may be nil for a
	// driver that only manages routes and inspects fleets; Provision then fails.
	Images ImageSource
	// RouterCommand starts a router process; the driver adds the environment
	// (IMAGO_ROUTER_CONFIG, ...) that makes router.RunIfChild serve. Default: the
	// current executable, whose main (or TestMain) must call router.RunIfChild first.
	RouterCommand []string
	// SimCommand starts a sim host (see sim.go); the driver adds its environment
	// and the -imago-sim-host argument. Default: $IMAGO_SIM_COMMAND, else the
	// current executable, whose main (or TestMain) must call RunSimIfChild first.
	SimCommand []string
	// ArchiveLimits bound the image archives the driver unpacks; zero fields take
	// image.DefaultMaxBytes and image.DefaultMaxEntries.
	ArchiveLimits image.Limits
	// SecretClient reads the https secret references of a rollout's env; it
	// must dial through the outbound guard. Default: the guard with an empty
	// allow list (public addresses only).
	SecretClient *http.Client
	// Launcher, when set, starts every instance (see Launcher); nil runs the
	// image's entrypoint as a host process.
	Launcher Launcher
}

// Driver is the local provider driver. It is safe for concurrent use, also by
// several processes sharing one Home (state changes are serialized by flocks).
type Driver struct {
	home      string
	images    ImageSource
	routerCmd []string
	simCmd    []string
	limits    image.Limits
	// secretClient reads https secret references (Config.SecretClient).
	secretClient *http.Client
	launcher     Launcher

	mu       sync.Mutex
	reserved map[string]time.Time // addresses handed out recently, not to hand out twice
	swept    time.Time            // when reserved last forgot addresses older than a minute

	states statesCache

	// afterSpawn, when set (tests), runs after an instance process started and
	// before its pid is recorded; an error aborts Provision there, like a crash.
	afterSpawn func(instanceID string) error
}

var _ provider.Driver = (*Driver)(nil)

// Open returns a driver on cfg.Home, creating its directories.
func Open(cfg Config) (*Driver, error) {
	if cfg.Home == "" {
		return nil, fmt.Errorf("local provider: a home directory is required (IMAGO_HOME)")
	}
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	for _, sub := range []string{"images", "fleets", "routes", "logs", "run"} {
		if err := os.MkdirAll(filepath.Join(home, sub), 0o700); err != nil {
			return nil, fmt.Errorf("local provider: %w", err)
		}
	}
	cmd := cfg.RouterCommand
	if len(cmd) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local provider: cannot find the executable to start routers with: %w", err)
		}
		cmd = []string{exe}
		if strings.HasSuffix(exe, ".test") {
			// A go test binary whose TestMain forgot router.RunIfChild must not
			// run the package's tests again as a "router": make it run none.
			cmd = append(cmd, "-test.run=^$", "-test.bench=^$", "-test.fuzz=^$")
		}
	}
	simCmd := cfg.SimCommand
	if len(simCmd) == 0 {
		if c := os.Getenv(SimCommandEnv); c != "" {
			simCmd = []string{c}
		} else if exe, err := os.Executable(); err == nil {
			simCmd = []string{exe}
		} else {
			simCmd = []string{"/proc/self/exe"}
		}
	}
	secretClient := cfg.SecretClient
	if secretClient == nil {
		secretClient = netguard.New(netguard.Allow{}).Client(0)
	}
	return &Driver{
		secretClient: secretClient,
		home:         home,
		images:       cfg.Images,
		routerCmd:    append([]string(nil), cmd...),
		simCmd:       append([]string(nil), simCmd...),
		limits:       cfg.ArchiveLimits,
		launcher:     cfg.Launcher,
		reserved:     map[string]time.Time{},
	}, nil
}

// Home returns the driver's absolute home directory.
func (d *Driver) Home() string { return d.home }

// Close releases the driver. Instances and routers keep running.
func (d *Driver) Close() error { return nil }

// FleetID is the fleet ID Provision derives from a request token.
func FleetID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "fl-" + hex.EncodeToString(sum[:])[:10]
}

func checkKey(key contract.RouteKey) error {
	if err := provider.CheckName("service", key.Service); err != nil {
		return err
	}
	if err := provider.CheckName("environment", key.Environment); err != nil {
		return err
	}
	if key.Region != "" {
		return provider.CheckName("region", key.Region)
	}
	return nil
}

// keyDir is the directory of a router's files under routes/, run/ and
// logs/routers/: its environment, or environment@region for a region (a
// namespace of its own: '@' is in no environment name).
func keyDir(k contract.RouteKey) string { return contract.Place(k.Environment, k.Region) }

func (d *Driver) fleetFile(id string) string { return filepath.Join(d.home, "fleets", id+".json") }
func (d *Driver) fleetLock(id string) string { return filepath.Join(d.home, "fleets", id+".lock") }
func (d *Driver) imageDir(id string) string  { return filepath.Join(d.home, "images", id) }
func (d *Driver) instanceLog(fleetID, instanceID string) string {
	return filepath.Join(d.home, "logs", fleetID, instanceID+".log")
}
func (d *Driver) routeFile(k contract.RouteKey) string {
	return filepath.Join(d.home, "routes", keyDir(k), k.Service+".json")
}
func (d *Driver) routeLock(k contract.RouteKey) string {
	return filepath.Join(d.home, "routes", keyDir(k), k.Service+".lock")
}
func (d *Driver) runFile(k contract.RouteKey) string {
	return filepath.Join(d.home, "run", keyDir(k), k.Service+".router.json")
}
func (d *Driver) routerLog(k contract.RouteKey) string {
	return filepath.Join(d.home, "logs", "routers", keyDir(k), k.Service+".log")
}

// fleetState is the content of a fleet state file.
type fleetState struct {
	Fleet contract.Fleet `json:"fleet"`
	// StartTimes holds, per instance ID, the start time (/proc/<pid>/stat field
	// 22) of the recorded pid, so a reused pid is never taken for the instance.
	StartTimes map[string]uint64 `json:"startTimes"`
	// Size is the desired number of instances: the provisioned size, changed by
	// Resize. Fleet.Instances differs from it only while a Resize (or the
	// Provision or Resize retry finishing it) is under way. 0 in state files
	// written before Resize existed: see desiredSize.
	Size int `json:"size,omitempty"`
	// RequestSize is the size of the Provision request that made the fleet; a
	// Provision retry with the fleet's token may repeat it (or ask for Size).
	RequestSize int `json:"requestSize,omitempty"`
	// Sim marks a fleet of sim instances: listeners in one sim host process
	// (sim.go), whose pid every instance records.
	Sim bool `json:"sim,omitempty"`
	// Env is the provision request's env, secrets as references: a Resize or
	// a repair resolves them again. Absent in state files from before env.
	Env map[string]contract.EnvVar `json:"env,omitempty"`
}

func (d *Driver) readState(id string) (*fleetState, error) {
	data, err := os.ReadFile(d.fleetFile(id))
	if err != nil {
		return nil, err
	}
	if st := d.states.get(id, data); st != nil {
		return st, nil
	}
	var st fleetState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("fleet state %s is corrupt: %w", d.fleetFile(id), err)
	}
	if st.StartTimes == nil {
		st.StartTimes = map[string]uint64{}
	}
	d.states.put(id, data, &st)
	return &st, nil
}

// writeState records st. Compact JSON: a sim fleet's state lists thousands of
// instances, and every resize writes it twice or three times, each synced.
func (d *Driver) writeState(st *fleetState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := router.WriteAtomic(d.fleetFile(st.Fleet.ID), data); err != nil {
		return err
	}
	d.states.put(st.Fleet.ID, data, st)
	return nil
}

// statesCache keeps the last fleet state read or written per fleet with the
// file's bytes: a read that finds the same bytes (compared in full) copies the
// decoded state instead of decoding thousands of instances again. Another
// process that wrote the file changed its bytes, so it is never stale.
type statesCache struct {
	mu sync.Mutex
	m  map[string]cachedState
}

type cachedState struct {
	data []byte
	st   fleetState
}

func (c *statesCache) get(id string, data []byte) *fleetState {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || !bytes.Equal(e.data, data) {
		return nil
	}
	return e.st.clone()
}

func (c *statesCache) put(id string, data []byte, st *fleetState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedState{}
	}
	c.m[id] = cachedState{data: data, st: *st.clone()}
}

// clone is a deep copy of st (its instances, labels and start times).
func (st *fleetState) clone() *fleetState {
	c := *st
	c.Fleet.Instances = slices.Clone(st.Fleet.Instances)
	c.Fleet.Labels = maps.Clone(st.Fleet.Labels)
	c.StartTimes = maps.Clone(st.StartTimes)
	if c.StartTimes == nil {
		c.StartTimes = map[string]uint64{}
	}
	return &c
}

// live returns the fleet of st with each instance's live state.
func (st *fleetState) live() contract.Fleet {
	f := st.Fleet
	f.Instances = append([]contract.Instance(nil), st.Fleet.Instances...)
	procs := liveness{}
	for i := range f.Instances {
		in := &f.Instances[i]
		switch {
		case in.PID != 0 && procs.alive(in.PID, st.StartTimes[in.ID]):
			in.State = contract.InstanceRunning
		case in.PID != 0:
			in.State = contract.InstanceExited // started, and gone
		default:
			in.State = contract.InstanceStopped // planned, not started yet
		}
	}
	return f
}

// Describe returns the fleet with the live state of its instances.
func (d *Driver) Describe(ctx context.Context, fleetID string) (contract.Fleet, error) {
	if provider.CheckName("fleet", fleetID) != nil {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %q not found", fleetID)
	}
	st, err := d.readState(fleetID)
	if errors.Is(err, fs.ErrNotExist) {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %s not found in %s", fleetID, filepath.Join(d.home, "fleets"))
	}
	if err != nil {
		return contract.Fleet{}, err
	}
	f := st.live()
	tails := map[string][]string{} // a sim fleet's instances share one log: read it once
	for i := range f.Instances {
		if in := &f.Instances[i]; in.State == contract.InstanceExited {
			d.explainExit(st, in, tails)
		}
	}
	return f, nil
}

// ListFleets returns the fleets in Home/fleets matching f, oldest first.
func (d *Driver) ListFleets(ctx context.Context, f provider.Filter) ([]contract.Fleet, error) {
	paths, err := filepath.Glob(filepath.Join(d.home, "fleets", "*.json"))
	if err != nil {
		return nil, err
	}
	out := []contract.Fleet{}
	for _, p := range paths {
		id := filepath.Base(p[:len(p)-len(".json")])
		st, err := d.readState(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // terminated meanwhile
		}
		if err != nil {
			return nil, err
		}
		if (f.Service != "" && st.Fleet.Service != f.Service) || (f.Environment != "" && st.Fleet.Environment != f.Environment) {
			continue
		}
		out = append(out, st.live())
	}
	sortFleets(out)
	return out, nil
}

// Process is a live process started by a driver on this Home.
type Process struct {
	PID        int    `json:"pid"`
	StartTime  uint64 `json:"starttime"`
	InstanceID string `json:"instanceId,omitempty"` // set for an instance
	FleetID    string `json:"fleetId,omitempty"`    // set for an instance
	Router     string `json:"router,omitempty"`     // "<env>/<service>", set for a router
	Sim        bool   `json:"sim,omitempty"`        // a sim host: FleetID is set, InstanceID is not
}

// Processes lists the live instance and router processes of this Home, found by
// their environment markers (not by the state files), so it also sees processes
// that no state file records.
func (d *Driver) Processes() ([]Process, error) { return processes(d.home) }

func processes(home string) ([]Process, error) {
	ents, err := scanProcs(home)
	if err != nil {
		return nil, err
	}
	out := make([]Process, 0, len(ents))
	for _, e := range ents {
		out = append(out, Process{PID: e.pid, StartTime: e.startTime, InstanceID: e.env[envInstance], FleetID: e.env[envFleet], Router: e.env[envRouter], Sim: e.env[envSim] != ""})
	}
	return out, nil
}

// KillAll kills (SIGKILL, whole process groups) every instance and router process
// of home and waits until they are gone. It is for test cleanup and for wiping a
// Home; it finds processes by their IMAGO_HOME marker, never by name.
func KillAll(home string) error {
	home, err := filepath.Abs(home)
	if err != nil {
		return err
	}
	var last []procRef
	for attempt := 0; attempt < 5; attempt++ {
		ents, err := scanProcs(home)
		if err != nil {
			return err
		}
		if len(ents) == 0 {
			return nil
		}
		var refs []procRef
		for _, e := range ents {
			refs = append(refs, procRef{e.pid, e.startTime})
			signalProc(procRef{e.pid, e.startTime}, syscall.SIGKILL)
		}
		last = waitGone(context.Background(), func() []procRef {
			var out []procRef
			for _, p := range refs {
				if alive(p.pid, p.startTime) {
					out = append(out, p)
				}
			}
			return out
		}, 5*time.Second)
	}
	return fmt.Errorf("kill processes of %s: %v still alive", home, last)
}

// CleanupHome kills every process of home (KillAll) and makes its read-only image
// trees writable again, so that os.RemoveAll (and t.TempDir's cleanup, when not
// running as root) can delete home. Register it with t.Cleanup in tests that use
// the local driver.
func CleanupHome(home string) error {
	err := KillAll(home)
	filepath.WalkDir(filepath.Join(home, "images"), func(p string, de fs.DirEntry, werr error) error {
		if werr == nil && de.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return err
}
