package prodstack_test

import (
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/schema"

	"github.com/imago/imago/internal/api"
	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/prodstack"
	"github.com/imago/imago/workflows"
)

// testToken stands for the operator's IMAGO_API_TOKENS.
const testToken = "0123456789abcdef0123456789abcdef"

func load(t *testing.T) *prodstack.Compose {
	t.Helper()
	c, err := prodstack.Load(prodstack.File("docker-compose.yml"), map[string]string{"IMAGO_API_TOKENS": testToken})
	require.NoError(t, err)
	return c
}

// imagoServices run imago's own images (built from the Dockerfile).
var imagoServices = []string{"imago-worker", "imago-api"}

func TestInterpolate(t *testing.T) {
	env := map[string]string{"SET": "value", "EMPTY": ""}
	for in, want := range map[string]string{
		"plain":             "plain",
		"$$SET and $${SET}": "$SET and ${SET}",
		"${SET}/$SET/x":     "value/value/x",
		"${UNSET}":          "",
		"${UNSET:-d}":       "d",
		"${EMPTY:-d}":       "d",
		"${EMPTY-d}":        "",
		"${UNSET-d}":        "d",
		"${SET:-d}":         "value",
		"${SET:?needed}":    "value",
		"a $((1 + 2))":      "",
	} {
		got, err := prodstack.Interpolate(in, env)
		if in == "a $((1 + 2))" {
			assert.ErrorContains(t, err, "write $$ for a literal $", in)
			continue
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := prodstack.Interpolate("${EMPTY:?set EMPTY}", env)
	assert.True(t, prodstack.IsRequired(err))
	assert.EqualError(t, err, "required variable EMPTY is missing a value: set EMPTY")
	_, err = prodstack.Interpolate("${SET", env)
	assert.ErrorContains(t, err, "without a closing }")
	_, err = prodstack.Interpolate("${SET:+alt}", env)
	assert.ErrorContains(t, err, "unsupported expression")
}

// Without IMAGO_API_TOKENS `docker compose up` refuses to start, saying what to set.
func TestComposeRefusesToStartWithoutAPITokens(t *testing.T) {
	_, err := prodstack.Load(prodstack.File("docker-compose.yml"), nil)
	require.Error(t, err)
	assert.True(t, prodstack.IsRequired(err), "%v", err)
	assert.ErrorContains(t, err, "required variable IMAGO_API_TOKENS is missing a value")
	assert.ErrorContains(t, err, "openssl rand -hex 32")
}

func TestComposeHasTheStacksServices(t *testing.T) {
	c := load(t)
	assert.Equal(t, "imago", c.Name)
	assert.ElementsMatch(t, []string{
		"postgresql", "temporal-schema", "temporal", "temporal-setup", "temporal-ui", "imago-worker", "imago-api",
	}, slices.Collect(maps.Keys(c.Services)))
	for k := range c.Extensions {
		assert.True(t, strings.HasPrefix(k, "x-"), "top-level key %q: compose allows only services, volumes, configs, … and x- extensions", k)
	}
}

// oneShot services run to completion (restart "no"); dependents wait for their success.
func oneShot(s prodstack.Service) bool { return s.Restart == "no" }

func TestComposeHealthchecksAndStartOrder(t *testing.T) {
	c := load(t)
	for name, s := range c.Services {
		if oneShot(s) {
			assert.Nil(t, s.Healthcheck, "%s runs once: dependents wait for it to complete, not to be healthy", name)
			continue
		}
		assert.Contains(t, []string{"unless-stopped", "always"}, s.Restart, "%s is long-running: it should come back after a crash or reboot", name)
		hc := s.Healthcheck
		if !assert.NotNil(t, hc, "%s has no healthcheck", name) {
			continue
		}
		require.GreaterOrEqual(t, len(hc.Test), 2, "%s: healthcheck test %v", name, hc.Test)
		assert.Contains(t, []string{"CMD", "CMD-SHELL"}, hc.Test[0], name)
		assert.Positive(t, hc.Retries, name)
		for _, d := range []string{hc.Interval, hc.Timeout, hc.StartPeriod} {
			_, err := time.ParseDuration(d)
			assert.NoError(t, err, "%s: healthcheck durations", name)
		}
	}

	// Every dependency exists and is waited for in the right way.
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			if !assert.True(t, ok, "%s depends on %s, which is not a service", name, dep) {
				continue
			}
			want := "service_healthy"
			if oneShot(target) {
				want = "service_completed_successfully"
			}
			assert.Equal(t, want, d.Condition, "%s waits for %s", name, dep)
		}
	}
	for name, s := range c.Services {
		if oneShot(s) {
			dependents := 0
			for _, other := range c.Services {
				if _, ok := other.DependsOn[name]; ok {
					dependents++
				}
			}
			assert.Positive(t, dependents, "nothing waits for the one-shot %s", name)
		}
	}

	// The start order: PostgreSQL, its schema, the server, the namespace, then the rest.
	order := startOrder(t, c)
	before := func(a, b string) {
		assert.Less(t, slices.Index(order, a), slices.Index(order, b), "%s starts before %s (order %v)", a, b, order)
	}
	before("postgresql", "temporal-schema")
	before("temporal-schema", "temporal")
	before("temporal", "temporal-setup")
	for _, s := range append([]string{"temporal-ui"}, imagoServices...) {
		before("temporal-setup", s)
		assert.Equal(t, "service_healthy", c.Services[s].DependsOn["temporal-setup"].Condition,
			"%s must wait for the namespace and search attributes", s)
	}
}

// startOrder is a topological order of depends_on; it fails the test on a cycle.
func startOrder(t *testing.T, c *prodstack.Compose) []string {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string, []string)
	visit = func(n string, path []string) {
		switch state[n] {
		case 1:
			t.Fatalf("depends_on cycle: %v", append(path, n))
		case 2:
			return
		}
		state[n] = 1
		for _, d := range slices.Sorted(maps.Keys(c.Services[n].DependsOn)) {
			visit(d, append(path, n))
		}
		state[n] = 2
		order = append(order, n)
	}
	for _, n := range slices.Sorted(maps.Keys(c.Services)) {
		visit(n, nil)
	}
	return order
}

type port struct{ hostIP, host, container string }

func ports(t *testing.T, s prodstack.Service, name string) []port {
	t.Helper()
	var out []port
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		require.Len(t, parts, 3, "%s: port %q: want 127.0.0.1:HOST:CONTAINER", name, p)
		for _, n := range parts[1:] {
			_, err := strconv.ParseUint(n, 10, 16)
			require.NoError(t, err, "%s: port %q", name, p)
		}
		out = append(out, port{parts[0], parts[1], parts[2]})
	}
	return out
}

func TestComposePortsAreLoopbackOnlyAndDistinct(t *testing.T) {
	c := load(t)
	byHostPort := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		for _, p := range ports(t, c.Services[name], name) {
			assert.Equal(t, "127.0.0.1", p.hostIP, "%s publishes %s:%s beyond this machine", name, p.hostIP, p.host)
			if other, ok := byHostPort[p.host]; ok {
				t.Errorf("host port %s is published by both %s and %s", p.host, other, name)
			}
			byHostPort[p.host] = name
		}
	}

	// imago's processes listen on every container port they publish.
	listens := map[string][]string{
		// The router of a local-provider rollout whose spec says listen: 0.0.0.0:9080.
		"imago-worker": {"0.0.0.0:9080"},
	}
	for _, name := range imagoServices {
		s := c.Services[name]
		listens[name] = append(listens[name], s.Command...)
		for _, v := range s.Environment {
			listens[name] = append(listens[name], v)
		}
		for _, p := range ports(t, s, name) {
			assert.Contains(t, listens[name], "0.0.0.0:"+p.container, "%s publishes container port %s, which it does not listen on", name, p.container)
		}
	}
}

// The environment imago-worker and imago serve are configured by, read by the
// code that reads it (internal/app ConfigFromEnv, the API's token checks).
func TestComposeConfiguresImagoByEnvironment(t *testing.T) {
	c := load(t)
	required := []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "IMAGO_HOME", "IMAGO_CATALOG_URL", "IMAGO_SECRETS_URL", "IMAGO_EVENTS_URL", "IMAGO_API_TOKENS"}
	worker, apiSvc := c.Services["imago-worker"], c.Services["imago-api"]
	for _, name := range imagoServices {
		env := c.Services[name].Environment
		for _, k := range required {
			assert.Contains(t, env, k, "%s's environment", name)
		}
	}
	for _, k := range required {
		assert.Equal(t, worker.Environment[k], apiSvc.Environment[k], "%s must be the same for the API that starts rollouts and the worker that runs them", k)
	}

	for _, name := range imagoServices {
		t.Run(name, func(t *testing.T) {
			for k, v := range c.Services[name].Environment {
				t.Setenv(k, v)
			}
			cfg := app.ConfigFromEnv()
			host, port, err := net.SplitHostPort(cfg.TemporalAddress)
			require.NoError(t, err)
			assert.Contains(t, c.Services, host, "TEMPORAL_ADDRESS %s names no service", cfg.TemporalAddress)
			assert.Equal(t, "7233", port)
			assert.Equal(t, "default", cfg.Namespace)
			assert.Equal(t, "/var/lib/imago", cfg.Home)
			assert.Equal(t, "file:///var/lib/imago/catalog", cfg.CatalogURL)
			assert.Equal(t, "mem://imago-events", cfg.EventsURL)
			assert.Empty(t, cfg.SecretsURL, "by default the payload key is the file under IMAGO_HOME")
		})
	}
	assert.Equal(t, "0.0.0.0:9464", worker.Environment["IMAGO_METRICS_LISTEN"])

	// The namespace is the one temporal-setup registers and the web UI opens.
	ns := worker.Environment["TEMPORAL_NAMESPACE"]
	assert.Equal(t, ns, c.Services["temporal-setup"].Environment["TEMPORAL_NAMESPACE"])
	assert.Equal(t, ns, c.Services["temporal-ui"].Environment["TEMPORAL_DEFAULT_NAMESPACE"])

	// IMAGO_HOME is one named volume in both: the default payload key
	// (IMAGO_HOME/secrets.url) and file:// catalog are then shared.
	mount := func(name string) string {
		for _, v := range c.Services[name].Volumes {
			if src, dst, ok := strings.Cut(v, ":"); ok && dst == c.Services[name].Environment["IMAGO_HOME"] {
				return src
			}
		}
		return ""
	}
	require.NotEmpty(t, mount("imago-worker"), "imago-worker mounts no volume at IMAGO_HOME")
	assert.Equal(t, mount("imago-worker"), mount("imago-api"))
	assert.Contains(t, c.Volumes, mount("imago-worker"), "IMAGO_HOME's volume is a named volume")

	// imago serve accepts its command line and tokens, and would refuse without tokens.
	require.Equal(t, "serve", apiSvc.Command[0])
	listen := apiSvc.Command[slices.Index(apiSvc.Command, "--listen")+1]
	toks, err := tokens.Load(apiSvc.Environment["IMAGO_API_TOKENS"], "")
	require.NoError(t, err)
	assert.Equal(t, []string{testToken}, tokens.Secrets(toks))
	assert.NoError(t, api.CheckAuth(toks, false, listen))
	assert.ErrorContains(t, api.CheckAuth(nil, false, listen), "no API token is configured")
}

// The temporal service's environment, rendered by the server's own embedded
// config template (as temporal-server start does in the image), points at the
// stack's PostgreSQL with the schema job's databases, and the dynamic config it
// names is valid.
func TestComposeConfiguresTemporalOnPostgres(t *testing.T) {
	c := load(t)
	temporalSvc, job, pgSvc := c.Services["temporal"], c.Services["temporal-schema"], c.Services["postgresql"]
	for k, v := range temporalSvc.Environment {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(config.WithEmbedded())
	require.NoError(t, err)

	assert.EqualValues(t, 4, cfg.Persistence.NumHistoryShards)
	for store, db := range map[string]string{cfg.Persistence.DefaultStore: "DBNAME", cfg.Persistence.VisibilityStore: "VISIBILITY_DBNAME"} {
		sql := cfg.Persistence.DataStores[store].SQL
		require.NotNil(t, sql, "store %s is not SQL", store)
		assert.Equal(t, postgresql.PluginName, sql.PluginName, store)
		assert.Equal(t, "postgresql:5432", sql.ConnectAddr, store)
		assert.Equal(t, pgSvc.Environment["POSTGRES_USER"], sql.User, store)
		assert.Equal(t, pgSvc.Environment["POSTGRES_PASSWORD"], sql.Password, store)
		assert.Equal(t, job.Environment[db], sql.DatabaseName, "%s: the database the schema job makes", store)
	}
	assert.True(t, strings.HasPrefix(pgSvc.Image, "postgres:"))

	// Its ports are the ones published, dialled and health-checked.
	fe := cfg.Services["frontend"].RPC
	assert.Equal(t, "0.0.0.0", fe.BindOnIP)
	published := ports(t, temporalSvc, "temporal")
	require.Len(t, published, 1)
	assert.Equal(t, strconv.Itoa(fe.GRPCPort), published[0].container)
	health, err := url.Parse(temporalSvc.Healthcheck.Test[len(temporalSvc.Healthcheck.Test)-1])
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(fe.HTTPPort), health.Port(), "the healthcheck asks the frontend's HTTP API")

	// The dynamic config file it reads is the stack's config, and the server accepts it.
	require.NotNil(t, cfg.DynamicConfigClient)
	require.Len(t, temporalSvc.Configs, 1)
	assert.Equal(t, temporalSvc.Configs[0].Target, cfg.DynamicConfigClient.Filepath)
	dc := filepath.Join(t.TempDir(), "dynamicconfig.yaml")
	require.NoError(t, os.WriteFile(dc, []byte(c.Configs[temporalSvc.Configs[0].Source].Content), 0o644))
	done := make(chan any)
	defer close(done)
	client, err := dynamicconfig.NewFileBasedClient(&dynamicconfig.FileBasedClientConfig{Filepath: dc, PollInterval: time.Minute}, log.NewNoopLogger(), done)
	require.NoError(t, err)
	versionCheck := client.GetValue(dynamicconfig.EnableServerVersionCheck.Key())
	require.Len(t, versionCheck, 1)
	assert.Equal(t, false, versionCheck[0].Value)

	// The schema job reaches the same PostgreSQL as the server, with the same role.
	for jobKey, serverKey := range map[string]string{
		"SQL_PLUGIN": "DB", "SQL_HOST": "POSTGRES_SEEDS", "SQL_PORT": "DB_PORT", "SQL_USER": "POSTGRES_USER",
		"SQL_PASSWORD": "POSTGRES_PWD", "DBNAME": "DBNAME", "VISIBILITY_DBNAME": "VISIBILITY_DBNAME",
	} {
		assert.Equal(t, temporalSvc.Environment[serverKey], job.Environment[jobKey], "temporal-schema %s vs temporal %s", jobKey, serverKey)
	}
	assert.Contains(t, c.Services, job.Environment["SQL_HOST"])
	// … and upgrades both databases with schemas the tool embeds (the server module's).
	script := job.Command[0]
	for db, name := range map[string]string{"$DBNAME": "postgresql/v12/temporal", "$VISIBILITY_DBNAME": "postgresql/v12/visibility"} {
		assert.Contains(t, script, `--db "`+db+`" update-schema --schema-name `+name)
		assert.Contains(t, script, `--db "`+db+`" create-database`)
		assert.Contains(t, script, `--db "`+db+`" setup-schema -v 0.0`)
		assert.Contains(t, schema.PathsByDB("postgresql"), name, "no versioned schema %s in go.temporal.io/server/schema", name)
	}
}

// temporal-setup registers exactly imago's search attributes (workflows.SearchAttributes).
func TestComposeRegistersImagosSearchAttributes(t *testing.T) {
	c := load(t)
	script := c.Services["temporal-setup"].Command[0]
	m := regexp.MustCompile(`(?m)^\s*for sa in ([^;]+); do$`).FindStringSubmatch(script)
	require.NotNil(t, m, "temporal-setup's script has no `for sa in …; do` loop:\n%s", script)
	want := workflows.SearchAttributes()
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), strings.Fields(m[1]))
	for name, typ := range want {
		assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, typ, "%s: the script registers every attribute as Keyword", name)
	}
	assert.Contains(t, script, `--name "$sa" --type Keyword`)
	assert.Contains(t, script, `--retention "$TEMPORAL_RETENTION"`)
	assert.Equal(t, "720h", c.Services["temporal-setup"].Environment["TEMPORAL_RETENTION"], "30 days, as imago's embedded server")
}

// Every image is pinned, and Temporal's images are the versions go.mod pins.
func TestComposeImagesArePinned(t *testing.T) {
	c := load(t)
	serverVersion := goModVersion(t, "go.temporal.io/server")
	uiVersion := goModVersion(t, "github.com/temporalio/ui-server/v2")
	for name, s := range c.Services {
		repo, tag, ok := strings.Cut(s.Image, ":")
		if !assert.True(t, ok && tag != "", "%s: image %q has no tag", name, s.Image) {
			continue
		}
		assert.NotEqual(t, "latest", tag, "%s: image %s", name, s.Image)
		switch repo {
		case "temporalio/server", "temporalio/admin-tools":
			assert.Equal(t, serverVersion, "v"+tag, "%s: %s must match go.temporal.io/server in go.mod", name, s.Image)
		case "temporalio/ui":
			assert.Equal(t, uiVersion, "v"+tag, "%s: %s must match github.com/temporalio/ui-server/v2 in go.mod", name, s.Image)
		case "postgres":
			major, _, _ := strings.Cut(tag, ".")
			n, err := strconv.Atoi(major)
			assert.NoError(t, err, "%s: postgres tag %s", name, tag)
			assert.GreaterOrEqual(t, n, 12, "the postgres12 plugin needs PostgreSQL 12 or later")
		}
	}
	assert.True(t, strings.HasPrefix(serverVersion, "v1.32."), "the stack is written for Temporal 1.32.x, go.mod has %s", serverVersion)
}

// goModVersion is the version go.mod requires of module.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	data, err := os.ReadFile(prodstack.File("go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindSubmatch(data)
	require.NotNil(t, m, "go.mod requires no %s", module)
	return string(m[1])
}
