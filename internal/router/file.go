package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/imago/imago/internal/atomicfile"
	"github.com/imago/imago/internal/provider"
	"github.com/prometheus/procfs"
)

// Environment variables of a router process.
const (
	// EnvConfig is the path of the route file; when set, RunIfChild runs a router.
	EnvConfig = "IMAGO_ROUTER_CONFIG"
	// EnvRunFile is where the router records its pid and addresses once it listens.
	// Optional: it defaults to Home/run/<env>-<service>.router.json, derived from
	// the route file path Home/routes/<env>/<service>.json.
	EnvRunFile = "IMAGO_ROUTER_RUNFILE"
	// EnvKey names the router ("<env>/<service>"); it marks the process so a
	// driver can find routers by scanning /proc.
	EnvKey = "IMAGO_ROUTER_KEY"
)

// File is the content of a route file, Home/routes/<env>/<service>.json.
type File struct {
	Generation int64              `json:"generation"`
	Listen     string             `json:"listen"`
	Backends   []provider.Backend `json:"backends"`
}

// Status is what a router's admin endpoint GET /route reports: the route it applies.
type Status struct {
	Generation int64              `json:"generation"`
	Listen     string             `json:"listen"`
	Backends   []provider.Backend `json:"backends"`
}

// RunInfo is the router's run file, written once the router listens.
type RunInfo struct {
	PID       int    `json:"pid"`
	Listen    string `json:"listen"`
	Admin     string `json:"admin"`
	StartTime uint64 `json:"starttime"` // /proc/<pid>/stat field 22, in clock ticks since boot
	Config    string `json:"config"`    // route file the router watches
}

// WriteFile writes a route file atomically (temporary file + rename).
func WriteFile(path string, f File) error {
	if f.Backends == nil {
		f.Backends = []provider.Backend{}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return WriteAtomic(path, append(data, '\n'))
}

// ReadFile reads a route file. A missing file yields an error satisfying
// errors.Is(err, fs.ErrNotExist).
func ReadFile(path string) (File, error) {
	var f File
	data, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("route file %s is corrupt: %w", path, err)
	}
	return f, nil
}

// ReadRunInfo reads a router run file.
func ReadRunInfo(path string) (RunInfo, error) {
	var ri RunInfo
	data, err := os.ReadFile(path)
	if err != nil {
		return ri, err
	}
	if err := json.Unmarshal(data, &ri); err != nil {
		return ri, fmt.Errorf("router run file %s is corrupt: %w", path, err)
	}
	return ri, nil
}

// WriteAtomic writes data to path atomically (internal/atomicfile: renameio),
// so readers see either the old or the new content, never a mix. The file is
// 0600 and directories it makes 0700: route, run and fleet files are imago's
// state, its user's alone.
func WriteAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data)
}

// GetStatus asks the router whose admin address is admin for the route it applies.
func GetStatus(ctx context.Context, admin string) (Status, error) {
	var st Status
	body, err := adminGet(ctx, admin, "/route")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("router admin %s: bad /route answer: %w", admin, err)
	}
	return st, nil
}

// GetMetrics returns the router's Prometheus text metrics.
func GetMetrics(ctx context.Context, admin string) (string, error) {
	body, err := adminGet(ctx, admin, "/metrics")
	return string(body), err
}

var adminClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

func adminGet(ctx context.Context, admin, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("router admin %s%s: %s", admin, path, resp.Status)
	}
	return body, nil
}

// selfStartTime returns this process's start time, field 22 of /proc/self/stat.
func selfStartTime() (uint64, error) {
	p, err := procfs.Self()
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return st.Starttime, nil
}
