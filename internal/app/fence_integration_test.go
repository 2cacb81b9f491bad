package app

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/bake/runas"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// workerSecrets are fake secrets set in the worker's environment (this process
// runs the worker): none of them may reach what a bake runs.
var workerSecrets = map[string]string{
	"IMAGO_API_TOKENS":               "tok-imago-api-0123",
	"IMAGO_SECRETS_URL":              "hashivault://imago-payload-key",
	"TEMPORAL_API_KEY":               "tok-temporal-4567",
	"TEMPORAL_TLS_KEY":               "/etc/imago/temporal.key",
	"AWS_ACCESS_KEY_ID":              "AKIAFAKEFENCE",
	"AWS_SECRET_ACCESS_KEY":          "aws-secret-89ab",
	"GOOGLE_APPLICATION_CREDENTIALS": "/etc/imago/gcp.json",
	"VAULT_TOKEN":                    "hvs.vault-cdef",
}

func setWorkerSecrets(t *testing.T) {
	for k, v := range workerSecrets {
		t.Setenv(k, v)
	}
}

// assertNoSecrets checks an `env` listing for the worker's secrets.
func assertNoSecrets(t *testing.T, env string) {
	t.Helper()
	for k, v := range workerSecrets {
		assert.NotContains(t, env, k, "what the bake ran saw:\n%s", env)
		assert.NotContains(t, env, v, "what the bake ran saw:\n%s", env)
	}
	for _, prefix := range []string{"IMAGO_API", "TEMPORAL_", "AWS_", "VAULT_"} {
		for _, l := range strings.Split(env, "\n") {
			assert.False(t, strings.HasPrefix(l, prefix), "%s in what the bake ran saw", l)
		}
	}
}

// probeBake is a local bake of the prebuilt hello v1 whose provisioning records
// its environment and uid in the image.
func probeBake(t *testing.T) spec.Bake {
	b := spec.Bake{Bake: contract.Bake{
		Service: "hello", Source: filepath.Join(helloBuilds, "v1"),
		Provision:  contract.ShellSteps("env > env.txt", "id -u > uid.txt"),
		PassEnv:    []string{"PATH"},
		Entrypoint: []string{"./hello"},
		Test:       contract.ImageTest{Checks: []contract.Check{{Path: "/", ExpectBody: "v1"}}},
	}}
	require.NoError(t, b.Normalize())
	return b
}

// imageFile reads a file of a published image's archive.
func (e *env) imageFile(imageID, name string) string {
	ctx := context.Background()
	img, err := e.deps.Catalog.Get(ctx, imageID)
	require.NoError(e.t, err)
	rc, err := e.deps.Catalog.OpenArchive(ctx, img)
	require.NoError(e.t, err)
	defer rc.Close()
	dir := filepath.Join(e.t.TempDir(), "img")
	require.NoError(e.t, image.Unpack(rc, dir, img.Digest, image.Limits{}))
	data, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(e.t, err)
	return string(data)
}

// packerProbe copies internal/bake/testdata/probe.pkr.hcl, a template whose
// shell-local provisioner writes its environment and uid to out/env.txt, into a
// root of its own. Both are open to the bake user (out writable).
func packerProbe(t *testing.T) (root, template, out string) {
	root, out = t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Dir(root), root, filepath.Dir(out)} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	require.NoError(t, os.Chmod(out, 0o777))
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "bake", "testdata", "probe.pkr.hcl"))
	require.NoError(t, err)
	template = filepath.Join(root, "probe.pkr.hcl")
	require.NoError(t, os.WriteFile(template, data, 0o644))
	require.NoError(t, os.Chmod(template, 0o644)) // the tests' umask is 077 (TestMain)
	return root, template, out
}

// bakeProbe bakes the packer probe through the worker and returns what its
// provisioner saw.
func (e *env) bakeProbe(template, out string) string {
	b := spec.Bake{Bake: contract.Bake{Service: "probe", Builder: contract.BuilderPacker, Template: template, Vars: map[string]string{"out": out}, PassEnv: []string{"PATH"}}}
	require.NoError(e.t, b.Normalize())
	_, err := e.bake(b)
	require.NoError(e.t, err)
	data, err := os.ReadFile(filepath.Join(out, "env.txt"))
	require.NoError(e.t, err)
	return string(data)
}

// What a bake runs, through the real worker, sees none of the worker's
// secrets: the imago-local builder's provision commands, and packer with the
// template's shell-local provisioner.
func TestBakesSeeNoneOfTheWorkersSecrets(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	setWorkerSecrets(t)

	res, err := e.bake(probeBake(t))
	require.NoError(t, err)
	env := e.imageFile(res.ImageID, "env.txt")
	assert.Contains(t, env, "PATH="+os.Getenv("PATH"))
	assertNoSecrets(t, env)

	_, template, out := packerProbe(t)
	env = e.bakeProbe(template, out)
	assert.Contains(t, env, "CHECKPOINT_DISABLE=1")
	assertNoSecrets(t, env)
}

// A worker with IMAGO_BAKE_USER runs both builders' commands as that user (a
// worker that is not root refuses the bake, saying why).
func TestBakeUserRunsWhatABakeRuns(t *testing.T) {
	e := newEnv(t)
	nobody, err := runas.Parse("nobody")
	require.NoError(t, err)
	e.deps.Activities.BakeUser = nobody
	e.startWorker()

	res, err := e.bake(probeBake(t))
	if os.Geteuid() != 0 {
		require.Error(t, err)
		assert.Contains(t, rollouts.Reason(err), "this worker runs as uid "+strconv.Itoa(os.Geteuid())+" and cannot run bakes as another user")
		return
	}
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(int(nobody.UID))+"\n", e.imageFile(res.ImageID, "uid.txt"))

	_, template, out := packerProbe(t)
	assert.Contains(t, e.bakeProbe(template, out), "uid="+strconv.Itoa(int(nobody.UID)))
}

// A worker with IMAGO_BAKE_ROOTS checks every bake, whoever started it (here
// straight through Temporal, with a spec no client validated): a path outside
// the roots, a symlink leading out of them and a passEnv of secrets each fail
// the bake with the field, and nothing is built.
func TestWorkerFenceRefusesBakesWhoeverStartedThem(t *testing.T) {
	e := newEnv(t)
	root, template, out := packerProbe(t)
	roots, err := spec.ParseBakeRoots(helloBuilds + ":" + root)
	require.NoError(t, err)
	e.deps.Activities.BakeRoots = roots
	e.startWorker()
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(root, "hostname")))

	for _, tc := range []struct {
		mutate func(*spec.Bake)
		want   string
	}{
		{func(b *spec.Bake) { b.Source = "/" }, "source: / is outside IMAGO_BAKE_ROOTS (" + roots.String() + ")"},
		{func(b *spec.Bake) { b.Files = []string{filepath.Join(root, "hostname")} },
			"files[0]: " + filepath.Join(root, "hostname") + " resolves to /etc/hostname, outside IMAGO_BAKE_ROOTS"},
		{func(b *spec.Bake) { b.PassEnv = []string{"PATH", "IMAGO_API_TOKENS"} }, "passEnv[1]: IMAGO_API_TOKENS may not be passed"},
		{func(b *spec.Bake) {
			b.Builder, b.Source, b.Template = contract.BuilderPacker, "", "/etc/imago/image.pkr.hcl"
		},
			"template: /etc/imago/image.pkr.hcl is outside IMAGO_BAKE_ROOTS"},
	} {
		b := probeBake(t)
		tc.mutate(&b)
		_, err := e.bakeUnvalidated(b)
		require.Error(t, err, tc.want)
		msg := rollouts.Reason(err)
		assert.Contains(t, msg, "bake of hello failed while computing the input digest: bake refused by this worker's fence: ")
		assert.Contains(t, msg, tc.want)
	}
	imgs, err := e.deps.Catalog.List(context.Background(), "hello")
	require.NoError(t, err)
	assert.Empty(t, imgs)
	_, err = os.Stat(filepath.Join(e.cfg.Home, "bakes"))
	assert.True(t, os.IsNotExist(err), "nothing was built: %v", err)

	// The same worker bakes what lies in its roots.
	_, err = e.bake(probeBake(t))
	require.NoError(t, err)
	assert.Contains(t, e.bakeProbe(template, out), "uid=")
}

// bakeUnvalidated starts a Bake workflow straight through Temporal, as any
// client of the namespace could, without the spec validation of bakes.Start.
func (e *env) bakeUnvalidated(b spec.Bake) (contract.BakeResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: b.WorkflowID(), TaskQueue: contract.TaskQueue},
		workflows.Bake, contract.BakeInput{Spec: b.Bake, StartedBy: "straight-through-temporal"})
	require.NoError(e.t, err)
	var res contract.BakeResult
	return res, run.Get(ctx, &res)
}

func TestBakeFenceSettingsFromTheEnvironment(t *testing.T) {
	root := t.TempDir()
	t.Setenv(spec.BakeRootsEnv, root)
	t.Setenv(runas.Env, "nobody")
	c := ConfigFromEnv()
	c.Home = t.TempDir()
	deps, err := OpenDeps(context.Background(), c)
	require.NoError(t, err)
	defer deps.Close()
	assert.Equal(t, mustEval(t, root), deps.Activities.BakeRoots.String())
	require.NotNil(t, deps.Activities.BakeUser)
	assert.Equal(t, "nobody", deps.Activities.BakeUser.Spec)

	_, err = OpenDeps(context.Background(), Config{Home: t.TempDir(), BakeRoots: "srv/imago"})
	assert.EqualError(t, err, `IMAGO_BAKE_ROOTS: "srv/imago" is not an absolute directory`)
	_, err = OpenDeps(context.Background(), Config{Home: t.TempDir(), BakeUser: "root"})
	assert.ErrorContains(t, err, "IMAGO_BAKE_USER=root: bakes must not run as root")
}

func mustEval(t *testing.T, p string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(p)
	require.NoError(t, err)
	return real
}
