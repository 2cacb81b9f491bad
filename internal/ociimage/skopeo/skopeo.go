// Package skopeo runs Debian's skopeo (scripts/system-deps.sh installs it) for the
// tests that check imago's OCI images with a real tool.
package skopeo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Image is the part of `skopeo inspect REF` the tests read.
type Image struct {
	Digest string
	Labels map[string]string
	Layers []string
}

// Config is the part of `skopeo inspect --config REF` the tests read.
type Config struct {
	Config struct {
		Entrypoint   []string
		Env          []string
		WorkingDir   string
		ExposedPorts map[string]struct{}
		Labels       map[string]string
	} `json:"config"`
}

// Inspect runs `skopeo inspect REF` (oci:DIR, docker-archive:FILE) with a clean
// environment and decodes its JSON.
// more are further options, e.g. --tls-verify=false for a loopback registry.
func Inspect(t testing.TB, ref string, more ...string) Image {
	var img Image
	run(t, &img, append([]string{ref}, more...)...)
	return img
}

// InspectConfig runs `skopeo inspect --config REF` and decodes its JSON.
func InspectConfig(t testing.TB, ref string, more ...string) Config {
	var c Config
	run(t, &c, append([]string{"--config", ref}, more...)...)
	return c
}

func run(t testing.TB, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "skopeo", append([]string{"inspect"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("skopeo inspect %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("skopeo inspect %v: %v (install it: scripts/system-deps.sh skopeo)", args, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("skopeo inspect %v: %v\n%s", args, err, out)
	}
}
