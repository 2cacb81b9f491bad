package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/router"
)

// routerTimeout bounds how long SetRoute waits for a router to start and to apply
// a new generation.
const routerTimeout = 10 * time.Second

// Route returns the route in the route file; an empty Route when none was set.
func (d *Driver) Route(ctx context.Context, key contract.RouteKey) (contract.Route, error) {
	if err := checkKey(key); err != nil {
		return contract.Route{}, err
	}
	f, err := router.ReadFile(d.routeFile(key))
	if errors.Is(err, fs.ErrNotExist) {
		return contract.Route{}, nil
	}
	if err != nil {
		return contract.Route{}, err
	}
	return contract.Route{Listen: f.Listen, Backends: f.Backends, RouteRules: f.RouteRules}, nil
}

// RouterProcess returns the run info of the live router of key, NotFound when no
// router of key is running.
func (d *Driver) RouterProcess(key contract.RouteKey) (router.RunInfo, error) {
	if err := checkKey(key); err != nil {
		return router.RunInfo{}, err
	}
	ri, ok := d.liveRouter(key)
	if !ok {
		return router.RunInfo{}, provider.Errorf(provider.NotFound, "no router of %s is running", key)
	}
	return ri, nil
}

func (d *Driver) liveRouter(key contract.RouteKey) (router.RunInfo, bool) {
	ri, err := router.ReadRunInfo(d.runFile(key))
	if err != nil || !alive(ri.PID, ri.StartTime) || ri.StartTime == 0 {
		return ri, false
	}
	return ri, true
}

// SetRoute writes the route file with the next generation and pushes it to the
// router of key through its admin endpoint (or starts the router if none runs),
// and returns once the router applies the new generation and the file is
// written, so every request that arrives after SetRoute returns follows route.
// When a push fails, SetRoute waits for the router to read the file.
//
// route.Listen empty keeps the router's address (or picks a free 127.0.0.1 port
// for a new router); a different address for a running router is an
// InvalidArgument error (stop the router first).
func (d *Driver) SetRoute(ctx context.Context, key contract.RouteKey, route contract.Route) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if route.Listen != "" {
		if _, _, err := net.SplitHostPort(route.Listen); err != nil {
			return provider.Errorf(provider.InvalidArgument, "route %s: listen address %q: %v", key, route.Listen, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(d.routeFile(key)), 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, d.routeLock(key))
	if err != nil {
		return fmt.Errorf("set route %s: %w", key, err)
	}
	defer unlock()

	cur, err := router.ReadFile(d.routeFile(key))
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ri, running := d.liveRouter(key)
	listen := route.Listen
	switch {
	case running:
		have := cur.Listen
		if !exists || have == "" {
			have = ri.Listen
		}
		if listen == "" {
			listen = have
		} else if listen != have && listen != ri.Listen {
			return provider.Errorf(provider.InvalidArgument,
				"route %s: the router listens on %s and cannot move to %s (stop it first)", key, have, listen)
		}
	case listen == "" && exists && cur.Listen != "":
		listen = cur.Listen
	case listen == "":
		port, err := d.pickPort(loopback, "")
		if err != nil {
			return err
		}
		listen = net.JoinHostPort(loopback, strconv.Itoa(port))
	}
	backends := route.Backends
	if backends == nil {
		backends = []contract.Backend{}
	}
	if running && !exists {
		// The route file went away under a running router, which ignores
		// generations older than its own: carry on from the one it applies.
		if st, err := router.GetStatus(ctx, ri.Admin); err == nil {
			cur.Generation = st.Generation
		}
	}
	file := router.File{Generation: cur.Generation + 1, Listen: listen, Backends: backends, RouteRules: route.RouteRules}

	ctx, cancel := context.WithTimeout(ctx, routerTimeout)
	defer cancel()
	if running && ri.AdminToken != "" {
		pushed, err := d.pushRoute(ctx, key, ri, &file)
		if pushed || err != nil {
			return err
		}
		// The router did not take the push (it may be busy shutting down);
		// the route file is written: wait for it to read that.
	} else if err := router.WriteFile(d.routeFile(key), file); err != nil {
		return fmt.Errorf("set route %s: %w", key, err)
	}
	gen := file.Generation
	var exited <-chan error
	if !running {
		if ri, exited, err = d.startRouter(ctx, key, listen); err != nil {
			return err
		}
	}
	// Wait until the router applies the new generation.
	var st router.Status
	var stErr error
	err = poll(ctx, time.Millisecond, func() (bool, error) {
		st, stErr = router.GetStatus(ctx, ri.Admin)
		if stErr == nil && st.Generation >= gen {
			return true, nil
		}
		select {
		case werr := <-exited:
			return false, fmt.Errorf("set route %s: the router (pid %d) exited (%v)%s", key, ri.PID, werr, d.routerLogTail(key))
		default:
		}
		if !alive(ri.PID, ri.StartTime) {
			return false, fmt.Errorf("set route %s: the router (pid %d) died before applying generation %d%s", key, ri.PID, gen, d.routerLogTail(key))
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("set route %s: the router (pid %d, admin %s) did not apply generation %d in time (last status %d, %v)%s",
			key, ri.PID, ri.Admin, gen, st.Generation, stErr, d.routerLogTail(key))
	}
	return err
}

// pushRoute writes file to the route file of key and, at the same time, pushes
// it to the running router ri, so the router applies it without waiting on its
// file watch or on the file reaching the disk; it returns once both are done.
// A router that already applies file's generation or a newer one (a push of an
// earlier SetRoute that failed before writing the file) gets file again with a
// generation above its own. pushRoute reports whether the router applied file;
// when it did not, the file is written all the same.
func (d *Driver) pushRoute(ctx context.Context, key contract.RouteKey, ri router.RunInfo, file *router.File) (bool, error) {
	for attempt := 0; ; attempt++ {
		written := make(chan error, 1)
		go func(f router.File) { written <- router.WriteFile(d.routeFile(key), f) }(*file)
		st, err := router.PushRoute(ctx, ri.Admin, ri.AdminToken, *file)
		if werr := <-written; werr != nil {
			return false, fmt.Errorf("set route %s: %w", key, werr)
		}
		if errors.Is(err, router.ErrNotNewer) && sameRoute(st, *file) {
			return true, nil // its file watch was quicker than the push
		}
		if !errors.Is(err, router.ErrNotNewer) || attempt == 2 {
			return err == nil, nil
		}
		file.Generation = st.Generation + 1
	}
}

// sameRoute reports whether a router's status is the route file f.
func sameRoute(st router.Status, f router.File) bool {
	a, errA := json.Marshal(struct {
		B []contract.Backend
		R contract.RouteRules
	}{st.Backends, st.RouteRules})
	b, errB := json.Marshal(struct {
		B []contract.Backend
		R contract.RouteRules
	}{f.Backends, f.RouteRules})
	return st.Generation == f.Generation && st.Listen == f.Listen && errA == nil && errB == nil && bytes.Equal(a, b)
}

// startRouter starts the router process of key and waits until it listens.
func (d *Driver) startRouter(ctx context.Context, key contract.RouteKey, listen string) (router.RunInfo, <-chan error, error) {
	runFile := d.runFile(key)
	if err := os.Remove(runFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return router.RunInfo{}, nil, err
	}
	cmd := exec.Command(d.routerCmd[0], d.routerCmd[1:]...)
	cmd.Dir = d.home
	cmd.Env = append(d.baseEnv(),
		router.EnvConfig+"="+d.routeFile(key),
		router.EnvRunFile+"="+runFile,
		router.EnvKey+"="+key.String(),
	)
	pid, start, exited, err := startDetached(cmd, d.routerLog(key),
		fmt.Sprintf("starting router %s on %s: %s", key, listen, strings.Join(cmd.Args, " ")))
	if err != nil {
		return router.RunInfo{}, nil, fmt.Errorf("start router %s: %w", key, err)
	}
	var ri router.RunInfo
	err = poll(ctx, time.Millisecond, func() (bool, error) {
		var err error
		ri, err = router.ReadRunInfo(runFile)
		if err == nil && ri.PID == pid {
			return true, nil
		}
		select {
		case werr := <-exited:
			hint := ""
			if werr == nil {
				hint = fmt.Sprintf(" without serving; does %s call router.RunIfChild first thing in main (or TestMain)?", d.routerCmd[0])
			}
			return false, fmt.Errorf("router %s could not start on %s: it exited (%v)%s%s", key, listen, werr, hint, d.routerLogTail(key))
		default:
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			stopProcs(context.Background(), []procRef{{pid, start}}, time.Second)
			return router.RunInfo{}, nil, fmt.Errorf("router %s did not start listening on %s in time: %w%s", key, listen, err, d.routerLogTail(key))
		}
		return router.RunInfo{}, nil, err
	}
	if ri.StartTime == 0 {
		ri.StartTime = start
	}
	return ri, exited, nil
}

// routerLogTail returns the last lines of the router's log, formatted to append
// to an error.
func (d *Driver) routerLogTail(key contract.RouteKey) string {
	lines := logTail(d.routerLog(key), 4096)
	if lines == nil {
		return ""
	}
	lines = lines[max(len(lines)-15, 0):]
	return fmt.Sprintf("; router log %s ends with:\n%s", d.routerLog(key), strings.Join(lines, "\n"))
}

// StopRouter stops the router of key (SIGTERM, letting it drain requests in
// flight, SIGKILL after 10s). The route file stays, so Route still reports the
// last route and the next SetRoute starts a new router on the same address.
// Stopping a router that does not run is not an error.
func (d *Driver) StopRouter(ctx context.Context, key contract.RouteKey) error {
	if err := checkKey(key); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, d.routeLock(key))
	if err != nil {
		return fmt.Errorf("stop router %s: %w", key, err)
	}
	defer unlock()
	var procs []procRef
	if ri, ok := d.liveRouter(key); ok {
		procs = append(procs, procRef{ri.PID, ri.StartTime})
	}
	return d.stopAndRemove(ctx, fmt.Sprintf("stop router %s", key), procs,
		func(env map[string]string) bool { return env[envRouter] == key.String() }, d.runFile(key))
}
