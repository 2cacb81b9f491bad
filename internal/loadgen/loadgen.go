// Package loadgen is an HTTP load generator for tests and benchmarks: a fixed
// number of clients send GET requests to one URL in a closed loop (each sends
// its next request when the previous one finished) and the results are tallied
// in phases, so a test can tell what clients saw before, during and after a
// cutover:
//
//	run := loadgen.Start(ctx, loadgen.Options{URL: "http://" + listen + "/"})
//	... // steady state on v1
//	run.Mark("cutover")
//	... // switch the route to v2
//	run.Mark("after")
//	rep := run.Stop()
//	after, _ := rep.Phase("after")
//	// after.Failures() == 0, after.BodiesWithPrefix("hello from v1") == 0
//
// What it measures is what a real client sees: each client has its own
// http.Transport and so its own keep-alive connection (Options.NoKeepAlive opens
// a new connection per request instead), requests go through net/http's client
// (which, like any Go client, transparently retries an idempotent request whose
// reused connection the server had just closed), and a request's latency runs
// from sending it to having read its whole body.
//
// A request counts in the phase that was current when it was sent, even if it
// completes after the next Mark. A run is always bounded: it ends when its
// context is done, when Stop is called, or after Options.MaxDuration, whichever
// comes first; requests in flight then complete (within Options.Timeout) and
// count, none is cut off and miscounted as a failure.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a run.
type Options struct {
	// URL is requested with GET by every client.
	URL string
	// Clients is the number of concurrent clients; default 32.
	Clients int
	// Timeout bounds one request, from sending it to reading its whole body; a
	// request that takes longer counts as a transport error. Default 10s.
	Timeout time.Duration
	// NoKeepAlive makes every request open (and close) its own connection, as
	// clients that do not pool connections do. Mind the ephemeral ports: each
	// closed connection waits in TIME_WAIT for a minute, so thousands of
	// requests a second for minutes can exhaust them.
	NoKeepAlive bool
	// MaxDuration ends the run by itself, in case neither its context nor Stop
	// does; default 10 minutes.
	MaxDuration time.Duration
	// ErrorPause is how long a client waits after a transport error before its
	// next request, so that a server that is down is not hammered in a tight
	// loop (a refused connection fails in microseconds). Default 10ms; negative
	// for no pause.
	ErrorPause time.Duration
	// ThinkTime is how long a client waits after each answer before its next
	// request (an open-ended trickle rather than a tight loop, for a server
	// that must not be saturated, such as VMs under software emulation).
	// Default none.
	ThinkTime time.Duration
}

// Defaults.
const (
	DefaultClients     = 32
	DefaultTimeout     = 10 * time.Second
	DefaultMaxDuration = 10 * time.Minute
	DefaultErrorPause  = 10 * time.Millisecond
)

// Limits of what a phase keeps, so memory stays bounded however long a run is.
const (
	// BodyKeyLen is how many bytes of a response body make its key in
	// Phase.Bodies (after trimming white space at both ends).
	BodyKeyLen = 256
	// MaxBodies is how many distinct body keys a phase tallies; the answers
	// with further bodies are tallied under OtherBodies.
	MaxBodies = 1000
	// OtherBodies is the key of the answers whose body did not fit in MaxBodies.
	OtherBodies = "(other bodies)"
	// maxErrorSamples is how many distinct transport error messages a phase keeps.
	maxErrorSamples = 5
	// maxBodyRead is how much of a body is read into memory; the rest is
	// discarded (but read, so the connection can be reused).
	maxBodyRead = 64 << 10
)

// Phase is what the clients saw during one phase of a run (or, in
// Report.Total, during all of it).
type Phase struct {
	Name string `json:"name"`
	// Start is when the phase began (Start or Mark); Duration how long it
	// lasted (up to the next Mark, the end of the run, or now for a Snapshot).
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`

	// Requests counts the requests sent in the phase that completed: with a
	// response, or with a transport error.
	Requests int `json:"requests"`
	// TransportErrors counts requests that got no response: connection refused
	// or reset, timeouts, malformed answers.
	TransportErrors int `json:"transportErrors"`
	// ServerErrors counts responses with a 5xx status.
	ServerErrors int `json:"serverErrors"`
	// Status counts responses per status code.
	Status map[int]int `json:"status"`
	// Bodies counts responses (of any status) per body: the body's first
	// BodyKeyLen bytes with white space trimmed at both ends, so "hello from
	// v1\n" counts as "hello from v1".
	Bodies map[string]int `json:"bodies"`
	// ErrorSamples holds the first few distinct transport error messages.
	ErrorSamples []string `json:"errorSamples,omitempty"`

	// Latencies over every completed request, responses and transport errors
	// alike. P50 and P99 come from a histogram and are within 2% (bounded by
	// the fastest and slowest request); Mean and Max are exact.
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
	Mean time.Duration `json:"mean"`
	Max  time.Duration `json:"max"`
}

// Failures counts transport errors and 5xx responses.
func (p Phase) Failures() int { return p.TransportErrors + p.ServerErrors }

// FailureRate is Failures / Requests, 0 when there were no requests.
func (p Phase) FailureRate() float64 {
	if p.Requests == 0 {
		return 0
	}
	return float64(p.Failures()) / float64(p.Requests)
}

// RPS is the rate of completed requests over the phase's duration.
func (p Phase) RPS() float64 {
	if p.Duration <= 0 {
		return 0
	}
	return float64(p.Requests) / p.Duration.Seconds()
}

// BodiesWithPrefix counts the responses whose body key starts with prefix, e.g.
// "hello from v1" counts v1's answers and v1's injected failures alike.
func (p Phase) BodiesWithPrefix(prefix string) int {
	n := 0
	for b, c := range p.Bodies {
		if strings.HasPrefix(b, prefix) {
			n += c
		}
	}
	return n
}

// String is a one-line summary, for logs.
func (p Phase) String() string {
	keys := make([]string, 0, len(p.Bodies))
	for b := range p.Bodies {
		keys = append(keys, b)
	}
	sort.Strings(keys)
	var bodies []string
	for _, b := range keys {
		bodies = append(bodies, fmt.Sprintf("%q:%d", b, p.Bodies[b]))
	}
	return fmt.Sprintf("%s: %d requests in %v (%.0f/s), %d transport errors, %d 5xx, p50 %v, p99 %v, max %v, bodies {%s}",
		p.Name, p.Requests, p.Duration.Round(time.Millisecond), p.RPS(), p.TransportErrors, p.ServerErrors,
		p.P50, p.P99, p.Max, strings.Join(bodies, " "))
}

// Report is the result of a run.
type Report struct {
	// Phases in the order they began; the first is named "start".
	Phases []Phase `json:"phases"`
	// Total merges every phase; its Name is "total".
	Total Phase `json:"total"`
}

// Phase returns the first phase named name.
func (r Report) Phase(name string) (Phase, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return Phase{}, false
}

// Run is a running load generator.
type Run struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when every client has returned

	mu      sync.Mutex
	phases  []*phase
	ended   time.Time // when the run was told to end
	stopped bool

	cur atomic.Pointer[phase]
}

// Start starts opts.Clients clients requesting opts.URL until ctx is done, Stop
// is called or opts.MaxDuration passed. The first phase is named "start".
func Start(ctx context.Context, opts Options) *Run {
	if opts.Clients <= 0 {
		opts.Clients = DefaultClients
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = DefaultMaxDuration
	}
	if opts.ErrorPause == 0 {
		opts.ErrorPause = DefaultErrorPause
	}
	r := &Run{opts: opts, done: make(chan struct{})}
	r.ctx, r.cancel = context.WithTimeout(ctx, opts.MaxDuration)
	first := newPhase("start", time.Now())
	r.phases = []*phase{first}
	r.cur.Store(first)

	var wg sync.WaitGroup
	for range opts.Clients {
		wg.Go(r.client)
	}
	go func() {
		<-r.ctx.Done()
		r.mu.Lock()
		r.ended = time.Now()
		r.mu.Unlock()
		wg.Wait()
		close(r.done)
	}()
	return r
}

// Mark ends the current phase and starts a new one named name. After the run
// ended it does nothing.
func (r *Run) Mark(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ended.IsZero() {
		return
	}
	now := time.Now()
	p := newPhase(name, now)
	r.phases[len(r.phases)-1].setEnd(now)
	r.phases = append(r.phases, p)
	r.cur.Store(p)
}

// Snapshot returns the current phase so far, without stopping the run. Requests
// in flight are not in it yet.
func (r *Run) Snapshot() Phase {
	r.mu.Lock()
	p, ended := r.phases[len(r.phases)-1], r.ended
	r.mu.Unlock()
	if ended.IsZero() {
		ended = time.Now()
	}
	return p.snapshot(ended)
}

// Done is closed once the run has ended (its context is done, Stop was called or
// MaxDuration passed) and every client has returned.
func (r *Run) Done() <-chan struct{} { return r.done }

// Stop ends the run, waits for the requests in flight (at most Options.Timeout)
// and returns the report. It may be called more than once, also after the run
// ended by itself; every call returns the same report.
func (r *Run) Stop() Report {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.phases[len(r.phases)-1]
	if !r.stopped {
		last.setEnd(r.ended)
		r.stopped = true
	}
	rep := Report{}
	total := newPhase("total", r.phases[0].start)
	for _, p := range r.phases {
		rep.Phases = append(rep.Phases, p.snapshot(r.ended))
		total.merge(p)
	}
	total.setEnd(r.ended)
	rep.Total = total.snapshot(r.ended)
	return rep
}

// client sends requests in a loop until the run ends.
func (r *Run) client() {
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: r.opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     90 * time.Second,
		DisableKeepAlives:   r.opts.NoKeepAlive,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: r.opts.Timeout}
	for r.ctx.Err() == nil {
		p := r.cur.Load()
		start := time.Now()
		status, body, err := get(c, r.opts.URL)
		p.record(status, body, err, time.Since(start))
		switch {
		case err != nil && r.opts.ErrorPause > 0:
			r.wait(r.opts.ErrorPause)
		case err == nil && r.opts.ThinkTime > 0:
			r.wait(r.opts.ThinkTime)
		}
	}
}

// wait waits d, or less if the run ends.
func (r *Run) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	}
}

// get requests url and reads the whole body. The request does not carry the
// run's context: ending the run lets requests in flight complete.
func get(c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return 0, "", fmt.Errorf("read the body of a %d answer: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, string(b), nil
}

// phase accumulates the results of one phase.
type phase struct {
	name  string
	start time.Time

	mu           sync.Mutex
	end          time.Time // zero while current
	requests     int
	transport    int
	server       int
	status       map[int]int
	bodies       map[string]int
	errorSamples []string
	hist         histogram
	sum          time.Duration
	min, max     time.Duration
}

func newPhase(name string, start time.Time) *phase {
	return &phase{name: name, start: start, status: map[int]int{}, bodies: map[string]int{}}
}

func (p *phase) setEnd(t time.Time) {
	p.mu.Lock()
	if p.end.IsZero() {
		p.end = t
	}
	p.mu.Unlock()
}

func bodyKey(body string) string {
	if len(body) > BodyKeyLen {
		body = body[:BodyKeyLen]
	}
	return strings.TrimSpace(body)
}

func (p *phase) record(status int, body string, err error, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	p.observe(d)
	if err != nil {
		p.transport++
		p.sample(err.Error())
		return
	}
	p.status[status]++
	if status >= 500 && status <= 599 {
		p.server++
	}
	p.countBody(bodyKey(body), 1)
}

func (p *phase) observe(d time.Duration) {
	p.hist.add(d, 1)
	p.sum += d
	if p.hist.n == 1 || d < p.min {
		p.min = d
	}
	p.max = max(p.max, d)
}

func (p *phase) countBody(key string, n int) {
	if _, ok := p.bodies[key]; !ok && len(p.bodies) >= MaxBodies {
		key = OtherBodies
	}
	p.bodies[key] += n
}

func (p *phase) sample(msg string) {
	if len(p.errorSamples) >= maxErrorSamples {
		return
	}
	for _, s := range p.errorSamples {
		if s == msg {
			return
		}
	}
	p.errorSamples = append(p.errorSamples, msg)
}

// merge adds q's results to p (for the total).
func (p *phase) merge(q *phase) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests += q.requests
	p.transport += q.transport
	p.server += q.server
	for s, n := range q.status {
		p.status[s] += n
	}
	for b, n := range q.bodies {
		p.countBody(b, n)
	}
	for _, s := range q.errorSamples {
		p.sample(s)
	}
	for i, n := range q.hist.counts {
		p.hist.counts[i] += n
	}
	p.hist.n += q.hist.n
	if q.hist.n > 0 && (p.hist.n == q.hist.n || q.min < p.min) {
		p.min = q.min
	}
	p.sum += q.sum
	p.max = max(p.max, q.max)
}

// snapshot returns the results so far; a current phase lasts until now.
func (p *phase) snapshot(now time.Time) Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	end := p.end
	if end.IsZero() {
		end = now
	}
	out := Phase{
		Name: p.name, Start: p.start, Duration: end.Sub(p.start),
		Requests: p.requests, TransportErrors: p.transport, ServerErrors: p.server,
		Status: make(map[int]int, len(p.status)), Bodies: make(map[string]int, len(p.bodies)),
		ErrorSamples: append([]string(nil), p.errorSamples...),
		Max:          p.max,
	}
	for s, n := range p.status {
		out.Status[s] = n
	}
	for b, n := range p.bodies {
		out.Bodies[b] = n
	}
	if p.requests > 0 {
		out.Mean = p.sum / time.Duration(p.requests)
		out.P50 = min(max(p.hist.quantile(0.50), p.min), p.max)
		out.P99 = min(max(p.hist.quantile(0.99), p.min), p.max)
	}
	return out
}

// histogram counts durations in logarithmic buckets 2% wide: bucket 0 holds
// everything up to histMin, bucket i > 0 holds (histMin*g^(i-1), histMin*g^i].
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	histMin     = time.Microsecond
	histGrowth  = 1.02
	histBuckets = 1300 // histMin * 1.02^1300 is about 5 hours
)

var logGrowth = math.Log(histGrowth)

func bucketOf(d time.Duration) int {
	if d <= histMin {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(histMin)) / logGrowth))
	return min(max(i, 1), histBuckets-1)
}

// bucketTop is the upper bound of bucket i.
func bucketTop(i int) time.Duration {
	return time.Duration(float64(histMin) * math.Pow(histGrowth, float64(i)))
}

func (h *histogram) add(d time.Duration, n uint64) {
	h.counts[bucketOf(d)] += n
	h.n += n
}

// quantile returns the upper bound of the bucket holding the q-quantile.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketTop(i)
		}
	}
	return bucketTop(histBuckets - 1)
}
