// Package devserver runs an embedded, SQLite-backed Temporal server (the
// equivalent of `temporal server start-dev --db-filename ...`) with an optional
// web UI, inside the current process.
//
// It is built on go.temporal.io/server/temporal and
// github.com/temporalio/ui-server/v2, following the recipe of
// go.temporal.io/server/temporaltest (internal lite_server.go) and of the
// temporal CLI's devserver package.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// DefaultNamespace is used when Config.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultRetention is used when Config.Retention is zero.
	DefaultRetention = 30 * 24 * time.Hour
	// MinRetention is the server's minimum retention for local namespaces
	// (dynamic config system.namespaceMinRetentionLocal).
	MinRetention = time.Hour

	// defaultStartTimeout bounds Start when ctx has no deadline.
	defaultStartTimeout = 2 * time.Minute

	clusterName = "active"
)

// Config configures Start.
type Config struct {
	// DBPath is the SQLite database file. It is created, with the schema, on
	// first start; missing parent directories are created.
	DBPath string
	// Listen is the frontend gRPC host:port, e.g. "127.0.0.1:7233". Port 0
	// picks a free port. The host must be an IP address or "localhost"; an
	// empty host or 0.0.0.0 listens on all interfaces. A non-loopback host
	// needs AllowRemote.
	Listen string
	// UIListen is the web UI host:port, e.g. "127.0.0.1:8233". "" = no UI;
	// port 0 picks a free port. A non-loopback host needs AllowRemote.
	UIListen string
	// Namespace is the namespace to create; default "default".
	Namespace string
	// Retention is the namespace's workflow retention; default 30 days,
	// minimum 1 hour. Applied on creation and, if different, on every start.
	Retention time.Duration
	// SearchAttributes are custom search attributes to register in Namespace.
	// Registration is idempotent and runs on every start, so attributes can be
	// added to an existing database. SQLite limits the number of custom
	// attributes per type (e.g. 10 Keyword). An attribute already registered
	// with a different type is an error.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives server (and internal SDK client) logs at WARN and above.
	// nil discards them.
	Logger *slog.Logger
	// AllowRemote lets Listen and UIListen be non-loopback addresses (another
	// interface, or all of them). The server and its UI have no authentication:
	// anyone who reaches them can start, signal and terminate workflows and read
	// histories. Without it Start refuses such an address; with it Start logs a
	// warning.
	AllowRemote bool
	// CodecEndpoint is the web UI's remote codec endpoint (optional), e.g.
	// http://127.0.0.1:8234/codec: the browser POSTs encrypted payloads to
	// <endpoint>/decode (and /encode), so it must be reachable from the
	// browser and answer CORS for the UI's origin (internal/codec does).
	CodecEndpoint string
}

// Server is a running dev server. Create it with Start.
type Server struct {
	frontendAddr string
	namespace    string

	server temporal.Server
	ui     *uiServer
	logs   *logState

	stopOnce sync.Once
	stopErr  error
}

// Start starts the server and returns once the frontend answers, the
// namespace exists with the configured retention and search attributes, and
// the UI (if any) serves HTTP. ctx bounds the start-up only (2 minutes if it
// has no deadline); call Stop to shut the server down. On error nothing is
// left running.
func Start(ctx context.Context, cfg Config) (_ *Server, retErr error) {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	logger := newFilteredLogger(cfg.Logger)

	// Everything acquired below is released in reverse order on error.
	var cleanups []func()
	defer func() {
		if retErr != nil {
			for _, f := range slices.Backward(cleanups) {
				f()
			}
		}
	}()

	fe, err := parseListen("Listen", cfg.Listen)
	if err != nil {
		return nil, err
	}
	if err := checkReach(cfg, logger, "Listen", fe.bindIP, cfg.Listen); err != nil {
		return nil, err
	}
	dbPath, err := filepath.Abs(cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("devserver: DBPath %q: %w", cfg.DBPath, err)
	}

	// Choose and check ports while holding them, so a taken port is a clean
	// error here rather than a logger.Fatal inside the server.
	var ports portReserver
	cleanups = append(cleanups, ports.release)
	internalIP := fe.dialIP // other services and membership: loopback unless Listen names an IP
	frontendPort, err := ports.reserve(fe.bindIP, fe.port)
	if err != nil {
		return nil, fmt.Errorf("devserver: frontend address %s: %w", cfg.Listen, err)
	}
	services := map[string]config.Service{}
	for _, name := range temporal.DefaultServices { // frontend, history, matching, worker
		rpc := config.RPC{BindOnIP: internalIP.String()}
		membershipIP := internalIP
		if name == "frontend" {
			rpc.GRPCPort = frontendPort
			rpc.BindOnIP = fe.bindIP.String()
			membershipIP = fe.bindIP
		} else if rpc.GRPCPort, err = ports.reserve(internalIP, 0); err != nil {
			return nil, fmt.Errorf("devserver: reserving %s port: %w", name, err)
		}
		if rpc.MembershipPort, err = ports.reserve(membershipIP, 0); err != nil {
			return nil, fmt.Errorf("devserver: reserving %s membership port: %w", name, err)
		}
		services[name] = config.Service{RPC: rpc}
	}
	frontendAddr := net.JoinHostPort(fe.dialIP.String(), strconv.Itoa(frontendPort))

	// The UI listener is bound now and kept: it is handed to the HTTP server.
	var uiLn net.Listener
	if cfg.UIListen != "" {
		uiEP, err := parseListen("UIListen", cfg.UIListen)
		if err != nil {
			return nil, err
		}
		if err := checkReach(cfg, logger, "UIListen", uiEP.bindIP, cfg.UIListen); err != nil {
			return nil, err
		}
		uiLn, err = net.Listen("tcp", net.JoinHostPort(uiEP.bindIP.String(), strconv.Itoa(uiEP.port)))
		if err != nil {
			return nil, fmt.Errorf("devserver: UI address %s: %w", cfg.UIListen, err)
		}
		cleanups = append(cleanups, func() { _ = uiLn.Close() })
	}

	sqlCfg, err := prepareDatabase(dbPath, cfg)
	if err != nil {
		return nil, err
	}

	srvCfg := &config.Config{}
	srvCfg.Global.Membership = config.Membership{
		MaxJoinDuration:  30 * time.Second,
		BroadcastAddress: internalIP.String(),
	}
	// Global.Metrics nil = no-op metrics handler, PProf.Port 0 = no pprof:
	// no extra listeners.
	srvCfg.Persistence = config.Persistence{
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
	}
	srvCfg.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontendAddr,
			},
		},
	}
	srvCfg.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	srvCfg.Services = services
	srvCfg.Archival.History.State = "disabled"
	srvCfg.Archival.Visibility.State = "disabled"
	srvCfg.NamespaceDefaults.Archival.History.State = "disabled"
	srvCfg.NamespaceDefaults.Archival.Visibility.State = "disabled"
	srvCfg.PublicClient = config.PublicClient{HostPort: frontendAddr}

	logs := newLogState()
	slogger := serverLogger{l: logger, st: logs}
	authorizer, err := authorization.GetAuthorizerFromConfig(&srvCfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&srvCfg.Global.Authorization, slogger)
	if err != nil {
		return nil, fmt.Errorf("devserver: claim mapper: %w", err)
	}
	dynConfig := DynamicConfig()

	// Hand the ports over to the server.
	ports.release()

	var srv temporal.Server
	err = recoverPanic(func() error {
		var err error
		srv, err = temporal.NewServer(
			temporal.WithConfig(srvCfg),
			temporal.ForServices(temporal.DefaultServices),
			temporal.WithLogger(slogger),
			temporal.WithAuthorizer(authorizer),
			temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
			temporal.WithDynamicConfigClient(dynConfig),
		)
		return err
	})
	if err != nil {
		logs.release(true)
		logs.mute()
		return nil, fmt.Errorf("devserver: creating server: %w", err)
	}
	if err := recoverPanic(srv.Start); err != nil {
		logs.release(true)
		logs.mute()
		_ = recoverPanic(srv.Stop)
		return nil, fmt.Errorf("devserver: starting server: %w", err)
	}
	s := &Server{
		frontendAddr: frontendAddr,
		namespace:    cfg.Namespace,
		server:       srv,
		logs:         logs,
	}
	cleanups = append(cleanups, func() {
		logs.release(true) // the held start-up records explain the failure
		logs.mute()
		_ = recoverPanic(srv.Stop)
	})

	c, err := waitFrontend(ctx, frontendAddr, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := ensureNamespaceConfig(ctx, c, cfg); err != nil {
		return nil, err
	}

	if uiLn != nil {
		ui, err := newUIServer(uiLn, &uiconfig.Config{
			Host:                uiLn.Addr().(*net.TCPAddr).IP.String(),
			Port:                uiLn.Addr().(*net.TCPAddr).Port,
			TemporalGRPCAddress: frontendAddr,
			EnableUI:            true,
			DefaultNamespace:    cfg.Namespace,
			Codec:               uiconfig.Codec{Endpoint: cfg.CodecEndpoint},
			// Plain HTTP: the CSRF cookie must not be marked Secure (as the CLI).
			CORS:     uiconfig.CORS{CookieInsecure: true},
			HideLogs: true,
		})
		if err != nil {
			return nil, fmt.Errorf("devserver: %w", err)
		}
		ui.start()
		cleanups = append(cleanups, func() { _ = ui.stop() })
		if err := ui.waitReady(ctx); err != nil {
			return nil, fmt.Errorf("devserver: %w", err)
		}
		s.ui = ui
	}
	logs.release(false)
	return s, nil
}

// DynamicConfig is the embedded server's dynamic config: a new map on each
// call. Exported so that an in-process test server (temporaltest, through
// temporal.WithDynamicConfigClient) can be run the way imago-worker runs its
// own; docs/performance.md has what each value saves.
func DynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// As temporaltest and the CLI: search attribute changes are visible at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// No periodic call home to check for a newer version.
		dynamicconfig.EnableServerVersionCheck.Key(): false,
		// One partition per task queue (the server's default is 4). Partitions
		// spread a busy queue over matching hosts; here there is one host, and
		// with 4 a task written to a partition no poller waits on waits to be
		// forwarded to the root partition, or is stored and read back: tens of
		// milliseconds per workflow or activity task (docs/performance.md).
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
		// History reads its transfer queue (the tasks that hand a workflow
		// task to matching: a workflow's first, and each after an activity
		// completes) at most this often, 20 a second by default: a new task
		// waited up to 50 ms, ~40 ms per workflow task measured. 100 bounds
		// the wait at 10 ms; 1000 spent more CPU on empty reads and was no
		// faster (docs/performance.md).
		dynamicconfig.TransferProcessorMaxPollRPS.Key(): 100,
		// History walks every payload of every new event to total the sizes
		// of payloads kept in external storage, which imago never uses: ~3 %
		// of the CPU of a one-activity workflow (docs/performance.md).
		dynamicconfig.ExternalPayloadsEnabled.Key(): false,
		// A timer (an activity's heartbeat or retry, a sticky workflow task's
		// schedule-to-start, a workflow's sleep) due sooner than this after
		// history last read its timer queue is moved to that read + this: 1 s
		// by default, a margin for clock skew between history hosts. One
		// process has one clock; 100 ms makes a dead worker's activity retried
		// up to ~0.9 s sooner (P5, docs/performance.md).
		dynamicconfig.TimerProcessorMaxTimeShift.Key(): 100 * time.Millisecond,
	}
}

// checkReach refuses a non-loopback listen address unless cfg.AllowRemote, and
// warns when it is allowed.
func checkReach(cfg Config, logger *slog.Logger, what string, ip net.IP, addr string) error {
	if ip.IsLoopback() {
		return nil
	}
	if !cfg.AllowRemote {
		return fmt.Errorf("devserver: %s address %s is not a loopback address: the embedded server and its web UI have no authentication, "+
			"so anyone who reaches it could start, signal and terminate workflows; listen on 127.0.0.1, "+
			"or allow it explicitly (imago-worker --allow-remote) on a network you trust", what, addr)
	}
	logger.Warn("the embedded Temporal server listens beyond this host, without authentication: anyone who reaches it can start, signal and terminate workflows and read histories (payloads stay encrypted, and imago's workers refuse unencrypted work); use a Temporal cluster with mTLS or API keys in production (docs/production.md)",
		"what", what, "address", addr)
	return nil
}

// FrontendAddress returns the frontend's gRPC host:port, with the port
// actually bound. For a wildcard Listen host it is a loopback address.
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// UIAddress returns the web UI's host:port, or "" when there is no UI.
func (s *Server) UIAddress() string {
	if s.ui == nil {
		return ""
	}
	return s.ui.addr
}

// Namespace returns the namespace the server was started with.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI and the server. It is safe to call more than once (and
// concurrently); later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.logs.mute()
		var errs []error
		if s.ui != nil {
			if err := s.ui.stop(); err != nil {
				errs = append(errs, fmt.Errorf("devserver: stopping UI: %w", err))
			}
		}
		if err := recoverPanic(s.server.Stop); err != nil {
			errs = append(errs, fmt.Errorf("devserver: stopping server: %w", err))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

func validate(cfg *Config) error {
	if cfg.DBPath == "" {
		return errors.New("devserver: DBPath is required")
	}
	// The path goes into a "file:PATH?mode=rwc" SQLite URI.
	if strings.ContainsAny(cfg.DBPath, "?#") {
		return fmt.Errorf("devserver: DBPath %q must not contain '?' or '#'", cfg.DBPath)
	}
	if cfg.Listen == "" {
		return errors.New("devserver: Listen is required")
	}
	if cfg.CodecEndpoint != "" {
		u, err := url.Parse(cfg.CodecEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("devserver: CodecEndpoint %q is not an http(s) URL such as http://127.0.0.1:8234/codec", cfg.CodecEndpoint)
		}
		cfg.CodecEndpoint = strings.TrimRight(cfg.CodecEndpoint, "/") // the UI appends /decode
	}
	if cfg.Retention < MinRetention {
		return fmt.Errorf("devserver: Retention %v is below the minimum %v", cfg.Retention, MinRetention)
	}
	for name, typ := range cfg.SearchAttributes {
		if name == "" {
			return errors.New("devserver: empty search attribute name")
		}
		if _, ok := enumspb.IndexedValueType_name[int32(typ)]; !ok || typ == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return fmt.Errorf("devserver: search attribute %q: invalid type %v", name, typ)
		}
	}
	return nil
}

// connectAttributes are the SQLite URI parameters and pragmas of every
// connection to the database (docs/performance.md has the measurements).
//
// journal_mode=wal: a commit appends to temporal.db-wal instead of copying
// pages to a rollback journal, syncing it, writing the database, syncing it
// and deleting the journal; the server's history, matching and queue writes
// are many small transactions, each of which paid those syncs on its own.
//
// synchronous=normal: with WAL, a commit is not synced; the WAL is, at each
// checkpoint. A killed process loses no acknowledged write (the kernel still
// holds it); a power loss or kernel crash can lose the last commits, leaving
// the database consistent at an earlier one (docs/performance.md, Durability).
func connectAttributes() map[string]string {
	return map[string]string{
		"mode":         "rwc",
		"journal_mode": "wal",
		"synchronous":  "normal",
	}
}

// prepareDatabase creates the database file with the schema if it does not
// exist (or is empty), creates the namespace if missing, and returns the SQL
// config for the server.
func prepareDatabase(dbPath string, cfg Config) (*config.SQL, error) {
	sqlCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      dbPath,
		ConnectAttributes: connectAttributes(),
	}
	nsCfg, err := sqliteschema.NewNamespaceConfig(clusterName, cfg.Namespace, false, cfg.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("devserver: namespace %q: %w", cfg.Namespace, err)
	}
	nsCfg.Detail.Config.Retention = durationpb.New(cfg.Retention)
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return nil, fmt.Errorf("devserver: creating database directory: %w", err)
	}
	// The database holds every workflow's history: its owner's alone. SQLite
	// gives its journal files the database file's mode, so creating it 0600 first
	// covers them too.
	if f, err := os.OpenFile(dbPath, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
		f.Close()
		_ = os.Chmod(dbPath, 0o600)
	}
	fi, err := os.Stat(dbPath)
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("devserver: DBPath %s is a directory", dbPath)
	case err == nil && fi.Size() > 0:
		// Existing database.
		if err := clearMembership(sqlCfg); err != nil {
			return nil, err
		}
	case err == nil || errors.Is(err, os.ErrNotExist):
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			// Do not leave a half-initialised file behind: the next start
			// would take it for a complete database.
			for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
				_ = os.Remove(dbPath + suffix)
			}
			return nil, fmt.Errorf("devserver: creating database schema in %s: %w", dbPath, err)
		}
	default:
		return nil, fmt.Errorf("devserver: DBPath: %w", err)
	}

	// No-op if the namespace exists; ensureNamespaceConfig reconciles it then.
	if err := sqliteschema.CreateNamespaces(sqlCfg, nsCfg); err != nil {
		return nil, fmt.Errorf("devserver: creating namespace %q in %s: %w", cfg.Namespace, dbPath, err)
	}
	return sqlCfg, nil
}

// clearMembership deletes the cluster_membership rows left by the previous
// run. Ringpop bootstraps from the hosts that heartbeated in the last 20s;
// after a quick restart those are the previous run's (now dead) services,
// and joining them blocks the ring for ~45s (MaxJoinDuration 30s + retry),
// during which matching is unreachable ("Not enough hosts to serve the
// request") and workflow tasks are not dispatched. This is a single-node
// server, so no row can belong to a live peer (two servers must not share
// one database file anyway).
func clearMembership(sqlCfg *config.SQL) error {
	db, err := sql.NewSQLAdminDB(sqlplugin.DbKindUnknown, sqlCfg, resolver.NewNoopResolver(), log.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("devserver: opening database %s: %w", sqlCfg.DatabaseName, err)
	}
	defer func() { _ = db.Close() }()
	if err := db.Exec("DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("devserver: clearing stale cluster membership in %s: %w", sqlCfg.DatabaseName, err)
	}
	return nil
}

// waitFrontend polls until the frontend answers a health check and knows the
// namespace, and history and matching answer through it; it returns a client
// connected to the frontend.
func waitFrontend(ctx context.Context, addr, namespace string) (client.Client, error) {
	var lastErr error
	for {
		c, err := tryFrontend(ctx, addr, namespace)
		if err == nil {
			return c, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("devserver: frontend at %s not ready: %w (last error: %v)", addr, ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tryFrontend(ctx context.Context, addr, namespace string) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  addr,
		Namespace: namespace,
		// Failed attempts are expected while polling.
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return nil, err
	}
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		c.Close()
		return nil, err
	}
	if err := probeServices(ctx, c, namespace); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// probeServices checks the namespace exists and that the frontend can reach
// history and matching (membership ring complete).
func probeServices(ctx context.Context, c client.Client, namespace string) error {
	ws := c.WorkflowService()
	if _, err := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace}); err != nil {
		return err
	}
	// History: an unknown workflow is NotFound once history answers.
	_, err := ws.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{
		Namespace: namespace,
		Execution: &commonpb.WorkflowExecution{WorkflowId: "devserver-readiness-probe"},
	})
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("history: %w", err)
	}
	// Matching.
	if _, err := ws.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: "devserver-readiness-probe", Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
	}); err != nil {
		return fmt.Errorf("matching: %w", err)
	}
	return nil
}

// ensureNamespaceConfig brings an existing namespace in line with cfg:
// retention, and missing custom search attributes.
func ensureNamespaceConfig(ctx context.Context, c client.Client, cfg Config) error {
	desc, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: cfg.Namespace})
	if err != nil {
		return fmt.Errorf("devserver: describing namespace %q: %w", cfg.Namespace, err)
	}
	if desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration() != cfg.Retention {
		_, err := c.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
			Namespace: cfg.Namespace,
			Config: &namespacepb.NamespaceConfig{
				WorkflowExecutionRetentionTtl: durationpb.New(cfg.Retention),
			},
		})
		if err != nil {
			return fmt.Errorf("devserver: setting retention of namespace %q: %w", cfg.Namespace, err)
		}
	}

	if len(cfg.SearchAttributes) == 0 {
		return nil
	}
	op := c.OperatorService()
	list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: cfg.Namespace})
	if err != nil {
		return fmt.Errorf("devserver: listing search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range slices.Sorted(maps.Keys(cfg.SearchAttributes)) {
		want := cfg.SearchAttributes[name]
		if _, ok := list.GetSystemAttributes()[name]; ok {
			return fmt.Errorf("devserver: search attribute %q is a system attribute", name)
		}
		have, ok := list.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = want
		case have != want:
			return fmt.Errorf("devserver: search attribute %q is registered as %v, want %v", name, have, want)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        cfg.Namespace,
		SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("devserver: adding search attributes %v: %w", slices.Sorted(maps.Keys(missing)), err)
	}
	return nil
}

// recoverPanic runs f, turning a panic (e.g. the server logger's Fatal) into
// an error.
func recoverPanic(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("panic: %w", e)
			} else {
				err = fmt.Errorf("panic: %v", r)
			}
		}
	}()
	return f()
}
