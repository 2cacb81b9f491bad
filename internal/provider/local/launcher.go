package local

import (
	"context"
	"os/exec"

	"github.com/imago/imago/internal/contract"
)

// Launcher runs the instances of a driver as something else than the image's
// entrypoint on the host: the qemu provider (internal/provider/qemu) boots each
// instance as a VM. Everything else (fleet state, adoption by the environment
// markers, liveness, routers, resize, terminate) stays the local driver's: the
// command a Launcher returns is the instance's process.
type Launcher interface {
	// Prepare checks, before any instance of img starts, that the launcher can
	// run it (provider errors: InvalidArgument, FailedPrecondition).
	Prepare(ctx context.Context, img contract.Image) error
	// Command returns the command of instance in of fleet f, serving on
	// 127.0.0.1:port, with env (the rollout's, secrets resolved) inside. The
	// driver sets its environment (clean, PORT=port and the markers adoption
	// looks for), session and log.
	Command(ctx context.Context, img contract.Image, f contract.Fleet, in contract.Instance, port int, env map[string]string) (*exec.Cmd, error)
	// Forget removes what the launcher keeps for the fleet (disks), once all
	// of its instances are stopped.
	Forget(fleetID string) error
}
