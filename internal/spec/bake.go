package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/imago/imago/internal/ansible"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/ociimage"
)

// Bake is a bake spec (its data is contract.Bake, which the Bake workflow
// receives) and what it remembers of the YAML file it was parsed from.
type Bake struct {
	contract.Bake `yaml:",inline"`

	src *source // the file's lines and decoding problems; nil for a spec sent as JSON
}

// Formats of a bake's output.
const (
	FormatLocal = "local"
	FormatOCI   = "oci"
	FormatVM    = "vm"
)

var channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// ParseBake decodes a bake spec; unknown fields are errors. The spec remembers
// the line of each field, which its validation problems then name. On bad input
// it returns contract.FieldErrors and the part that decoded, whose Normalize reports them again
// together with validation's problems.
func ParseBake(data []byte) (Bake, error) {
	var b Bake
	b.src = decodeYAML(data, &b.Bake, "the bake spec is empty; see examples/hello/bake.yaml")
	if len(b.src.problems) > 0 {
		return b, b.src.problems
	}
	return b, nil
}

// fieldError is a problem with field, naming its YAML line when known.
func (b *Bake) fieldError(field, format string, args ...any) contract.FieldError {
	return contract.FieldError{Field: field, Line: b.src.line(field), Msg: fmt.Sprintf(format, args...)}
}

// abs resolves a relative path of the spec against Dir.
func (b *Bake) abs(p string) string {
	if p == "" || filepath.IsAbs(p) || b.Dir == "" {
		return p
	}
	return filepath.Join(b.Dir, p)
}

// LoadBake reads a bake spec file; relative paths in it are resolved against the
// file's directory.
func LoadBake(path string) (Bake, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Bake{}, fmt.Errorf("read bake spec: %w", err)
	}
	b, perr := ParseBake(data)
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return b, err
	}
	b.Dir = abs
	if perr != nil {
		return b, fmt.Errorf("%s: %w", path, perr)
	}
	return b, nil
}

// Normalize applies defaults, makes paths absolute and validates; it returns
// contract.FieldErrors listing every problem, those of decoding the file included, sorted by line.
func (b *Bake) Normalize() error {
	if b.src != nil && b.src.broken {
		return b.src.problems
	}
	if b.Builder == "" {
		b.Builder = contract.BuilderLocal
	}
	if b.Channel == "" {
		b.Channel = "latest"
	}
	if b.Test.Health.Path == "" {
		b.Test.Health.Path = DefaultHealthPath
	}
	if b.Test.Health.Interval == 0 {
		b.Test.Health.Interval = contract.Duration(200e6)
	}
	if b.Test.Health.Timeout == 0 {
		b.Test.Health.Timeout = contract.Duration(30e9)
	}
	for i := range b.Test.Checks {
		if b.Test.Checks[i].ExpectStatus == 0 {
			b.Test.Checks[i].ExpectStatus = 200
		}
	}
	b.Source, b.Template = b.abs(b.Source), b.abs(b.Template)
	for i := range b.Files {
		b.Files[i] = b.abs(b.Files[i])
	}
	for i := range b.Provision {
		b.Provision[i].Ansible = b.abs(b.Provision[i].Ansible)
	}
	for i, d := range b.Destinations {
		if dest, err := ociimage.ParseDestination(d, b.Dir); err == nil {
			b.Destinations[i] = dest.String()
		}
	}
	if b.Base != nil && b.Base.OCI != "" {
		if base, err := ociimage.ParseBase(b.Base.OCI, b.Dir); err == nil {
			b.Base.OCI = base.String()
		}
	}
	return b.src.report(b.Validate())
}

// Validate reports every problem in a defaulted bake spec, with its YAML line
// when the spec was parsed from YAML.
func (b *Bake) Validate() error {
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, b.fieldError(field, format, args...))
	}
	if b.Service == "" {
		add("service", "is required")
	} else if !nameRE.MatchString(b.Service) {
		add("service", "%q must be 1-40 lowercase letters, digits or '-'", b.Service)
	}
	switch b.Builder {
	case contract.BuilderLocal:
		if b.Source == "" && len(b.Files) == 0 {
			add("source", "set source (a directory) or files for the imago-local builder")
		}
		if b.Source != "" {
			if fi, err := os.Stat(b.Source); err != nil || !fi.IsDir() {
				add("source", "%s is not a directory", b.Source)
			}
		}
		for i, f := range b.Files {
			if _, err := os.Stat(f); err != nil {
				add(fmt.Sprintf("files[%d]", i), "%s does not exist", f)
			}
		}
		if len(b.Entrypoint) == 0 {
			add("entrypoint", "is required for the imago-local builder, e.g. [./hello]")
		} else if err := entrypoint.CheckEnv(b.Entrypoint, func(string) bool { return false }); err != nil {
			// The image test boots one instance with PORT and HOST only.
			add("entrypoint", "%v: a bake tests its image on an instance that has only PORT and HOST; read other settings from the environment in the program (a rollout's env: gives them) rather than in the entrypoint", err)
		}
		if b.Template != "" {
			add("template", "is for builder packer; the imago-local builder uses source and provision")
		}
		for i, st := range b.Provision {
			field := fmt.Sprintf("provision[%d]", i)
			switch {
			case st.Ansible == "" && len(st.ExtraVars) > 0:
				add(field+".extraVars", "are for an ansible step; set ansible: PLAYBOOK")
			case st.Ansible == "" && strings.TrimSpace(st.Shell) == "":
				add(field, "is empty: give a shell command or {ansible: PLAYBOOK}")
			case st.Ansible != "":
				if fi, err := os.Stat(st.Ansible); err != nil || !fi.Mode().IsRegular() {
					add(field+".ansible", "%s is not a playbook file", st.Ansible)
				}
				for _, msg := range ansible.ExtraVarErrors(st.ExtraVars) {
					add(field+".extraVars", "%s", msg)
				}
			}
		}
		for i, inc := range b.Include {
			if filepath.IsAbs(inc) || strings.HasPrefix(filepath.Clean(inc), "..") {
				add(fmt.Sprintf("include[%d]", i), "%q must be a path inside the staging directory", inc)
			}
		}
	case contract.BuilderPacker:
		if b.Template == "" {
			add("template", "is required for builder packer: an HCL2 file or directory")
		} else if _, err := os.Stat(b.Template); err != nil {
			add("template", "%s does not exist", b.Template)
		}
		if len(b.Provision) > 0 || b.Source != "" {
			add("provision", "is for the imago-local builder; put provisioners in the Packer template")
		}
	default:
		add("builder", "%q is not a builder imago knows; use imago-local or packer", b.Builder)
	}
	switch b.Format {
	case "", FormatLocal:
		if len(b.Destinations) > 0 {
			add("destinations", "are for format: oci; set format: oci or remove them")
		}
	case FormatOCI:
		if b.Builder != contract.BuilderLocal {
			add("format", "oci is for the imago-local builder; a packer template makes its own artifacts")
		}
		if len(b.Destinations) == 0 {
			add("destinations", "format: oci needs at least one, e.g. [oci-layout://out/hello-oci, docker-archive://out/hello.tar]")
		}
		if vars, err := entrypoint.Vars(b.Entrypoint); err == nil && len(vars) > 0 {
			add("entrypoint", "an OCI image's entrypoint runs without a shell, so $%s would not be expanded; read it from the environment in the program", vars[0])
		}
	case FormatVM:
		if b.Builder != contract.BuilderLocal {
			add("format", "vm is for the imago-local builder; a packer template makes its own artifacts (see docs/operations.md for packer-plugin-qemu)")
		}
		if len(b.Destinations) > 0 {
			add("destinations", "are for format: oci; a VM image's disk stays beside the worker (IMAGO_HOME/vm-images)")
		}
	default:
		add("format", "%q: want local, oci or vm", b.Format)
	}
	for i, d := range b.Destinations {
		if _, err := ociimage.ParseDestination(d, b.Dir); err != nil {
			add(fmt.Sprintf("destinations[%d]", i), "%v", err)
		}
	}
	for k := range b.Variables {
		if !envNameRE.MatchString(k) {
			add("variables."+k, "is not an environment variable name")
		}
	}
	for _, e := range PassEnvErrors(b.PassEnv) {
		add(e.Field, "%s", e.Msg)
	}
	if !channelRE.MatchString(b.Channel) {
		add("channel", "%q must be a lowercase name such as latest or stable", b.Channel)
	}
	if b.Base != nil && b.Base.OCI != "" {
		switch {
		case b.Base.ID != "" || b.Base.Channel != "" || b.Base.Service != "":
			add("base.oci", "an OCI base is the whole base: remove id, service and channel")
		case b.Format != FormatOCI:
			add("base.oci", "an OCI base is for format: oci (an imago image's base is {id} or {service, channel})")
		}
		if _, err := ociimage.ParseBase(b.Base.OCI, b.Dir); err != nil {
			add("base.oci", "%v", err)
		}
	} else if b.Base != nil {
		if (b.Base.ID == "") == (b.Base.Channel == "") {
			add("base", "set exactly one of id or channel (or oci: oci-layout://DIR for format: oci)")
		}
		if b.Base.Bake != "" {
			add("base.bake", "a base is an existing image: use id or channel")
		}
	}
	if !strings.HasPrefix(b.Test.Health.Path, "/") {
		add("test.health.path", "%q must start with /", b.Test.Health.Path)
	}
	for i, c := range b.Test.Checks {
		if !strings.HasPrefix(c.Path, "/") {
			add(fmt.Sprintf("test.checks[%d].path", i), "%q must start with /", c.Path)
		}
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
