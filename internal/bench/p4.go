package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/spec"
	"github.com/prometheus/procfs"
)

// The local driver runs sim fleets in sim hosts started by re-executing this
// binary: serve as one when started so, before main parses its flags. (The
// binary's main should call local.RunSimIfChild itself; this makes sure.)
func init() { local.RunSimIfChild() }

func init() {
	Register(Scenario{ID: "P4", Name: "scale: rolling rollouts of 100, 1,000 and 10,000 sim instances", Run: runP4})
}

// P4 history limit: no rollout history may exceed it.
const p4MaxEvents = 10000

// p4Runs1000 and p4Runs10000 cap the runs of the large rollouts (each takes a
// while).
const (
	p4Runs1000  = 5
	p4Runs10000 = 3
)

func runP4(ctx context.Context, env *Env) ([]Figure, error) {
	im, err := startWithWorker(ctx, env)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	type result struct {
		times    []time.Duration
		events   int   // most events of one history
		maxEvent int   // largest event, bytes
		history  int64 // largest history, bytes
	}
	measure := func(size, runs int) (result, error) {
		var res result
		listen, err := routerAddr()
		if err != nil {
			return res, err
		}
		svc := fmt.Sprintf("sim%d", size)
		v1, v2, err := im.SimImages(ctx, svc)
		if err != nil {
			return res, err
		}
		mk := func(img, version string) (spec.Rollout, error) {
			return im.SimSpec(svc, listen, img, version, size)
		}
		// The fleet the first measured rollout replaces.
		r, err := mk(v1, "v1")
		if err != nil {
			return res, err
		}
		if _, err := im.Rollout(ctx, r); err != nil {
			return res, fmt.Errorf("initial rollout of %d: %w", size, err)
		}
		for i := 0; i < runs; i++ {
			img, version := v2, "v2"
			if i%2 == 1 {
				img, version = v1, "v1"
			}
			r, err := mk(img, version)
			if err != nil {
				return res, err
			}
			start := time.Now()
			run, err := im.StartRollout(ctx, r)
			if err != nil {
				return res, err
			}
			var out contract.RolloutResult
			if err := run.Get(ctx, &out); err != nil {
				return res, fmt.Errorf("rolling rollout of %d instances: %w", size, err)
			}
			took := time.Since(start)
			res.times = append(res.times, took)
			if out.Instances != size {
				return res, fmt.Errorf("rolling rollout of %d instances ended with %d", size, out.Instances)
			}
			if body, err := getBody(listen); err != nil || body != version {
				return res, fmt.Errorf("after rolling to %s the router answered %q, %v", version, body, err)
			}
			n, biggest, total, err := im.HistoryStats(ctx, run.GetID(), run.GetRunID())
			if err != nil {
				return res, err
			}
			res.events, res.maxEvent, res.history = max(res.events, n), max(res.maxEvent, biggest), max(res.history, total)
			env.logf("P4: %d instances rolled in %s, %d events, largest event %d B, history %d B", size, took.Round(time.Millisecond), n, biggest, total)
		}
		return res, nil
	}
	small, err := measure(100, env.Runs)
	if err != nil {
		return nil, err
	}
	runs := min(env.Runs, p4Runs1000)
	big, err := measure(1000, runs)
	if err != nil {
		return nil, err
	}
	huge, err := measure(10000, min(env.Runs, p4Runs10000))
	if err != nil {
		return nil, err
	}
	t100, t1000, t10000 := Median(small.times), Median(big.times), Median(huge.times)
	ratio := float64(t1000) / float64(t100)
	ratio10k := float64(t10000) / float64(t1000)
	figs := []Figure{
		{Name: fmt.Sprintf("rolling rollout, 100 sim instances, waves 10%% (median of %d)", len(small.times)), Value: Dur(t100), Goal: "-", Met: true},
		{Name: fmt.Sprintf("rolling rollout, 1,000 sim instances, waves 10%% (median of %d)", len(big.times)), Value: Dur(t1000), Goal: "-", Met: true},
		{Name: "time(1000) / time(100)", Value: fmt.Sprintf("%.2f", ratio), Goal: "≤ 12", Met: ratio <= 12},
		{Name: "events per rollout history, 100 instances (most of any run)", Value: fmt.Sprint(small.events), Goal: fmt.Sprintf("≤ %d", p4MaxEvents), Met: small.events <= p4MaxEvents},
		{Name: "events per rollout history, 1,000 instances (most of any run)", Value: fmt.Sprint(big.events), Goal: fmt.Sprintf("≤ %d", p4MaxEvents), Met: big.events <= p4MaxEvents},
		{Name: "largest history event (payload), 1,000 instances", Value: fmt.Sprintf("%.0f KB", float64(big.maxEvent)/1024), Goal: "< 2 MB", Met: big.maxEvent < 2<<20},
		{Name: "largest rollout history, 1,000 instances", Value: fmt.Sprintf("%.1f MB", float64(big.history)/(1<<20)), Goal: "< 10 MB (warning limit)", Met: big.history < 10<<20},
		{Name: fmt.Sprintf("rolling rollout, 10,000 sim instances, waves 10%% (median of %d)", len(huge.times)), Value: Dur(t10000), Goal: "-", Met: true},
		{Name: "time(10000) / time(1000)", Value: fmt.Sprintf("%.2f", ratio10k), Goal: "≤ 12", Met: ratio10k <= 12},
		{Name: "events per rollout history, 10,000 instances (most of any run)", Value: fmt.Sprint(huge.events), Goal: fmt.Sprintf("≤ %d", p4MaxEvents), Met: huge.events <= p4MaxEvents},
		{Name: "largest history event (payload), 10,000 instances", Value: fmt.Sprintf("%.0f KB", float64(huge.maxEvent)/1024), Goal: "< 2 MB", Met: huge.maxEvent < 2<<20},
		{Name: "largest rollout history, 10,000 instances", Value: fmt.Sprintf("%.1f MB", float64(huge.history)/(1<<20)), Goal: "< 10 MB (warning limit)", Met: huge.history < 10<<20},
	}
	return figs, nil
}

// SimImages imports two sim images of service svc, answering "v1" and "v2"
// (see local.IsSimImage), and returns their IDs.
func (im *Imago) SimImages(ctx context.Context, svc string) (v1, v2 string, err error) {
	var ids []string
	for _, version := range []string{"v1", "v2"} {
		dir, err := os.MkdirTemp(im.Home, "sim-image-")
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "README"), []byte("sim image "+version+"\n"), 0o644); err != nil {
			return "", "", err
		}
		img, err := im.Deps.Catalog.Import(ctx, dir, svc, []string{local.SimEntrypoint},
			map[string]string{"version": version, local.SimKindLabel: local.SimKind})
		if err != nil {
			return "", "", fmt.Errorf("import sim image %s: %w", version, err)
		}
		ids = append(ids, img.ID)
	}
	return ids[0], ids[1], nil
}

// SimSpec is a rolling rollout (waves of 10%) of size sim instances of service
// svc behind listen, checking that / answers version.
func (im *Imago) SimSpec(svc, listen, imageID, version string, size int) (spec.Rollout, error) {
	return im.Spec(imageID, func(r *spec.Rollout) {
		r.Service, r.Listen = svc, listen
		r.Fleet.Size = size
		r.Strategy = contract.Strategy{Type: contract.Rolling, Waves: "10%"}
		r.Health.Timeout = contract.Duration(2 * time.Minute)
		r.Checks = []contract.Check{{Path: "/", ExpectBody: version}}
	})
}

// HistoryStats counts the events of a workflow run and returns the count, the
// size of its largest event and the size of the whole history, in bytes.
func (im *Imago) HistoryStats(ctx context.Context, id, runID string) (events, largest int, total int64, err error) {
	err = eachEvent(ctx, im.Client, id, runID, func(ev *historypb.HistoryEvent) {
		events++
		n := proto.Size(ev)
		largest = max(largest, n)
		total += int64(n)
	})
	return events, largest, total, err
}

var (
	routerPortMu   sync.Mutex
	routerPortNext int
)

// routerAddr returns a free 127.0.0.1 address for a router below the kernel's
// ephemeral port range: an address from FreeAddr is released at once and, with
// thousands of sim listeners on ephemeral ports, may be taken before the router
// binds it.
func routerAddr() (string, error) {
	routerPortMu.Lock()
	defer routerPortMu.Unlock()
	if routerPortNext == 0 {
		lo := 32768
		if fs, err := procfs.NewDefaultFS(); err == nil {
			if r, err := fs.SysctlInts("net.ipv4.ip_local_port_range"); err == nil && len(r) == 2 && r[0] > 12000 {
				lo = r[0]
			}
		}
		routerPortNext = lo - 10000 + os.Getpid()%5000
	}
	for range 5000 {
		p := routerPortNext
		routerPortNext++
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr, nil
		}
	}
	return FreeAddr()
}

func getBody(listen string) (string, error) {
	resp, err := http.Get("http://" + listen + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("router answered %s: %s", resp.Status, b)
	}
	return strings.TrimSpace(string(b)), err
}
