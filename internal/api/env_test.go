package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/router"
	"github.com/imago/imago/workflows"
)

// These tests serve the API on a real listener on 127.0.0.1 over a real Temporal
// server run in-process (temporaltest) and the real imago worker with the local
// provider: instances are processes of examples/hello, built here, and routers
// re-execute this test binary (TestMain hands them over).

// helloBuilds holds examples/hello built as v1, made by the first test that
// needs it (fuzz workers and unit tests build nothing).
var helloBuilds struct {
	once sync.Once
	root string // removed by TestMain
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	router.RunIfChild()
	code := m.Run()
	if helloBuilds.root != "" {
		os.RemoveAll(helloBuilds.root)
	}
	os.Exit(code)
}

// helloRoots configures the API's IMAGO_BAKE_ROOTS to the directory holding the
// hello build, so bakes of helloBake may read it.
func helloRoots(t *testing.T) func(*Config) {
	roots := mustRoots(t, filepath.Dir(helloBuild(t)))
	return func(c *Config) { c.BakeRoots = roots }
}

// helloBuild returns a directory holding the hello binary, version v1.
func helloBuild(t *testing.T) string {
	t.Helper()
	helloBuilds.once.Do(func() {
		root, err := os.MkdirTemp("", "imago-api-hello-")
		if err != nil {
			helloBuilds.err = err
			return
		}
		helloBuilds.root, helloBuilds.dir = root, filepath.Join(root, "v1")
		out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v1", "-o", filepath.Join(helloBuilds.dir, "hello"), "github.com/imago/imago/examples/hello").CombinedOutput()
		if err != nil {
			helloBuilds.err = fmt.Errorf("build examples/hello: %v\n%s", err, out)
		}
	})
	require.NoError(t, helloBuilds.err)
	return helloBuilds.dir
}

// testToken is the tests' admin token; scopes_test.go makes tokens with fewer scopes.
const testToken = "test-token-0123456789abcdef"

// mustTokens parses tokens in the tokens file format.
func mustTokens(t testing.TB, lines ...string) []tokens.Token {
	t.Helper()
	toks, err := tokens.Parse(strings.Join(lines, "\n"), "test tokens")
	require.NoError(t, err)
	return toks
}

// apiEnv is one test's API: its server's base URL, the catalog and Temporal
// client behind it, and (with a worker) a home where fleets run.
type apiEnv struct {
	t      *testing.T
	url    string
	client client.Client
	cat    *catalog.Catalog
	listen string // a free address for the rollout's router
}

type envOptions struct {
	temporal  bool          // a Temporal server and a worker; otherwise a client of an address where nothing listens
	ioTimeout time.Duration // the HTTP server's ReadTimeout and WriteTimeout, when not the defaults
	config    func(*Config)
	worker    func(*app.Config) // changes the worker's configuration (its provider)
}

// newEnv serves the API on 127.0.0.1:0.
func newEnv(t *testing.T, o envOptions) *apiEnv {
	t.Helper()
	ctx := context.Background()
	home := t.TempDir()
	e := &apiEnv{t: t, listen: freeAddr(t)}
	if o.temporal {
		ts := temporaltest.NewServer(temporaltest.WithT(t))
		e.client = ts.GetDefaultClient()
		_, err := e.client.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
		})
		require.NoError(t, err)
		t.Cleanup(func() {
			if err := local.KillAll(home); err != nil {
				t.Errorf("kill the processes of %s: %v", home, err)
			}
		})
		wc := app.Config{Home: home, TemporalAddress: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace()}
		if o.worker != nil {
			o.worker(&wc)
		}
		deps, err := app.OpenDeps(ctx, wc)
		require.NoError(t, err)
		t.Cleanup(func() { deps.Close() })
		w := app.NewWorker(e.client, deps.Activities)
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
		e.cat = deps.Catalog
	} else {
		c, err := client.NewLazyClient(client.Options{HostPort: freeAddr(t)})
		require.NoError(t, err)
		t.Cleanup(c.Close)
		e.client = c
		cat, err := catalog.Open(ctx, "file://"+filepath.Join(home, "catalog"))
		require.NoError(t, err)
		t.Cleanup(func() { cat.Close() })
		e.cat = cat
	}
	cfg := Config{Client: e.client, Catalog: e.cat, Tokens: mustTokens(t, testToken+" admin"), PollInterval: 100 * time.Millisecond}
	if o.config != nil {
		o.config(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewHTTPServer(ln.Addr().String(), NewServer(cfg), nil)
	if o.ioTimeout > 0 {
		srv.ReadTimeout, srv.WriteTimeout = o.ioTimeout, o.ioTimeout
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx), "graceful shutdown")
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	e.url = "http://" + ln.Addr().String()
	return e
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// importV1 puts examples/hello v1 in the catalog as an image of hello.
func (e *apiEnv) importV1() string {
	img, err := e.cat.Import(context.Background(), helloBuild(e.t), "hello", []string{"./hello"}, nil)
	require.NoError(e.t, err)
	return img.ID
}

// rolloutBody is a start request for a rollout of image to env "test", with
// mutations of the spec (a JSON object) applied.
func (e *apiEnv) rolloutBody(image string, mutate ...func(map[string]any)) map[string]any {
	s := map[string]any{
		"service": "hello", "environment": "test", "image": map[string]any{"id": image},
		"fleet": map[string]any{"size": 1}, "listen": e.listen,
		"health": map[string]any{"interval": "100ms", "timeout": "30s"},
		"checks": []any{map[string]any{"path": "/", "expectBody": "v1"}},
		"soak":   "0s",
	}
	for _, m := range mutate {
		m(s)
	}
	return map[string]any{"spec": s}
}

// response is what a client got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), "%s", r.body)
}

// problem decodes a problem response, checking its media type and status.
func (r response) problem(t *testing.T, status int) Problem {
	t.Helper()
	require.Equal(t, status, r.status, "%s", r.body)
	assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	var p Problem
	r.json(t, &p)
	assert.Equal(t, status, p.Status)
	assert.NotEmpty(t, p.Title)
	assert.NotEmpty(t, p.Type)
	return p
}

// do sends a request with token ("" sends none), as a client of the API does:
// a POST, PUT or DELETE says Content-Type: application/json, body or not. body is
// marshalled unless it is a string, []byte or io.Reader; header pairs are set
// last (Host as the request's host), and one set to "" is removed.
func (e *apiEnv) do(method, path string, body any, token string, header ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	require.NoError(e.t, err)
	if body != nil || method == "POST" || method == "PUT" || method == "DELETE" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (e *apiEnv) get(path string) response { return e.do("GET", path, nil, testToken) }

func (e *apiEnv) post(path string, body any) response { return e.do("POST", path, body, testToken) }

// rolloutStatus is GET /v1/rollouts/{service}/{env}, decoded.
func (e *apiEnv) rolloutStatus(service, env string) rolloutStatusJSON {
	e.t.Helper()
	r := e.get("/v1/rollouts/" + service + "/" + env)
	require.Equal(e.t, http.StatusOK, r.status, "%s", r.body)
	var st rolloutStatusJSON
	r.json(e.t, &st)
	return st
}

// rolloutStatusJSON is the status as a client reads it.
type rolloutStatusJSON struct {
	WorkflowID string                    `json:"workflowId"`
	Status     string                    `json:"status"`
	Progress   *contract.RolloutProgress `json:"progress"`
}

// waitRollout polls GET /v1/rollouts/{service}/{env} until ok holds, for a minute.
func (e *apiEnv) waitRollout(what string, ok func(rolloutStatusJSON) bool) rolloutStatusJSON {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var st rolloutStatusJSON
	for time.Now().Before(deadline) {
		r := e.get("/v1/rollouts/hello/test")
		if r.status == http.StatusOK {
			st = rolloutStatusJSON{}
			r.json(e.t, &st)
			if st.Progress != nil && ok(st) {
				return st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("the rollout did not %s within a minute; last status %+v", what, st)
	return st
}

// served asks the rollout's router for / and returns the body.
func (e *apiEnv) served() string {
	e.t.Helper()
	resp, err := http.Get("http://" + e.listen + "/")
	require.NoError(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return strings.TrimSpace(string(body))
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event string
	data      []byte
}

// sseStream reads server-sent events from a response body.
type sseStream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (e *apiEnv) stream(path string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a stream that never ends fails the test
	e.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { resp.Body.Close() })
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	require.Equal(e.t, "text/event-stream", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &sseStream{resp: resp, sc: sc}
}

// next returns the next event; ok is false once the stream closed.
func (s *sseStream) next() (sseEvent, bool) {
	var ev sseEvent
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if ev.event != "" || ev.data != nil {
				return ev, true
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = append(ev.data, strings.TrimPrefix(line, "data: ")...)
		}
	}
	return ev, false
}
