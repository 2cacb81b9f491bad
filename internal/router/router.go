// Package router is imago's local traffic router: a reverse proxy, one detached
// process per service and environment, that splits requests between fleets by
// weight.
//
// The router reads its route from a route file (see File) that it watches through
// gocloud runtimevar (filevar). Whoever changes the route writes the file
// atomically with a higher generation; the router swaps its routing table
// atomically, so requests in flight finish on the table they started with and
// only new requests see the new one. An admin listener on loopback reports the
// generation it applies (GET /route) and per-fleet metrics (GET /metrics), and
// takes a new route pushed by whoever wrote the route file (PUT /route, with the
// bearer token the router wrote in its owner-only run file): a push applies at
// once, without waiting on the file watch, and the file stays the durable copy
// that a restarted router reads. Generations only move forward: a route older
// than the one applied, pushed or read late from the file, is ignored.
//
// A router runs inside an imago binary: RunIfChild, called first thing in main
// (and in TestMain of tests that start routers), turns the process into a router
// when IMAGO_ROUTER_CONFIG is set.
package router

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gocloud.dev/runtimevar"
	"gocloud.dev/runtimevar/filevar"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/httpx"
)

// RunIfChild runs a router and exits when the environment variable
// IMAGO_ROUTER_CONFIG names a route file; otherwise it returns at once. Call it
// first thing in main and in TestMain, so that a driver can start routers by
// re-executing the current binary.
func RunIfChild() {
	config := os.Getenv(EnvConfig)
	if config == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := Run(ctx, Options{Config: config, RunFile: os.Getenv(EnvRunFile)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s imago router: %v\n", time.Now().Format(time.RFC3339Nano), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Options configure Run.
type Options struct {
	// Config is the route file to serve and watch.
	Config string
	// RunFile is where to record pid and addresses once listening; empty derives
	// Home/run/<env>-<service>.router.json from Config.
	RunFile string
	// Log receives the router's log; nil logs to stderr.
	Log *log.Logger
	// PollInterval is how often the route file is re-read as a safety net besides
	// the runtimevar watch; 0 means 2s, negative disables polling.
	PollInterval time.Duration
	// DrainTimeout bounds the graceful shutdown; 0 means 8s.
	DrainTimeout time.Duration
	// Timeouts of the proxy; zero fields take their defaults.
	Timeouts Timeouts
	// Ready, if set, is called with the run info once the router listens.
	Ready func(RunInfo)
}

// Timeouts bound how long the router waits on clients and fleets. A reverse
// proxy must not cut a long answer (a download, a stream) or a long upload, so
// no request has a deadline as a whole: instead its body and its answer must
// keep moving, as nginx's client_body_timeout, send_timeout and
// proxy_read_timeout ask (60 s there too).
type Timeouts struct {
	// ReadHeader bounds the wait for a request's header (slowloris); default 10s.
	ReadHeader time.Duration
	// Idle is how long a kept-alive client connection may wait for its next
	// request; default 75s.
	Idle time.Duration
	// Stall is how long a request may make no progress: between two reads of
	// its body from the client, two writes of its answer to the client, two
	// reads from (or writes to) the fleet, and until the fleet's answer starts.
	// A request that stalls longer is cut (502 before the answer started).
	// Default 60s.
	Stall time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = 10 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 75 * time.Second
	}
	if t.Stall <= 0 {
		t.Stall = 60 * time.Second
	}
	return t
}

// RunFilePath derives the run file of the router whose route file is config
// (Home/routes/<env>/<service>.json → Home/run/<env>-<service>.router.json).
func RunFilePath(config string) string {
	envDir := filepath.Dir(config)
	home := filepath.Dir(filepath.Dir(envDir))
	service := strings.TrimSuffix(filepath.Base(config), ".json")
	return filepath.Join(home, "run", filepath.Base(envDir)+"-"+service+".router.json")
}

// Run serves the route in opts.Config until ctx is done, then shuts down
// gracefully, letting requests in flight finish (up to opts.DrainTimeout).
func Run(ctx context.Context, opts Options) error {
	logger := opts.Log
	if logger == nil {
		logger = log.New(os.Stderr, "imago router: ", log.LstdFlags|log.Lmicroseconds)
	}
	if opts.RunFile == "" {
		opts.RunFile = RunFilePath(opts.Config)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 8 * time.Second
	}
	f, err := ReadFile(opts.Config)
	if err != nil {
		return fmt.Errorf("read route file: %w", err)
	}
	if f.Listen == "" {
		return fmt.Errorf("route file %s has no listen address", opts.Config)
	}
	tmo := opts.Timeouts.withDefaults()
	s := newServer(logger, tmo)
	s.Apply(f)
	token, err := newPushToken()
	if err != nil {
		return err
	}
	s.pushToken = token

	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", f.Listen, err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return fmt.Errorf("cannot open admin listener: %w", err)
	}

	v, err := openWatch(opts.Config, runtimevar.NewDecoder(File{}, runtimevar.JSONDecode),
		&filevar.Options{WaitDuration: watchWait})
	if err != nil && !noWatch(err) {
		ln.Close()
		adminLn.Close()
		return fmt.Errorf("watch route file: %w", err)
	}
	if err != nil {
		// The user's inotify instances are spent (fs.inotify.max_user_instances,
		// 128 by default, one per router): P8's 129th router failed here. Polling
		// at the watch's own wait applies a change as soon.
		logger.Printf("watch route file: %v; polling it every %s instead", err, watchWait)
		opts.PollInterval = watchWait
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if v != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.watch(watchCtx, v)
		}()
	}
	if opts.PollInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.poll(watchCtx, opts.Config, opts.PollInterval)
		}()
	}

	// ReadTimeout and WriteTimeout start each request's deadlines; ServeHTTP
	// pushes them forward as its body and answer move (see Timeouts).
	srv := &http.Server{Handler: s, ReadHeaderTimeout: tmo.ReadHeader, ReadTimeout: tmo.Stall, WriteTimeout: tmo.Stall,
		IdleTimeout: tmo.Idle, ErrorLog: logger}
	httpx.CloseSilentConnsOnShutdown(srv) // a drain waits for requests, not for clients' spare connections
	admin := httpx.NewServer(s.AdminHandler(), httpx.ShortTimeouts)
	admin.ErrorLog = logger
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() { serveErr <- admin.Serve(adminLn) }()

	start, err := selfStartTime()
	if err != nil {
		logger.Printf("cannot read own start time: %v", err)
	}
	ri := RunInfo{PID: os.Getpid(), Listen: ln.Addr().String(), Admin: adminLn.Addr().String(), StartTime: start, Config: opts.Config,
		AdminToken: token}
	data, _ := json.MarshalIndent(ri, "", "  ")
	if err := WriteAtomic(opts.RunFile, append(data, '\n')); err != nil {
		logger.Printf("cannot write run file: %v", err)
	}
	logger.Printf("listening on %s (admin %s), route generation %d", ri.Listen, ri.Admin, f.Generation)
	if opts.Ready != nil {
		opts.Ready(ri)
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Printf("shutting down, draining requests in flight")
	case runErr = <-serveErr:
		logger.Printf("serve: %v", runErr)
	}
	// Stop accepting first, then forget the run file (only if it is still ours),
	// so a successor can bind the address as soon as the run file is gone.
	ln.Close()
	if cur, err := ReadRunInfo(opts.RunFile); err == nil && cur.PID == ri.PID && cur.StartTime == ri.StartTime {
		os.Remove(opts.RunFile)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), opts.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil && !errors.Is(err, net.ErrClosed) {
		logger.Printf("drain: %v", err)
	}
	admin.Shutdown(drainCtx)
	stopWatch()
	if v != nil {
		v.Close()
	}
	wg.Wait()
	s.transport.CloseIdleConnections()
	logger.Printf("stopped")
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// watchWait is how long the route file watch waits before it reads the file
// again after a change or an error; without a watch, the poll interval.
const watchWait = 100 * time.Millisecond

// openWatch opens the route file watch (a test makes it fail as a system out
// of inotify instances does).
var openWatch = filevar.OpenVariable

// noWatch tells whether err, from opening the route file watch, says the
// system has no inotify instance or watch left for this user (EMFILE, ENOSPC,
// ENOMEM): the router then polls the file instead of failing to start.
func noWatch(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.ENOMEM)
}

// watch applies every new value of the route file variable.
func (s *Server) watch(ctx context.Context, v *runtimevar.Variable) {
	for {
		snap, err := v.Watch(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, runtimevar.ErrClosed) {
				return
			}
			s.log.Printf("watch route file: %v", err)
			continue
		}
		f, ok := snap.Value.(File)
		if !ok {
			continue
		}
		if s.Apply(f) {
			s.log.Printf("applied route generation %d", f.Generation)
		}
	}
}

// poll re-reads the route file now and then, in case the file watch missed a
// replace. It is a safety net; the watch applies changes at once.
func (s *Server) poll(ctx context.Context, path string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f, err := ReadFile(path)
		if err != nil {
			continue
		}
		if s.Apply(f) {
			s.log.Printf("applied route generation %d (found by polling; the file watch missed it)", f.Generation)
		}
	}
}

// Server is the router's proxy handler.
type Server struct {
	log       *log.Logger
	table     atomic.Pointer[table]
	applyMu   sync.Mutex
	metrics   *metrics
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	stall     time.Duration
	// pushToken authorizes PUT /route on the admin handler; empty refuses
	// every push.
	pushToken string
	// mirrorSlots bounds the mirrored requests in flight (rules.go).
	mirrorSlots chan struct{}
}

// NewServer returns a router handler with an empty table (every request gets 503
// until Apply) and the default Timeouts.
func NewServer(logger *log.Logger) *Server { return newServer(logger, Timeouts{}.withDefaults()) }

func newServer(logger *log.Logger, tmo Timeouts) *Server {
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	s := &Server{log: logger, stall: tmo.Stall, mirrorSlots: make(chan struct{}, mirrorSlots)}
	s.metrics = newMetrics(func() int64 { return s.Status().Generation })
	dialer := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	s.transport = &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &stallConn{Conn: c, stall: tmo.Stall}, nil
		},
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: tmo.Stall,
		ExpectContinueTimeout: time.Second,
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ri := pr.In.Context().Value(routeKey{}).(*routeInfo)
			pr.SetURL(&url.URL{Scheme: "http", Host: ri.target})
			// The instance sees the Host the client asked for (as nginx's
			// proxy_set_header Host $host, Traefik's passHostHeader), not its
			// own address, which SetURL would put there.
			pr.Out.Host = pr.In.Host
			// ReverseProxy has removed the client's Forwarded and X-Forwarded-*
			// headers before Rewrite: the router is the edge, so whatever a
			// client claims there is replaced, never trusted or appended to.
			pr.SetXForwarded()
		},
		Transport:    &retryTransport{base: s.transport, log: logger, srv: s},
		ErrorLog:     logger,
		ErrorHandler: s.proxyError,
	}
	return s
}

// table is an immutable routing table, apart from the balancing state.
type table struct {
	file   File
	mu     sync.Mutex // guards fleet.current
	fleets []*fleetRoute
	total  int
	// The route's rules (rules.go): header routes, stickiness, mirror.
	matches []matchRoute
	sticky  *contract.Stickiness
	mirror  *mirrorRoute
}

type fleetRoute struct {
	id      string
	weight  int
	current int // smooth weighted round robin state, under table.mu
	targets []string
	next    atomic.Uint64
}

func newTable(f File) *table {
	t := &table{file: f}
	byID := map[string]*fleetRoute{}
	for _, b := range f.Backends {
		if len(b.Targets) == 0 {
			continue
		}
		fr := &fleetRoute{id: b.FleetID, weight: b.Weight, targets: append([]string(nil), b.Targets...)}
		byID[b.FleetID] = fr
		if b.Weight > 0 {
			t.fleets = append(t.fleets, fr)
			t.total += b.Weight
		}
	}
	t.rules(f.RouteRules, byID)
	return t
}

// pick chooses a fleet by smooth weighted round robin (nginx's algorithm), which
// spreads each fleet's share evenly over any window of requests.
func (t *table) pick() *fleetRoute {
	if len(t.fleets) == 0 {
		return nil
	}
	if len(t.fleets) == 1 {
		return t.fleets[0]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var best *fleetRoute
	for _, f := range t.fleets {
		f.current += f.weight
		if best == nil || f.current > best.current {
			best = f
		}
	}
	best.current -= t.total
	return best
}

// target returns the fleet's next target, round robin.
func (f *fleetRoute) target() string {
	n := f.next.Add(1) - 1
	return f.targets[n%uint64(len(f.targets))]
}

// targetOtherThan returns the next target that is not avoid ("" when none).
func (f *fleetRoute) targetOtherThan(avoid string) string {
	for range f.targets {
		if t := f.target(); t != avoid {
			return t
		}
	}
	return ""
}

// Apply installs f as the routing table unless its generation is the one
// applied or an older one (a file watch reporting late, after a push of a newer
// route). It reports whether it changed the table. New requests use the new
// table; requests in flight keep their targets.
func (s *Server) Apply(f File) bool {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	cur := s.table.Load()
	if cur != nil && f.Generation <= cur.file.Generation {
		return false
	}
	if cur != nil && cur.file.Listen != "" && f.Listen != cur.file.Listen {
		s.log.Printf("route generation %d asks to listen on %s; a running router cannot move from %s (restart it)",
			f.Generation, f.Listen, cur.file.Listen)
		f.Listen = cur.file.Listen
	}
	if f.Backends == nil {
		f.Backends = []contract.Backend{}
	}
	// Idle connections to fleets that left the route are not closed here: a
	// switch back (a rollback, an aborted canary) finds them open instead of
	// dialing while requests wait, and the transport closes them after
	// IdleConnTimeout, or when their instance stops. Closing them all here
	// would also close the idle connections of the fleets the new table
	// routes to, which is every fleet a switch back returns to.
	s.table.Store(newTable(f))
	return true
}

// Status returns the route the server applies.
func (s *Server) Status() Status {
	t := s.table.Load()
	if t == nil {
		return Status{Backends: []contract.Backend{}}
	}
	return Status{Generation: t.file.Generation, Listen: t.file.Listen, Backends: t.file.Backends, RouteRules: t.file.RouteRules}
}

type routeKey struct{}

type routeInfo struct {
	fleet  *fleetRoute
	target string
}

// ServeHTTP proxies one request to a target of a fleet picked by weight.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t := s.table.Load()
	var f *fleetRoute
	var stick bool
	if t != nil {
		f, stick = t.choose(r)
	}
	if f == nil {
		http.Error(w, "imago router: no backend fleet is routed", http.StatusServiceUnavailable)
		s.metrics.observe(noFleet, http.StatusServiceUnavailable, time.Since(start))
		return
	}
	if stick {
		t.stickTo(w, f)
	}
	var body *capture
	mirror := t.mirrorFor(f)
	if mirror != nil {
		var ok bool
		if r, body, ok = captureBody(r); !ok {
			mirror = nil
			s.metrics.mirrorDropped.Inc()
		}
	}
	ri := &routeInfo{fleet: f, target: f.target()}
	sw := &httpx.StatusWriter{ResponseWriter: w}
	pw, pr := s.progress(sw, r)
	s.proxy.ServeHTTP(pw, pr.WithContext(context.WithValue(pr.Context(), routeKey{}, ri)))
	if mirror != nil {
		s.sendMirror(mirror, r, body)
	}
	status := sw.Status
	if status == 0 {
		status = http.StatusOK
	}
	s.metrics.observe(f.id, status, time.Since(start))
}

// progress makes a request's connection deadlines follow its progress: each
// read of its body and each write of its answer pushes them s.stall ahead, so a
// transfer that keeps moving is never cut and one that stalls is. Once the body
// is read, the read deadline is lifted: the server's read then only watches for
// the client leaving, and must not cancel a long answer.
func (s *Server) progress(w *httpx.StatusWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	if s.stall <= 0 {
		return w, r
	}
	rc := http.NewResponseController(w)
	if r.Body == nil || r.Body == http.NoBody {
		_ = rc.SetReadDeadline(time.Time{})
	} else {
		r.Body = &progressBody{ReadCloser: r.Body, rc: rc, stall: s.stall}
	}
	return &progressWriter{StatusWriter: w, rc: rc, stall: s.stall}, r
}

// progressWriter pushes the write deadline forward on every write.
type progressWriter struct {
	*httpx.StatusWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (p *progressWriter) WriteHeader(code int) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.stall))
	p.StatusWriter.WriteHeader(code)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.stall))
	return p.StatusWriter.Write(b)
}

// Unwrap lets http.ResponseController (flush, hijack) reach the connection.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.StatusWriter }

// progressBody pushes the read deadline forward on every read of the body, and
// lifts it at the end.
type progressBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.stall))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// stallConn is a connection to a fleet that must not sit still for stall: every
// read or write pushes both deadlines forward (the wait for an answer goes on
// while a long request body is still being sent), so a fleet that stops
// answering, or reading, fails the request instead of holding it forever.
type stallConn struct {
	net.Conn
	stall time.Duration
}

func (c *stallConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(c.stall))
	return c.Conn.Read(p)
}

func (c *stallConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(c.stall))
	return c.Conn.Write(p)
}

func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ri, _ := r.Context().Value(routeKey{}).(*routeInfo)
	if r.Context().Err() != nil {
		// The client went away; there is nobody to answer.
		if sw := statusWriter(w); sw != nil {
			sw.Status = 499
		}
		return
	}
	if ri != nil {
		s.log.Printf("proxy %s %s to fleet %s target %s: %v", r.Method, r.URL.Path, ri.fleet.id, ri.target, err)
	} else {
		s.log.Printf("proxy %s %s: %v", r.Method, r.URL.Path, err)
	}
	w.WriteHeader(http.StatusBadGateway)
}

// statusWriter finds the StatusWriter under w.
func statusWriter(w http.ResponseWriter) *httpx.StatusWriter {
	switch w := w.(type) {
	case *httpx.StatusWriter:
		return w
	case *progressWriter:
		return w.StatusWriter
	}
	return nil
}

// retryTransport retries an idempotent request without a body (GET, HEAD) when the
// target failed before answering — refused, reset, closed while idle — on a target
// of the current routing table other than the one that failed, at most twice. An
// instance going away (terminated after a switch, or dying) then never surfaces as
// an error: after a switch the retry goes to the new fleet.
type retryTransport struct {
	base http.RoundTripper
	log  *log.Logger
	srv  *Server
}

func (rt *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(req)
	ri, _ := req.Context().Value(routeKey{}).(*routeInfo)
	for attempt := 0; err != nil && attempt < 2 && ri != nil && retryable(req, err); attempt++ {
		alt := rt.alternative(ri, req.URL.Host)
		if alt == "" {
			return nil, err
		}
		rt.log.Printf("target %s of fleet %s failed %s %s (%v); retrying on %s", req.URL.Host, ri.fleet.id, req.Method, req.URL.Path, err, alt)
		req = req.Clone(req.Context())
		req.URL.Host = alt
		ri.target = alt
		resp, err = rt.base.RoundTrip(req)
	}
	return resp, err
}

// alternative picks a target of the current table other than failed: the current
// table first (it may have switched since the request was routed), then the
// request's own fleet.
func (rt *retryTransport) alternative(ri *routeInfo, failed string) string {
	if t := rt.srv.table.Load(); t != nil {
		if f := t.pick(); f != nil {
			if alt := f.targetOtherThan(failed); alt != "" {
				return alt
			}
		}
	}
	return ri.fleet.targetOtherThan(failed)
}

// maxPushBytes bounds a pushed route: 10,000 targets take ~300 KB.
const maxPushBytes = 32 << 20

// newPushToken returns a random token for PUT /route.
func newPushToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("push token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// pushAllowed reports whether r carries the push token.
func (s *Server) pushAllowed(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.pushToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.pushToken)) == 1
}

func retryable(req *http.Request, err error) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	return req.Context().Err() == nil && err != nil
}

// AdminHandler serves GET /route, GET /metrics and GET /healthz, and PUT /route
// for a client holding the push token (see Run).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	writeStatus := func(w http.ResponseWriter) {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Status())
	}
	mux.HandleFunc("GET /route", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		writeStatus(w)
	})
	mux.HandleFunc("PUT /route", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !s.pushAllowed(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imago router"`)
			http.Error(w, "imago router: PUT /route needs the bearer token of the router's run file", http.StatusUnauthorized)
			return
		}
		var f File
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPushBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "imago router: bad route: "+err.Error(), http.StatusBadRequest)
			return
		}
		if f.Generation <= 0 {
			http.Error(w, "imago router: bad route: generation must be positive", http.StatusBadRequest)
			return
		}
		if !s.Apply(f) {
			// Not newer than the route applied: the pusher picks a
			// generation above the one reported.
			w.WriteHeader(http.StatusConflict)
			writeStatus(w)
			return
		}
		s.log.Printf("applied route generation %d (pushed)", f.Generation)
		writeStatus(w)
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return mux
}
