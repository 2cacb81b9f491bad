package pgtest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/server/common/config"
	pgschema "go.temporal.io/server/schema/postgresql/v12"

	"github.com/imago/imago/internal/prodstack"
	"github.com/imago/imago/workflows"
)

// TestComposeStackTemporalOnPostgres runs the Temporal half of docker-compose.yml
// without Docker: the temporal-schema job's script with the real temporal-sql-tool
// of the pinned server version, twice (every `docker compose up` runs it), then a
// Temporal server configured by the temporal service's environment through the
// server's own embedded config template, with the stack's dynamic config file. Only
// the addresses differ: the test's PostgreSQL, fresh databases, free ports.
func TestComposeStackTemporalOnPostgres(t *testing.T) {
	pg := openPostgres(t)
	stack, err := prodstack.Load(prodstack.File("docker-compose.yml"), map[string]string{"IMAGO_API_TOKENS": "test-token"})
	require.NoError(t, err)
	store, visibility := pg.databaseNames(t)
	host, port, err := net.SplitHostPort(pg.admin.ConnectAddr)
	require.NoError(t, err)

	// The schema job, as admin-tools runs it: /bin/sh -c SCRIPT with its environment.
	job := stack.Services["temporal-schema"]
	require.Equal(t, []string{"/bin/sh", "-c"}, job.Entrypoint)
	require.Len(t, job.Command, 1)
	tools := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(tools, "temporal-sql-tool"), "go.temporal.io/server/cmd/tools/sql").CombinedOutput()
	require.NoError(t, err, "build temporal-sql-tool: %s", out)
	attrs := url.Values{}
	for k, v := range pg.admin.ConnectAttributes {
		attrs.Set(k, v)
	}
	jobEnv := with(job.Environment, map[string]string{
		"SQL_HOST": host, "SQL_PORT": port, "SQL_USER": pg.admin.User, "SQL_PASSWORD": pg.admin.Password,
		"SQL_CONNECT_ATTRIBUTES": attrs.Encode(), "DBNAME": store, "VISIBILITY_DBNAME": visibility,
		"PATH": tools + string(os.PathListSeparator) + os.Getenv("PATH"),
	})
	for _, run := range []string{"first", "second"} {
		cmd := exec.Command(job.Entrypoint[0], append(job.Entrypoint[1:], job.Command[0])...)
		cmd.Env = jobEnv
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s run of the temporal-schema job:\n%s", run, out)
	}
	assert.Equal(t, pgschema.Version, pg.schemaVersion(t, store))
	assert.Equal(t, pgschema.VisibilityVersion, pg.schemaVersion(t, visibility))

	// The server, as temporal-server start reads the temporal service's environment.
	temporalSvc := stack.Services["temporal"]
	require.Len(t, temporalSvc.Configs, 1)
	dynamicConfig := stack.Configs[temporalSvc.Configs[0].Source].Content
	require.NotEmpty(t, dynamicConfig, "the dynamic config %s has no content", temporalSvc.Configs[0].Source)
	dcPath := filepath.Join(t.TempDir(), "dynamicconfig.yaml")
	require.NoError(t, os.WriteFile(dcPath, []byte(dynamicConfig), 0o644))
	require.Equal(t, temporalSvc.Configs[0].Target, temporalSvc.Environment["DYNAMIC_CONFIG_FILE_PATH"])
	grpc := freePorts(t, 5)
	membership := smallFreePorts(t, 4)
	overrides := map[string]string{
		"POSTGRES_SEEDS": host, "DB_PORT": port, "POSTGRES_USER": pg.admin.User, "POSTGRES_PWD": pg.admin.Password,
		"DBNAME": store, "VISIBILITY_DBNAME": visibility,
		"BIND_ON_IP": "127.0.0.1", "DYNAMIC_CONFIG_FILE_PATH": dcPath,
		"FRONTEND_GRPC_PORT": strconv.Itoa(grpc[0]), "FRONTEND_HTTP_PORT": strconv.Itoa(grpc[1]),
		"HISTORY_GRPC_PORT": strconv.Itoa(grpc[2]), "MATCHING_GRPC_PORT": strconv.Itoa(grpc[3]), "WORKER_GRPC_PORT": strconv.Itoa(grpc[4]),
		"FRONTEND_MEMBERSHIP_PORT": strconv.Itoa(membership[0]), "HISTORY_MEMBERSHIP_PORT": strconv.Itoa(membership[1]),
		"MATCHING_MEMBERSHIP_PORT": strconv.Itoa(membership[2]), "WORKER_MEMBERSHIP_PORT": strconv.Itoa(membership[3]),
	}
	for k, v := range temporalSvc.Environment {
		t.Setenv(k, v)
	}
	for k, v := range overrides {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(config.WithEmbedded())
	require.NoError(t, err, "the server's embedded config template with the temporal service's environment")
	require.NotNil(t, cfg.DynamicConfigClient)
	assert.Equal(t, dcPath, cfg.DynamicConfigClient.Filepath)
	ts := runTemporal(t, cfg)

	// The compose healthcheck's URL, on the test's HTTP port, answers once the server does.
	hc := temporalSvc.Healthcheck.Test
	require.Equal(t, "CMD", hc[0])
	health, err := url.Parse(hc[len(hc)-1])
	require.NoError(t, err)
	health.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(grpc[1]))
	var info struct {
		ServerVersion string `json:"serverVersion"`
	}
	pollUntil(t, "GET "+health.String()+" answers 200", func() bool {
		resp, err := http.Get(health.String())
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &info) == nil
	})
	assert.Equal(t, "1.32.2", info.ServerVersion)

	// What temporal-setup then does: the namespace and imago's search attributes.
	namespace := stack.Services["temporal-setup"].Environment["TEMPORAL_NAMESPACE"]
	ts.registerNamespace(t, namespace)
	c := ts.client(t, namespace)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	require.NoError(t, err)
	for name, typ := range workflows.SearchAttributes() {
		assert.Equal(t, typ, list.GetCustomAttributes()[name], "search attribute %s in namespace %s", name, namespace)
	}
}

// with is base (KEY=VALUE pairs of a map) with overrides applied.
func with(base, overrides map[string]string) []string {
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
