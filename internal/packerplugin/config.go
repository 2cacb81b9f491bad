//go:generate go run github.com/hashicorp/packer-plugin-sdk/cmd/packer-sdc@v0.6.6 mapstructure-to-hcl2 -type Config

// config.hcl2spec.go is generated from Config by the line above. Where the
// module proxy refuses to list HashiCorp's module versions, `go run pkg@version`
// fails while looking up deprecations; serve the list from the module cache:
//
//	GOPROXY="file://$(go env GOMODCACHE)/cache/download,https://proxy.golang.org" go generate ./internal/packerplugin/

package packerplugin

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"

	"github.com/imago/imago/internal/entrypoint"
)

// DefaultOutputDir is where artifacts go when output_dir is not set.
const DefaultOutputDir = "output-imago-local"

// Config is the configuration of the imago-local builder.
//
// In HCL2:
//
//	source "imago-local" "hello" {
//	  service    = "hello"
//	  source_dir = "./app"
//	  provision  = ["go build -o hello ."]
//	  pass_env   = ["PATH", "HOME", "GOCACHE"]
//	  entrypoint = ["./hello"]
//	  include    = ["hello", "static"]
//	}
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The service the image is for. Lowercase letters, digits and '-', at most
	// 40 characters. Required.
	Service string `mapstructure:"service" required:"true"`
	// A directory whose contents are copied into a fresh staging directory.
	// At least one of source_dir and files is required.
	SourceDir string `mapstructure:"source_dir"`
	// Files (or directories) copied into the root of the staging directory,
	// under their base names, after source_dir.
	Files []string `mapstructure:"files"`
	// Inline shell commands run in order with `/bin/sh -c` in the staging
	// directory. Their environment holds only env and the names in pass_env.
	Provision []string `mapstructure:"provision"`
	// Environment variables declared for the provision commands.
	Env map[string]string `mapstructure:"env"`
	// Names of variables copied from the builder's own environment into the
	// provision commands' environment, e.g. PATH, HOME, GOCACHE. Names that
	// are not set are left out.
	PassEnv []string `mapstructure:"pass_env"`
	// The program (and its arguments) the image runs, e.g. ["./hello"]. The
	// program must be an executable file in the image. Required.
	Entrypoint []string `mapstructure:"entrypoint" required:"true"`
	// Paths relative to the staging directory that make up the image. By
	// default the whole staging directory is the image.
	Include []string `mapstructure:"include"`
	// Labels recorded with the image.
	Labels map[string]string `mapstructure:"labels"`
	// Where the artifact files (<image-id>.tar.gz and <image-id>.json) are
	// written. Defaults to output-imago-local, relative to the working
	// directory. Artifacts of a different build in it are an error unless
	// the build is forced (packer build -force).
	OutputDir string `mapstructure:"output_dir"`
}

var (
	serviceRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Prepare decodes raws into c, applies defaults, and validates the result. It
// returns every problem at once.
//
// Go-template interpolation of legacy JSON templates is off: HCL2 does its own
// interpolation, and provision commands may hold "{{" literally.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	if err := config.Decode(c, &config.DecodeOpts{Interpolate: false}, raws...); err != nil {
		return nil, err
	}
	var warnings []string
	var errs *packersdk.MultiError
	add := func(format string, args ...any) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, args...))
	}

	if c.Service == "" {
		add("service is required")
	} else if !serviceRE.MatchString(c.Service) {
		add("service %q must be 1-40 lowercase letters, digits or '-'", c.Service)
	}

	if c.SourceDir == "" && len(c.Files) == 0 {
		add("set source_dir (a directory) and/or files: the image needs some content")
	}
	if c.SourceDir != "" {
		if fi, err := os.Stat(c.SourceDir); err != nil {
			add("source_dir %s: %v", c.SourceDir, statReason(err))
		} else if !fi.IsDir() {
			add("source_dir %s is not a directory", c.SourceDir)
		} else {
			c.SourceDir = mustAbs(c.SourceDir)
		}
	}
	seen := map[string]int{}
	for i, f := range c.Files {
		if f == "" {
			add("files[%d] is empty", i)
			continue
		}
		if _, err := os.Lstat(f); err != nil {
			add("files[%d] %s: %v", i, f, statReason(err))
			continue
		}
		c.Files[i] = mustAbs(f)
		base := filepath.Base(c.Files[i])
		if j, dup := seen[base]; dup {
			add("files[%d] and files[%d] both copy to %q in the staging directory", j, i, base)
		}
		seen[base] = i
	}

	for i, cmd := range c.Provision {
		if strings.TrimSpace(cmd) == "" {
			add("provision[%d] is an empty command", i)
		}
	}
	for name := range c.Env {
		if !envNameRE.MatchString(name) {
			add("env: %q is not an environment variable name", name)
		}
	}
	for i, name := range c.PassEnv {
		switch {
		case !envNameRE.MatchString(name):
			add("pass_env[%d]: %q is not an environment variable name", i, name)
		case c.Env != nil && hasKey(c.Env, name):
			add("pass_env[%d]: %s is also declared in env; declare it in one place", i, name)
		}
	}

	switch {
	case len(c.Entrypoint) == 0 || c.Entrypoint[0] == "":
		add("entrypoint is required: the program the image runs, e.g. [\"./hello\"]")
	case filepath.IsAbs(c.Entrypoint[0]): // a program of the host (/bin/sh), checked when packing
	default:
		if err := checkRelPath(c.Entrypoint[0]); err != nil {
			add("entrypoint %q: %v", c.Entrypoint[0], err)
		}
	}
	if _, err := entrypoint.Vars(c.Entrypoint); err != nil {
		add("entrypoint cannot be expanded: %v", err)
	}
	for i, inc := range c.Include {
		if err := checkRelPath(inc); err != nil {
			add("include[%d] %q: %v", i, inc, err)
		}
	}
	for k := range c.Labels {
		if strings.TrimSpace(k) == "" {
			add("labels: a label name is empty")
		}
	}

	if c.OutputDir == "" {
		c.OutputDir = DefaultOutputDir
	}
	if fi, err := os.Stat(c.OutputDir); err == nil && !fi.IsDir() {
		add("output_dir %s exists and is not a directory", c.OutputDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		add("output_dir %s: %v", c.OutputDir, err)
	}
	c.OutputDir = mustAbs(c.OutputDir)

	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// checkRelPath accepts a slash-separated path inside the staging directory.
func checkRelPath(p string) error {
	if p == "" {
		return errors.New("is empty")
	}
	if filepath.IsAbs(p) || strings.HasPrefix(p, "/") {
		return errors.New("must be relative to the staging directory")
	}
	clean := path.Clean(filepath.ToSlash(p))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return errors.New("points outside the staging directory")
	}
	return nil
}

func statReason(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "does not exist"
	}
	return err.Error()
}

func mustAbs(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
