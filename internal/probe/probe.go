// Package probe is imago's one HTTP health probe: the WaitHealthy activity,
// the traffic guard of SetRoute and the bench's health wait all probe
// instances through it.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// FirstRetry is how long a health wait waits after its first unanswered round
// (Backoff).
const FirstRetry = 10 * time.Millisecond

// Backoff returns the waits between the rounds of a health wait: FirstRetry,
// then twice the last wait, up to interval, then interval. An instance that
// needs a few milliseconds to listen is found in milliseconds, not after a
// whole interval (1 s by default), and a slow one is probed every interval
// after about log2(interval/FirstRetry) quick rounds.
func Backoff(interval time.Duration) func() time.Duration {
	wait := min(FirstRetry, interval)
	return func() time.Duration {
		w := wait
		wait = min(2*wait, interval)
		return w
	}
}

// MaxConcurrent bounds the probes of one call in flight at once.
const MaxConcurrent = 32

// maxBody is how much of an answer is read.
const maxBody = 64 << 10

// Client is the client of health probes and smoke checks: 5 s in all (each
// probe's deadline), and no redirects (an instance's 3xx is its answer;
// following it could lead the worker anywhere the instance points).
func Client() *http.Client {
	return &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext, ResponseHeaderTimeout: 5 * time.Second, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get GETs http://addr+path with c and returns the status and the answer's
// first 64 KiB.
func Get(ctx context.Context, c *http.Client, addr, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, string(body), err
}

// Healthy probes addr once: GET path must answer 2xx. The error says why not:
// the request's error, or "<path> answered <status>".
func Healthy(ctx context.Context, c *http.Client, addr, path string) error {
	status, _, err := Get(ctx, c, addr, path)
	switch {
	case err != nil:
		return err
	case status < 200 || status > 299:
		return fmt.Errorf("%s answered %d", path, status)
	}
	return nil
}

// All probes every address (Healthy), at most MaxConcurrent at a time, so a
// call takes as long as the slowest probe, not the sum of them; each probe is
// bounded by c's timeout. It returns each address' outcome, nil for healthy.
func All(ctx context.Context, c *http.Client, addrs []string, path string) []error {
	return probe(ctx, c, addrs, path, false)
}

// Any reports whether one of addrs is healthy, probing them as All does and
// stopping at the first healthy answer (probes still in flight are cancelled).
func Any(ctx context.Context, c *http.Client, addrs []string, path string) bool {
	for _, err := range probe(ctx, c, addrs, path, true) {
		if err == nil {
			return true
		}
	}
	return false
}

var errFound = errors.New("a healthy instance answered")

func probe(ctx context.Context, c *http.Client, addrs []string, path string, stopAtHealthy bool) []error {
	out := make([]error, len(addrs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(MaxConcurrent)
	for i, addr := range addrs {
		g.Go(func() error {
			out[i] = Healthy(gctx, c, addr, path)
			if out[i] == nil && stopAtHealthy {
				return errFound // cancels gctx: the other probes end
			}
			return nil
		})
	}
	_ = g.Wait() // every probe's outcome is in out
	return out
}
