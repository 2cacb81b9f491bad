package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

var _ provider.Resizer = (*Driver)(nil)

// Resize changes the number of instances of a fleet, under the fleet lock.
//
// Growing plans new instances numbered after the highest existing one and starts
// them with the same discipline as Provision (the plan, then each instance's
// address, is recorded before its process starts), so a retry with the same size
// adopts what an interrupted call started instead of starting it twice.
// Shrinking stops the highest-numbered instances gracefully (SIGTERM to their
// process groups, SIGKILL after 10s, like Terminate) and then forgets them. The
// desired size is recorded first, so a retry, or a Provision retry with the
// fleet's token, finishes an interrupted Resize rather than undoing it. Instances
// that stay and whose process died are restarted, as Provision does.
//
// The returned fleet lists the remaining instances. Resize does not look at
// routes: the caller takes instances out of the router's targets before they
// are stopped, and adds new ones once they are healthy.
func (d *Driver) Resize(ctx context.Context, fleetID string, size int) (contract.Fleet, error) {
	if size < 1 {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "resize fleet %s: size must be at least 1, got %d", fleetID, size)
	}
	if provider.CheckName("fleet", fleetID) != nil {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %q not found", fleetID)
	}
	unlock, err := lockFile(ctx, d.fleetLock(fleetID))
	if err != nil {
		return contract.Fleet{}, fmt.Errorf("resize fleet %s: %w", fleetID, err)
	}
	defer unlock()

	st, err := d.readState(fleetID)
	if errors.Is(err, fs.ErrNotExist) {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "resize: fleet %s not found", fleetID)
	}
	if err != nil {
		return contract.Fleet{}, err
	}
	st.RequestSize = st.requestSize() // pin the provisioned size of an older state file
	st.Size = size
	if err := d.reconcileSize(ctx, st); err != nil {
		return contract.Fleet{}, fmt.Errorf("resize fleet %s to %d: %w", fleetID, size, err)
	}
	if !st.needsStart() {
		return st.live(), nil
	}
	dir, img, err := d.ensureImage(ctx, st.Fleet.ImageID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if st.Sim {
		return d.startSim(ctx, st, img)
	}
	l, err := d.prepareLaunch(ctx, dir, img, st.Env)
	if err != nil {
		return contract.Fleet{}, err
	}
	return d.startInstances(st, l)
}

// desiredSize is the number of instances the fleet should have.
func (st *fleetState) desiredSize() int {
	if st.Size > 0 {
		return st.Size
	}
	return len(st.Fleet.Instances) // a state file from before Resize
}

// requestSize is the size the fleet was provisioned with.
func (st *fleetState) requestSize() int {
	if st.RequestSize > 0 {
		return st.RequestSize
	}
	return len(st.Fleet.Instances) // a state file from before Resize: never resized
}

// needsStart reports whether an instance of st has no live process.
func (st *fleetState) needsStart() bool {
	procs := liveness{}
	for _, in := range st.Fleet.Instances {
		if in.PID == 0 || !procs.alive(in.PID, st.StartTimes[in.ID]) {
			return true
		}
	}
	return false
}

// instanceNumber returns n of the instance ID "<fleetID>-<n>", 0 when id has
// another form.
func instanceNumber(fleetID, id string) int {
	s, ok := strings.CutPrefix(id, fleetID+"-")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// reconcileSize makes the instance list of st match its desired size and
// records it. Surplus instances (the highest-numbered ones) are stopped and then
// forgotten; missing ones are planned (recorded with no address and no process;
// startInstances starts them). It writes the state only when something changes.
// The caller holds the fleet lock.
func (d *Driver) reconcileSize(ctx context.Context, st *fleetState) error {
	id := st.Fleet.ID
	want := st.desiredSize()
	ins := st.Fleet.Instances
	sort.SliceStable(ins, func(i, j int) bool { return instanceNumber(id, ins[i].ID) < instanceNumber(id, ins[j].ID) })

	switch {
	case len(ins) > want:
		// Record the desired size first: a crash while stopping leaves a state a
		// retry finishes (it never restarts the surplus instances).
		if err := d.writeState(st); err != nil {
			return err
		}
		surplus := ins[want:]
		if st.Sim {
			// Sim instances are listeners of one host: close them, not the host.
			if err := d.shrinkSim(ctx, st, ins[:want]); err != nil {
				return err
			}
		}
		gone := map[string]bool{}
		var procs []procRef
		for _, in := range surplus {
			gone[in.ID] = true
			if in.PID != 0 && !st.Sim {
				procs = append(procs, procRef{in.PID, st.StartTimes[in.ID]})
			}
		}
		// Also processes the state does not record (a crash between start and
		// record) and children of the instances: they carry the instance marker.
		ents, err := scanProcs(d.home)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.env[envFleet] == id && gone[e.env[envInstance]] {
				procs = append(procs, procRef{e.pid, e.startTime})
			}
		}
		if err := stopProcs(ctx, procs, stopGrace); err != nil {
			return err
		}
		st.Fleet.Instances = append([]contract.Instance(nil), ins[:want]...)
		for gid := range gone {
			delete(st.StartTimes, gid)
		}
		return d.writeState(st)

	case len(ins) < want:
		next := 1
		for _, in := range ins {
			next = max(next, instanceNumber(id, in.ID)+1)
		}
		for len(st.Fleet.Instances) < want {
			st.Fleet.Instances = append(st.Fleet.Instances, contract.Instance{ID: fmt.Sprintf("%s-%d", id, next), State: contract.InstanceStopped})
			next++
		}
		return d.writeState(st) // the plan, before anything starts

	case st.Size != want:
		st.Size = want
		return d.writeState(st)
	}
	return nil
}
