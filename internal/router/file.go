package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/imago/imago/internal/atomicfile"
	"github.com/imago/imago/internal/contract"
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
	Backends   []contract.Backend `json:"backends"`
	contract.RouteRules
}

// Status is what a router's admin endpoint GET /route reports: the route it applies.
type Status struct {
	Generation int64              `json:"generation"`
	Listen     string             `json:"listen"`
	Backends   []contract.Backend `json:"backends"`
	contract.RouteRules
}

// RunInfo is the router's run file, written once the router listens.
type RunInfo struct {
	PID       int    `json:"pid"`
	Listen    string `json:"listen"`
	Admin     string `json:"admin"`
	StartTime uint64 `json:"starttime"` // /proc/<pid>/stat field 22, in clock ticks since boot
	Config    string `json:"config"`    // route file the router watches
	// AdminToken authorizes pushing a route (PUT /route on Admin): a secret
	// of this router process, readable only by its owner, as the route file.
	AdminToken string `json:"adminToken,omitempty"`
}

// WriteFile writes a route file atomically (temporary file + rename).
func WriteFile(path string, f File) error {
	if f.Backends == nil {
		f.Backends = []contract.Backend{}
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

// ErrNotNewer is PushRoute's error when the router already applies a
// generation at least as new as the pushed one (a push that failed to return,
// or a route file that went away): push again with a generation above the
// Status it returns.
var ErrNotNewer = errors.New("the router applies a route at least as new")

// PushRoute gives the router whose admin address is admin the route f (PUT
// /route), authorized by token (RunInfo.AdminToken), and returns the route the
// router applies after it, f itself unless the error wraps ErrNotNewer. The
// route file is the durable copy, which a restarted router reads: write f there
// too, and count the switch done only once both are done.
func PushRoute(ctx context.Context, admin, token string, f File) (Status, error) {
	var st Status
	if f.Backends == nil {
		f.Backends = []contract.Backend{}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return st, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+admin+"/route", bytes.NewReader(data))
	if err != nil {
		return st, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	// Idempotent (the same generation applies once), so the transport may send
	// it again when a kept connection turns out closed; nil: not on the wire.
	req.Header["Idempotency-Key"] = nil
	code, body, err := adminDo(pushClient, req)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK && code != http.StatusConflict {
		return st, adminError(req, code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("router admin %s: bad PUT /route answer: %w", admin, err)
	}
	if code == http.StatusConflict {
		return st, fmt.Errorf("push route generation %d to router admin %s: %w (generation %d)", f.Generation, admin, ErrNotNewer, st.Generation)
	}
	return st, nil
}

var adminClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// pushClient keeps its connection to a router's admin port between pushes: a
// route switch then costs one request, not a connection and a request.
var pushClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second},
}

func adminGet(ctx context.Context, admin, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return nil, err
	}
	code, body, err := adminDo(adminClient, req)
	if err == nil && code != http.StatusOK {
		err = adminError(req, code, body)
	}
	return body, err
}

func adminDo(c *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, body, err
}

func adminError(req *http.Request, code int, body []byte) error {
	msg := bytes.TrimSpace(body[:min(len(body), 300)])
	return fmt.Errorf("router admin %s %s%s: %d %s: %s", req.Method, req.URL.Host, req.URL.Path, code, http.StatusText(code), msg)
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
