package api

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without IMAGO_BAKE_ROOTS the API bakes nothing from disk: a bake, a rollout's
// inline bake, a pipeline and a schedule that read any file are refused with the
// field and what to set. (The client behind this API points where nothing
// listens: a request that got past the check could not have been answered 400.)
func TestAPIWithoutBakeRootsRefusesEveryBakeReadingFiles(t *testing.T) {
	e := newEnv(t, envOptions{})
	dir := t.TempDir()
	bake := map[string]any{"service": "hello", "source": dir, "entrypoint": []string{"./hello"}}
	hint := " is outside IMAGO_BAKE_ROOTS (unset: the API bakes nothing from disk; set IMAGO_BAKE_ROOTS=/srv/imago/src)"

	p := e.post("/v1/bakes", map[string]any{"spec": map[string]any{"service": "hello", "source": "/etc", "entrypoint": []string{"./hello"}}}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"spec.source"}, fields(p))
	assert.Equal(t, "spec.source: /etc"+hint, p.Errors[0].Error())

	p = e.post("/v1/bakes", map[string]any{"spec": bake}).problem(t, http.StatusBadRequest)
	assert.Equal(t, "spec.source: "+dir+hint, p.Errors[0].Error(), "a directory that exists is refused the same")

	rollout := e.rolloutBody("")
	rollout["spec"].(map[string]any)["image"] = map[string]any{"bake": "bake.yaml"}
	rollout["bake"] = bake
	p = e.post("/v1/rollouts", rollout).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"bake.source"}, fields(p))

	p = e.post("/v1/pipelines", map[string]any{"pipeline": map[string]any{"name": "hello", "bake": bake}}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"pipeline.bake.source"}, fields(p))

	packer := map[string]any{"service": "hello", "builder": "packer", "template": filepath.Join(dir, "image.pkr.hcl")}
	p = e.post("/v1/schedules", map[string]any{"name": "nightly", "cron": "@daily", "bake": packer}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"bake.template"}, fields(p))
	assert.Equal(t, "bake.template: "+filepath.Join(dir, "image.pkr.hcl")+hint, p.Errors[0].Error(),
		"outside the roots, the refusal does not say whether the file exists")
}

// With IMAGO_BAKE_ROOTS set, a bake reading / or through a symlink that leads out
// of the roots, or passing the API's tokens into its build, is refused with each
// field, and nothing starts.
func TestAPIBakeOutsideItsRootsIsRefusedAndNothingStarts(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "app"), 0o755))
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "etc")))
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(root, "app", "hostname")))
	roots := mustRoots(t, root)
	e := newEnv(t, envOptions{temporal: true, config: func(c *Config) { c.BakeRoots = roots }})
	hint := ", outside IMAGO_BAKE_ROOTS (" + roots.String() + ")"

	p := e.post("/v1/bakes", map[string]any{"spec": map[string]any{"service": "hello", "source": "/", "entrypoint": []string{"./hello"}}}).problem(t, http.StatusBadRequest)
	assert.Equal(t, "spec.source: / is outside IMAGO_BAKE_ROOTS ("+roots.String()+")", p.Errors[0].Error())

	p = e.post("/v1/bakes", map[string]any{"spec": map[string]any{
		"service": "hello", "dir": root, "source": "etc", "files": []string{"app/hostname"},
		"passEnv": []string{"PATH", "IMAGO_API_TOKENS"}, "entrypoint": []string{"./hello"},
	}}).problem(t, http.StatusBadRequest)
	assert.ElementsMatch(t, []string{"spec.source", "spec.files[0]", "spec.passEnv[1]"}, fields(p))
	assert.Contains(t, p.Detail, "spec.source: "+filepath.Join(root, "etc")+" resolves to /etc"+hint)
	assert.Contains(t, p.Detail, "spec.files[0]: "+filepath.Join(root, "app", "hostname")+" resolves to /etc/hostname"+hint)
	assert.Contains(t, p.Detail, "spec.passEnv[1]: IMAGO_API_TOKENS may not be passed")

	e.get("/v1/bakes/hello/latest").problem(t, http.StatusNotFound)

	p = e.post("/v1/schedules", map[string]any{"name": "nightly", "cron": "@daily",
		"bake": map[string]any{"service": "hello", "source": "/", "entrypoint": []string{"./hello"}}}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"bake.source"}, fields(p))
	var list ScheduleList
	e.get("/v1/schedules").json(t, &list)
	assert.Empty(t, list.Schedules)

	// A bake reading a directory in the root passes the fence: this one is
	// refused for its channel alone.
	p = e.post("/v1/bakes", map[string]any{"spec": map[string]any{"service": "hello", "dir": root, "source": "app", "entrypoint": []string{"./hello"}, "channel": "Latest"}}).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"spec.channel"}, fields(p))
}
