// Package spec holds imago's rollout spec: its YAML form, its defaults and its
// validation, which reports every problem at once with the field path it concerns.
package spec

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"

	"github.com/imago/imago/internal/provider"
)

// Rollout is a rollout spec (its data is contract.Rollout, which the
// Rollout workflow receives) and what it remembers of the YAML file it was
// parsed from, so that its problems name their lines.
type Rollout struct {
	contract.Rollout `yaml:",inline"`

	src *source // the file's lines and decoding problems; nil once normalized
}

// Defaults.
const (
	DefaultEnvironment    = "dev"
	DefaultProvider       = "local"
	DefaultFleetSize      = 2
	DefaultHealthPath     = "/healthz"
	DefaultHealthInterval = contract.Duration(time.Second)
	DefaultHealthTimeout  = contract.Duration(60 * time.Second)
	DefaultSoak           = contract.Duration(30 * time.Second)
	DefaultRetain         = 5
)

// MaxFleetSize is the largest fleet a rollout makes: the rolling strategy is
// tested at this size (internal/app's scale tests).
const MaxFleetSize = 10000

// IsInvalid reports whether err is a spec problem (bad input, not a failure).
func IsInvalid(err error) bool {
	var es contract.FieldErrors
	return errors.As(err, &es)
}

// ParseRollout decodes a rollout spec from YAML (JSON is YAML too). Unknown fields
// are errors, so a typo never silently falls back to a default. It does not apply
// defaults or validate; see Rollout.Normalize. On bad input it returns contract.FieldErrors,
// each with its field path and line, and the part that decoded, whose Normalize
// reports them again together with validation's problems.
func ParseRollout(data []byte) (Rollout, error) {
	var r Rollout
	r.src = decodeYAML(data, &r.Rollout, "the spec is empty; see examples/hello/rollout.yaml")
	if len(r.src.problems) > 0 {
		return r, r.src.problems
	}
	return r, nil
}

// LoadRollout reads and decodes the spec in file path (see ParseRollout).
func LoadRollout(path string) (Rollout, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Rollout{}, fmt.Errorf("read rollout spec: %w", err)
	}
	r, err := ParseRollout(data)
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Normalize applies defaults and validates; it returns contract.FieldErrors listing every
// problem, those of decoding the file included, sorted by line.
func (r *Rollout) Normalize() error {
	if r.src != nil && r.src.broken {
		return r.src.problems
	}
	r.applyDefaults()
	if err := r.src.report(r.Validate()); err != nil {
		return err
	}
	r.src = nil
	return nil
}

func (r *Rollout) applyDefaults() {
	if r.Environment == "" {
		r.Environment = DefaultEnvironment
	}
	if r.Provider == "" {
		r.Provider = DefaultProvider
	}
	if r.Fleet.Size == 0 && !r.Fleet.ZeroSize() {
		r.Fleet.Size = DefaultFleetSize
	}
	if r.Health.Path == "" {
		r.Health.Path = DefaultHealthPath
	}
	if r.Health.Interval == 0 {
		r.Health.Interval = DefaultHealthInterval
	}
	if r.Health.Timeout == 0 {
		r.Health.Timeout = DefaultHealthTimeout
	}
	for i := range r.Checks {
		if r.Checks[i].ExpectStatus == 0 {
			r.Checks[i].ExpectStatus = 200
		}
	}
	if r.Strategy.Type == "" {
		r.Strategy.Type = contract.BlueGreen
	}
	if r.Soak == nil {
		s := DefaultSoak
		r.Soak = &s
	}
	if r.Retain == 0 {
		r.Retain = DefaultRetain
	}
	r.strategyDefaults()
	r.hookDefaults()
}

var providerRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// Validate reports every problem in an already-defaulted spec, with its line
// when the spec was parsed from YAML.
func (r *Rollout) Validate() error {
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: field, Line: r.src.line(field), Msg: fmt.Sprintf(format, args...)})
	}
	checkName := func(field, v string) {
		switch {
		case v == "":
			add(field, "is required")
		case !nameRE.MatchString(v):
			add(field, "%q must be 1-40 lowercase letters, digits or '-', starting and ending with a letter or digit", v)
		}
	}
	checkName("service", r.Service)
	checkName("environment", r.Environment)
	// The providers are the drivers registered in this binary (the CLI, the
	// API and the worker link them all); a program that links none checks the
	// name's form only, and the worker refuses a provider it does not run.
	if known := provider.DefaultURLMux().Names(); len(known) > 0 && !slices.Contains(known, r.Provider) {
		add("provider", "%q is not a provider imago knows; use %s", r.Provider, strings.Join(known, " or "))
	} else if !providerRE.MatchString(r.Provider) {
		add("provider", "%q is not a provider name such as local or aws", r.Provider)
	}

	set := 0
	for _, v := range []string{r.Image.ID, r.Image.Channel, r.Image.Bake} {
		if v != "" {
			set++
		}
	}
	switch {
	case r.Image.OCI != "":
		add("image.oci", "an OCI image is a bake's base only (base: {oci: …} with format: oci); a rollout ships an imago image: set image.id, image.channel or image.bake (an OCI bake's imago image ID: imago image list)")
	case set == 0:
		add("image", "is required: set image.id, image.channel or image.bake (or pass --image ID)")
	case set > 1:
		add("image", "set exactly one of id, channel, bake")
	case r.Image.Channel != "":
		if !channelRE.MatchString(r.Image.Channel) {
			add("image.channel", "%q must be a lowercase name such as stable", r.Image.Channel)
		}
	case r.Image.Bake != "":
	case !strings.HasPrefix(r.Image.ID, "img-"):
		add("image.id", "%q is not an image ID (img-…); list images with: imago image list", r.Image.ID)
	}

	for _, p := range r.Fleet.DecodeProblems() {
		add(p.Field, "%s", p.Msg)
	}
	if (r.Fleet.Size < 1 || r.Fleet.Size > MaxFleetSize) && r.Fleet.DecodeProblems() == nil {
		add("fleet.size", "must be between 1 and %d, got %d", MaxFleetSize, r.Fleet.Size)
	}
	if r.Provider == "local" {
		if r.Listen == "" {
			add("listen", "is required for the local provider: the router's address, e.g. 127.0.0.1:9080")
		} else if err := checkListen(r.Listen); err != nil {
			add("listen", "%v", err)
		}
	}
	if !strings.HasPrefix(r.Health.Path, "/") {
		add("health.path", "%q must start with /", r.Health.Path)
	}
	if r.Health.Interval <= 0 {
		add("health.interval", "must be positive, got %s", r.Health.Interval)
	}
	if r.Health.Timeout < r.Health.Interval {
		add("health.timeout", "%s is shorter than health.interval %s", r.Health.Timeout, r.Health.Interval)
	}
	for i, c := range r.Checks {
		field := fmt.Sprintf("checks[%d]", i)
		if !strings.HasPrefix(c.Path, "/") {
			add(field+".path", "%q must start with /", c.Path)
		}
		if c.ExpectStatus < 100 || c.ExpectStatus > 599 {
			add(field+".expectStatus", "%d is not an HTTP status", c.ExpectStatus)
		}
	}
	r.validateStrategy(add)
	r.validateEnv(add)
	r.validateHooks(add)
	r.validateWindows(add)
	if r.Retain < 1 {
		add("retain", "must be at least 1, got %d", r.Retain)
	}
	if r.Soak != nil && *r.Soak < 0 {
		add("soak", "must not be negative, got %s", *r.Soak)
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port, e.g. 127.0.0.1:9080", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", addr)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host must be an IP address or localhost", addr)
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
