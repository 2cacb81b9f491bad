package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // the driver of the postgres12 plugin, for the test's own queries
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
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
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	"go.temporal.io/server/temporal"
	schematool "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/workflows"
)

// dsnEnv names the PostgreSQL the tests use; defaultDSN is what `make postgres` makes.
const (
	dsnEnv     = "IMAGO_TEST_POSTGRES"
	defaultDSN = "postgres://imago:imago@127.0.0.1:5432/postgres?sslmode=disable"
)

var helloBuilds string // v1/ and v2/ builds of examples/hello

func TestMain(m *testing.M) {
	// The local provider starts routers and sim hosts by re-running this binary.
	router.RunIfChild()
	local.RunSimIfChild()
	dir, err := os.MkdirTemp("", "imago-pgtest-hello-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helloBuilds = dir
	code := func() int {
		defer os.RemoveAll(dir)
		for _, v := range []string{"v1", "v2"} {
			cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", filepath.Join(dir, v, "hello"), "github.com/imago/imago/examples/hello")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build hello %s: %v\n%s", v, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// postgres is the PostgreSQL server IMAGO_TEST_POSTGRES names.
type postgres struct {
	where string     // host:port/database, for messages (no password)
	admin config.SQL // connects to the DSN's database, where databases are created and dropped
}

// openPostgres connects to IMAGO_TEST_POSTGRES and fails the test, saying how to
// start one, when it cannot.
func openPostgres(t *testing.T) *postgres {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		dsn = defaultDSN
	}
	admin, err := parseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", dsnEnv, err)
	}
	pg := &postgres{where: admin.ConnectAddr + "/" + admin.DatabaseName, admin: admin}
	db, err := pg.open(admin.DatabaseName)
	if err == nil {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = db.PingContext(ctx)
	}
	if err != nil {
		t.Fatalf("cannot connect to PostgreSQL at %s as %s: %v\n"+
			"run make postgres (scripts/postgres.sh installs and starts Debian's PostgreSQL with the role imago/imago), "+
			"or point %s at one, e.g. %s", pg.where, admin.User, err, dsnEnv, defaultDSN)
	}
	return pg
}

// parseDSN reads postgres://USER:PASSWORD@HOST:PORT/DATABASE?PARAMS into the
// Temporal server's SQL configuration (plugin postgres12).
func parseDSN(dsn string) (config.SQL, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return config.SQL{}, fmt.Errorf("not a URL (%v); want postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=disable", err)
	}
	if (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return config.SQL{}, fmt.Errorf("%q is not a postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=disable URL", u.Redacted())
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	pw, _ := u.User.Password()
	cfg := config.SQL{
		PluginName:        postgresql.PluginName,
		User:              u.User.Username(),
		Password:          pw,
		ConnectProtocol:   "tcp",
		ConnectAddr:       net.JoinHostPort(host, port),
		DatabaseName:      strings.TrimPrefix(u.Path, "/"),
		ConnectAttributes: map[string]string{},
		MaxConns:          20,
		MaxIdleConns:      20,
		MaxConnLifetime:   time.Hour,
	}
	if cfg.DatabaseName == "" {
		cfg.DatabaseName = "postgres"
	}
	for k, vs := range u.Query() {
		cfg.ConnectAttributes[k] = vs[len(vs)-1]
	}
	return cfg, nil
}

// open opens database name with the test's own driver (lib/pq, as the plugin).
func (pg *postgres) open(name string) (*sql.DB, error) {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(pg.admin.User, pg.admin.Password), Host: pg.admin.ConnectAddr, Path: "/" + name}
	q := url.Values{}
	for k, v := range pg.admin.ConnectAttributes {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return sql.Open("postgres", u.String())
}

// createDatabase creates database name with the server's schema tool (as
// temporal-sql-tool create-database does) and returns its configuration.
func (pg *postgres) createDatabase(t *testing.T, name string) config.SQL {
	t.Helper()
	cfg := pg.admin
	cfg.DatabaseName = name
	target := cfg // DoCreateDatabase points its argument at the admin database
	require.NoError(t, sqltool.DoCreateDatabase(&target, pg.admin.DatabaseName, log.NewNoopLogger()), "create database %s on %s", name, pg.where)
	return cfg
}

// databaseNames returns fresh names for a store and a visibility database, and
// drops the databases of those names when the test ends.
func (pg *postgres) databaseNames(t *testing.T) (store, visibility string) {
	t.Helper()
	pg.dropStale(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	// Lower case (DROP DATABASE does not quote it), and dated for dropStale.
	store = fmt.Sprintf("%s%d_%s", dbPrefix, time.Now().Unix(), hex.EncodeToString(b))
	visibility = store + "_visibility"
	t.Cleanup(func() {
		db, err := pg.open(pg.admin.DatabaseName)
		if err != nil {
			t.Errorf("drop databases %s and %s on %s: %v", store, visibility, pg.where, err)
			return
		}
		defer db.Close()
		for _, name := range []string{store, visibility} {
			// FORCE: a connection the stopped server left behind must not keep it alive.
			if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
				t.Errorf("drop database %s on %s: %v", name, pg.where, err)
			}
		}
	})
	return store, visibility
}

// schemaVersion is the Temporal schema version of database name.
func (pg *postgres) schemaVersion(t *testing.T, name string) string {
	t.Helper()
	cfg := pg.admin
	cfg.DatabaseName = name
	conn, err := sqltool.NewConnection(&cfg, log.NewNoopLogger())
	require.NoError(t, err, "connect to %s", name)
	defer conn.Close()
	v, err := conn.ReadSchemaVersion()
	require.NoError(t, err, "read the schema version of %s", name)
	return v
}

// dbPrefix starts the names of the test's databases: imago_pgtest_<unix time>_<random>.
const dbPrefix = "imago_pgtest_"

// dropStale drops the databases of test runs that started over an hour ago: a
// run killed before its cleanup (a crash, a timeout) leaves its databases behind.
func (pg *postgres) dropStale(t *testing.T) {
	t.Helper()
	db, err := pg.open(pg.admin.DatabaseName)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", dbPrefix)
	require.NoError(t, err)
	var stale []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		ts, _, _ := strings.Cut(strings.TrimPrefix(name, dbPrefix), "_")
		if sec, err := strconv.ParseInt(ts, 10, 64); err == nil && time.Since(time.Unix(sec, 0)) > time.Hour {
			stale = append(stale, name)
		}
	}
	require.NoError(t, rows.Err())
	for _, name := range stale {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop the stale test database %s: %v", name, err)
		}
	}
}

// setupSchema makes Temporal's schema in cfg's database the way a production
// database gets it (temporal-sql-tool setup-schema -v 0.0, then update-schema
// over the versioned migrations embedded in the server module) and returns the
// schema version it reached.
func setupSchema(t *testing.T, cfg config.SQL, schemaName string) string {
	t.Helper()
	conn, err := sqltool.NewConnection(&cfg, log.NewNoopLogger())
	require.NoError(t, err, "connect to %s", cfg.DatabaseName)
	defer conn.Close()
	require.NoError(t, schematool.NewSetupSchemaTask(conn, &schematool.SetupConfig{InitialVersion: "0.0"}, log.NewNoopLogger()).Run(),
		"setup-schema -v 0.0 on %s", cfg.DatabaseName)
	require.NoError(t, schematool.NewUpdateSchemaTask(conn, &schematool.UpdateConfig{DBName: cfg.DatabaseName, SchemaName: schemaName}, log.NewNoopLogger()).Run(),
		"update-schema %s on %s", schemaName, cfg.DatabaseName)
	v, err := conn.ReadSchemaVersion()
	require.NoError(t, err)
	return v
}

// temporalDatabases makes a fresh, uniquely named pair of databases with
// Temporal's schema: the store and the visibility store.
func temporalDatabases(t *testing.T, pg *postgres) (store, visibility config.SQL) {
	t.Helper()
	storeName, visibilityName := pg.databaseNames(t)
	store = pg.createDatabase(t, storeName)
	visibility = pg.createDatabase(t, visibilityName)
	require.Equal(t, pgschema.Version, setupSchema(t, store, "postgresql/v12/temporal"),
		"the versioned migrations must reach the schema version the server expects")
	require.Equal(t, pgschema.VisibilityVersion, setupSchema(t, visibility, "postgresql/v12/visibility"))
	return store, visibility
}

// temporalServer is an in-process Temporal server on PostgreSQL.
type temporalServer struct {
	addr    string // frontend host:port
	logPath string
	opts    []temporal.ServerOption
	srv     temporal.Server // nil while stopped
}

// startTemporal starts a Temporal server (frontend, history, matching, worker)
// on the two databases, as the compose stack's temporalio/server does with
// DB=postgres12, and stops it when the test ends.
func startTemporal(t *testing.T, store, visibility config.SQL) *temporalServer {
	t.Helper()
	grpcPorts, membershipPorts := freePorts(t, len(temporal.DefaultServices)), smallFreePorts(t, len(temporal.DefaultServices))
	frontendAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPorts[0]))
	services := map[string]config.Service{}
	for i, name := range temporal.DefaultServices { // frontend first
		services[name] = config.Service{RPC: config.RPC{GRPCPort: grpcPorts[i], MembershipPort: membershipPorts[i], BindOnIP: "127.0.0.1"}}
	}
	cfg := &config.Config{}
	cfg.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: "127.0.0.1"}
	cfg.Persistence = config.Persistence{
		DefaultStore:     "default",
		VisibilityStore:  "visibility",
		NumHistoryShards: 4, // the compose stack's (NUM_HISTORY_SHARDS); fixed for a cluster's life
		DataStores:       map[string]config.DataStore{"default": {SQL: &store}, "visibility": {SQL: &visibility}},
	}
	cfg.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontendAddr},
		},
	}
	cfg.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	cfg.Services = services
	cfg.Archival.History.State = "disabled"
	cfg.Archival.Visibility.State = "disabled"
	cfg.NamespaceDefaults.Archival.History.State = "disabled"
	cfg.NamespaceDefaults.Archival.Visibility.State = "disabled"
	cfg.PublicClient = config.PublicClient{HostPort: frontendAddr}

	return runTemporal(t, cfg, temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
		// Search attributes added by the test are visible at once (as temporaltest).
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		dynamicconfig.EnableServerVersionCheck.Key():                false,
	}))
}

// runTemporal starts the services of cfg as temporal-server start does (the
// authorizer and claim mapper its config names; extra options last) and stops
// the server when the test ends. Its logs (warnings and errors) go to a file,
// shown when the test fails.
func runTemporal(t *testing.T, cfg *config.Config, extra ...temporal.ServerOption) *temporalServer {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "temporal.log")
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: "warn", OutputFile: logPath}))
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	require.NoError(t, err)
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	require.NoError(t, err)
	opts := append([]temporal.ServerOption{
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
	}, extra...)
	fe := cfg.Services["frontend"].RPC
	ts := &temporalServer{addr: net.JoinHostPort(fe.BindOnIP, strconv.Itoa(fe.GRPCPort)), logPath: logPath, opts: opts}
	t.Cleanup(func() {
		if ts.srv != nil {
			if err := ts.srv.Stop(); err != nil {
				t.Errorf("stop the Temporal server: %v", err)
			}
		}
		if t.Failed() {
			ts.dumpLog(t)
		}
	})
	ts.start(t)
	return ts
}

func (ts *temporalServer) start(t *testing.T) {
	t.Helper()
	srv, err := temporal.NewServer(ts.opts...)
	require.NoError(t, err, "create the Temporal server")
	require.NoError(t, srv.Start(), "start the Temporal server")
	ts.srv = srv
}

// restart stops the server and starts a new one on the same databases and
// ports, as a deploy of a new Temporal version does.
func (ts *temporalServer) restart(t *testing.T) {
	t.Helper()
	srv := ts.srv
	ts.srv = nil
	require.NoError(t, srv.Stop(), "stop the Temporal server")
	ts.start(t)
}

func (ts *temporalServer) dumpLog(t *testing.T) {
	b, err := os.ReadFile(ts.logPath)
	if err != nil {
		return
	}
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	t.Logf("Temporal server log (warnings and errors, last 20 kB):\n%s", b)
}

// registerNamespace waits for the frontend, registers namespace with 30 days of
// retention and imago's search attributes (as the compose stack's temporal-setup
// does with the temporal CLI), and returns once history and matching answer too.
func (ts *temporalServer) registerNamespace(t *testing.T, namespace string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	var c client.Client
	poll(t, ctx, "the Temporal frontend at "+ts.addr+" answers", func(ctx context.Context) error {
		var err error
		c, err = client.DialContext(ctx, client.Options{HostPort: ts.addr, Namespace: namespace, Logger: quiet})
		return err
	})
	defer c.Close()
	ws := c.WorkflowService()
	poll(t, ctx, "namespace "+namespace+" is registered", func(ctx context.Context) error {
		_, err := ws.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(30 * 24 * time.Hour),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	poll(t, ctx, "imago's search attributes are added", func(ctx context.Context) error {
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: namespace, SearchAttributes: workflows.SearchAttributes(),
		})
		return err
	})
	poll(t, ctx, "history and matching answer for "+namespace, func(ctx context.Context) error {
		_, err := ws.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace:     namespace,
			TaskQueue:     &taskqueuepb.TaskQueue{Name: contract.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
		})
		if err != nil {
			return fmt.Errorf("matching: %w", err)
		}
		_, err = c.DescribeWorkflowExecution(ctx, "pgtest-readiness-probe", "")
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return nil
		}
		return fmt.Errorf("history: %w", err)
	})
}

// client is a plain client of namespace (no payload codec), closed when the test ends.
func (ts *temporalServer) client(t *testing.T, namespace string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort: ts.addr, Namespace: namespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err, "connect to Temporal at %s", ts.addr)
	t.Cleanup(c.Close)
	return c
}

// poll calls f until it succeeds, failing the test with the last error when ctx ends.
func poll(t *testing.T, ctx context.Context, what string, f func(context.Context) error) {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v (last error: %v)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct free ports on 127.0.0.1 from the kernel (all held
// at once while choosing, so none is picked twice).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// smallFreePorts returns n distinct free ports on 127.0.0.1 below 32768. The
// server records each service's membership port in cluster_membership.rpc_port,
// a SMALLINT on PostgreSQL: the kernel's ephemeral ports (32768 and up on Linux)
// do not fit, and the server exits ("unable to initialize membership heartbeats").
func smallFreePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	start := 10000 + mrand.IntN(20000)
	for p := start; len(ports) < n && p < 32768; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // taken
		}
		defer ln.Close()
		ports = append(ports, p)
	}
	require.Len(t, ports, n, "free ports on 127.0.0.1 between %d and 32767", start)
	return ports
}
