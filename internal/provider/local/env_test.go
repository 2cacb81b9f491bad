package local

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// importEntry imports the test app with entrypoint words.
func importEntry(t *testing.T, words ...string) contract.Image {
	t.Helper()
	img, err := testCatalog.Import(context.Background(), appDir, "web", words, nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// secretFile writes value to a 0600 file and returns its file:// reference.
func secretFile(t *testing.T, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + p
}

func TestEntrypointIsExpandedAndInstancesGetTheRolloutEnv(t *testing.T) {
	t.Setenv("IMAGO_TEST_WORKER_ONLY", "must not reach instances")
	const password = "s3cr3t-Zq8w"
	env := map[string]contract.EnvVar{
		"GREETING":    {Value: "hi there"},
		"LOG_LEVEL":   {Value: "debug"},
		"DB_PASSWORD": {Secret: secretFile(t, password)},
	}
	for name, words := range map[string][]string{
		"program": {"./hello", "--port", "$PORT", "-version=${GREETING}"},
		// imago expands before the shell runs; $$ leaves a $ for the shell.
		"shell": {"/bin/sh", "-c", "exec ./hello -port $PORT -version=\"$GREETING from $$0\"", "sh"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			img := importEntry(t, words...)
			f, err := e.d.Provision(context.Background(), contract.ProvisionRequest{
				Token: "env-" + name, Service: "web", Environment: "test", ImageID: img.ID, Size: 2, Env: env,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := "hi there"
			if name == "shell" {
				want = "hi there from sh"
			}
			for _, in := range f.Instances {
				base := "http://" + in.Address
				waitBody(t, base+"/", want)
				_, port, _ := net.SplitHostPort(in.Address)
				for k, v := range map[string]string{"PORT": port, "HOST": "127.0.0.1", "LOG_LEVEL": "debug", "DB_PASSWORD": password} {
					waitBody(t, base+"/env/"+k, v)
				}
				if code, body, err := httpGet(base + "/env/IMAGO_TEST_WORKER_ONLY"); err != nil || code != 404 {
					t.Errorf("the worker's own environment reached the instance: %d %q %v", code, body, err)
				}
			}
			// A grown fleet's instances get the same environment (the state keeps the references).
			g, err := e.d.Resize(context.Background(), f.ID, 3)
			if err != nil {
				t.Fatal(err)
			}
			waitBody(t, "http://"+g.Instances[2].Address+"/env/DB_PASSWORD", password)
			waitBody(t, "http://"+g.Instances[2].Address+"/", want)

			// The secret's value is in no file of the driver: state, logs.
			filepath.WalkDir(e.home, func(p string, de os.DirEntry, err error) error {
				if err == nil && de.Type().IsRegular() && !strings.HasPrefix(p, filepath.Join(e.home, "images")) {
					if data, _ := os.ReadFile(p); strings.Contains(string(data), password) {
						t.Errorf("%s holds the secret's value", p)
					}
				}
				return nil
			})
		})
	}
}

func TestBadEnvOrEntrypointStartsNothing(t *testing.T) {
	e := newEnv(t)
	missing := "file://" + filepath.Join(t.TempDir(), "no-such-secret")
	for _, tc := range []struct {
		name  string
		words []string
		env   map[string]contract.EnvVar
		code  provider.Code
		want  string
	}{
		{"unknown variable", []string{"./hello", "-version=${GREETING}"}, nil, provider.InvalidArgument,
			`: entrypoint "./hello -version=${GREETING}" uses GREETING, which is neither PORT, HOST nor a key of env`},
		{"reserved name", []string{"./hello"}, map[string]contract.EnvVar{"PORT": {Value: "80"}}, provider.InvalidArgument, "env.PORT: not a name the rollout may set"},
		{"missing secret", []string{"./hello"}, map[string]contract.EnvVar{"DB": {Secret: missing}}, provider.FailedPrecondition,
			"env.DB: secret " + missing + ": the file does not exist on the worker's host"},
		{"relative secret", []string{"./hello"}, map[string]contract.EnvVar{"DB": {Secret: "file:secret"}}, provider.FailedPrecondition, "must be an absolute path"},
		{"guarded secret", []string{"./hello"}, map[string]contract.EnvVar{"DB": {Secret: "http://169.254.169.254/latest/meta-data"}}, provider.FailedPrecondition,
			"refused by imago's outbound guard"},
		{"missing program", []string{"./whoami", "--port", "$PORT"}, nil, provider.InvalidArgument,
			"entrypoint: program ./whoami is a path inside the image and does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := importEntry(t, tc.words...)
			_, err := e.d.Provision(context.Background(), contract.ProvisionRequest{
				Token: "bad-" + tc.name, Service: "web", Environment: "test", ImageID: img.ID, Size: 1, Env: tc.env,
			})
			var perr *provider.Error
			if !errors.As(err, &perr) || perr.Code != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %v containing %q", err, tc.code, tc.want)
			}
			if ps, _ := processes(e.home); len(ps) != 0 {
				t.Errorf("processes started: %+v", ps)
			}
			if fs, _ := e.d.ListFleets(context.Background(), provider.Filter{}); len(fs) != 0 {
				t.Errorf("fleets recorded: %+v", fs)
			}
		})
	}
}
