package bake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/imago/imago/internal/bake/runas"
)

const (
	// DefaultGrace is how long RunPacker lets packer clean up after SIGINT
	// before it SIGKILLs the process group.
	DefaultGrace = 30 * time.Second
	// DefaultManifest is the manifest path (relative to PackerRun.Dir)
	// used when PackerRun.Manifest is empty. It is also the manifest
	// post-processor's own default output.
	DefaultManifest = "packer-manifest.json"
)

// PackerRun describes one `packer build`.
type PackerRun struct {
	// Packer is the packer binary (path or name looked up in PATH).
	Packer string
	// Template is the HCL2 template file or directory, relative to Dir
	// unless absolute.
	Template string
	// Vars are passed as -var k=v, sorted by key.
	Vars map[string]string
	// VarFiles are passed as -var-file=f, in order, before Vars (so Vars
	// win).
	VarFiles []string
	// Dir is packer's working directory ("" = the current one).
	Dir string
	// Packer's environment is clean: PATH, HOME and TMPDIR, packer's own
	// settings (PACKER_*, PKR_VAR_*) and the PassEnv names, each copied from this
	// process's environment when set, then Env. CHECKPOINT_DISABLE=1 and
	// PACKER_NO_COLOR=1 are always set. Nothing else of this process's
	// environment (tokens, keys, the keeper's URL) reaches packer, its plugins
	// or the template's provisioners.
	PassEnv []string
	Env     []string
	// Home, when set, is packer's HOME (and Home/tmp its TMPDIR): a directory
	// of its own when it runs as another user.
	Home string
	// User, when set, runs packer (and so its plugins and provisioners) as
	// another user; see runas. Dir and Home must be that user's to write.
	User *runas.User
	// Manifest is the path the template's manifest post-processor writes,
	// relative to Dir unless absolute; "" means DefaultManifest.
	Manifest string
	// OnEvent, if set, is called for every machine-readable line of the
	// build, in order, from a single goroutine. It should return quickly:
	// packer blocks while its output is not read. Note that packer does
	// not redact sensitive variables in machine-readable output.
	OnEvent func(Event)
	// Force passes -force to packer build (also makes the manifest
	// post-processor start a fresh file).
	Force bool
	// Grace is the time between SIGINT and SIGKILL when ctx is cancelled;
	// 0 means DefaultGrace.
	Grace time.Duration
}

// TemplateError means packer rejected the template (or its variables)
// before building anything, or the template does not produce the manifest
// RunPacker needs. Retrying will not help.
type TemplateError struct {
	// Message is packer's own error text, trimmed.
	Message string
}

func (e *TemplateError) Error() string { return "packer template invalid: " + e.Message }

// BuildError means `packer build` exited non-zero. It may succeed when
// retried (cloud API hiccups, flaky provisioners).
type BuildError struct {
	ExitCode int
	// Message is the text of packer's `ui,error` lines (at most the last
	// 16 KiB), or its plain output when there were none.
	Message string
	// Builds maps targets ("file.x") to their error from
	// `<target>,error,<message>` lines.
	Builds map[string]string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("packer build failed (exit code %d): %s", e.ExitCode, e.Message)
}

// ErrInvalidRun is wrapped by the errors RunPacker returns for a PackerRun
// that cannot be run at all (no binary or template given, bad var names).
var ErrInvalidRun = errors.New("bake: invalid packer run")

const maxMessage = 16 << 10

// RunPacker validates r.Template with `packer validate`, then runs
// `packer build -machine-readable`, and returns the result recorded by the
// template's manifest post-processor, cross-checked with ResultFrom.
//
// Errors: *TemplateError when validation fails or no manifest was written
// for this run; *BuildError when the build exits non-zero; an error
// wrapping ctx.Err() when ctx ends first (packer got SIGINT, then SIGKILL
// after r.Grace; the process group is always killed and reaped before
// RunPacker returns); errors wrapping ErrInvalidRun for a bad PackerRun.
func RunPacker(ctx context.Context, r PackerRun) (Result, error) {
	if r.Packer == "" {
		return Result{}, fmt.Errorf("%w: no packer binary", ErrInvalidRun)
	}
	if r.Template == "" {
		return Result{}, fmt.Errorf("%w: no template", ErrInvalidRun)
	}
	varArgs, err := r.varArgs()
	if err != nil {
		return Result{}, err
	}
	template := r.Template
	if strings.HasPrefix(template, "-") {
		template = "./" + template
	}
	if _, err := os.Stat(r.path(r.Template)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Result{}, &TemplateError{Message: fmt.Sprintf("template %s does not exist", r.Template)}
		}
		return Result{}, fmt.Errorf("bake: template: %w", err)
	}
	manifestPath := r.Manifest
	if manifestPath == "" {
		manifestPath = DefaultManifest
	}
	manifestPath = r.path(manifestPath)
	// A manifest from an earlier run must not pass for this run's.
	priorRun := ""
	if data, err := os.ReadFile(manifestPath); err == nil {
		if m, err := ParseManifest(data); err == nil {
			priorRun = m.LastRunUUID
		}
	}

	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("bake: packer not started: %w", err)
	}
	if r.Home != "" {
		tmp := filepath.Join(r.Home, "tmp")
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			return Result{}, fmt.Errorf("bake: packer's TMPDIR: %w", err)
		}
		if err := r.User.Own(tmp); err != nil {
			return Result{}, fmt.Errorf("bake: packer's TMPDIR: %w", err)
		}
	}
	validate := append(append([]string{"validate", "-machine-readable"}, varArgs...), template)
	out, err := r.runProcess(ctx, validate, nil)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil && out.exitCode != 0 {
		return Result{}, fmt.Errorf("bake: packer validate interrupted: %w", err)
	}
	if out.exitCode != 0 {
		return Result{}, &TemplateError{Message: out.message()}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("bake: packer build not started: %w", err)
	}

	build := []string{"build", "-machine-readable", "-color=false"}
	if r.Force {
		build = append(build, "-force")
	}
	build = append(append(build, varArgs...), template)
	out, err = r.runProcess(ctx, build, r.OnEvent)
	if err != nil {
		return Result{}, err
	}
	if out.exitCode != 0 {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("bake: packer build interrupted (exit code %d): %w", out.exitCode, err)
		}
		return Result{}, &BuildError{ExitCode: out.exitCode, Message: out.message(), Builds: out.buildErrors}
	}

	data, err := os.ReadFile(manifestPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, &TemplateError{Message: fmt.Sprintf(
			"packer build succeeded but wrote no manifest %s; the template needs a post-processor \"manifest\" writing there", manifestPath)}
	}
	if err != nil {
		return Result{}, fmt.Errorf("bake: read packer manifest: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return Result{}, err
	}
	if m.LastRunUUID == "" || m.LastRunUUID == priorRun {
		return Result{}, &TemplateError{Message: fmt.Sprintf(
			"packer build succeeded but did not record this run in manifest %s (its last run %q is from an earlier build); does every build have a manifest post-processor writing there?",
			manifestPath, m.LastRunUUID)}
	}
	return ResultFrom(out.events, m)
}

// path resolves p relative to r.Dir.
func (r PackerRun) path(p string) string {
	if filepath.IsAbs(p) || r.Dir == "" {
		return p
	}
	return filepath.Join(r.Dir, p)
}

// varArgs returns the -var-file and -var arguments, vars sorted by key.
func (r PackerRun) varArgs() ([]string, error) {
	var args []string
	for _, f := range r.VarFiles {
		if f == "" {
			return nil, fmt.Errorf("%w: empty var file name", ErrInvalidRun)
		}
		args = append(args, "-var-file="+f)
	}
	keys := make([]string, 0, len(r.Vars))
	for k := range r.Vars {
		if k == "" || strings.ContainsAny(k, "=\n") {
			return nil, fmt.Errorf("%w: bad variable name %q", ErrInvalidRun, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-var", k+"="+r.Vars[k])
	}
	return args, nil
}

// packerEnvPrefixes are packer's own settings, copied into its environment.
var packerEnvPrefixes = []string{"PACKER_", "PKR_VAR_"}

// env is packer's clean environment.
func (r PackerRun) env() []string {
	var env []string
	copyVar := func(name string) {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	copyVar("PATH")
	if r.Home != "" {
		env = append(env, "HOME="+r.Home, "TMPDIR="+filepath.Join(r.Home, "tmp"))
	} else {
		copyVar("HOME")
		copyVar("TMPDIR")
	}
	for _, kv := range os.Environ() {
		for _, p := range packerEnvPrefixes {
			if strings.HasPrefix(kv, p) {
				env = append(env, kv)
				break
			}
		}
	}
	for _, name := range r.PassEnv {
		copyVar(name)
	}
	env = append(env, r.Env...)
	// Last value wins in os/exec.
	return append(env, "CHECKPOINT_DISABLE=1", "PACKER_NO_COLOR=1")
}

func (r PackerRun) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return DefaultGrace
}

// output is what RunPacker keeps of one packer process's output: artifact
// events, error texts and a bounded tail of everything that was not
// machine-readable.
type output struct {
	exitCode    int
	signal      string
	events      []Event
	uiErrors    lineTail
	buildErrors map[string]string
	plain       lineTail // non-machine-readable stdout lines
	stderr      lineTail
}

func newOutput() *output {
	return &output{
		uiErrors: lineTail{max: maxMessage},
		plain:    lineTail{max: maxMessage},
		stderr:   lineTail{max: maxMessage},
	}
}

// stdoutLine handles one line of packer's stdout.
func (o *output) stdoutLine(line string, onEvent func(Event)) {
	ev, ok := ParseLine(line)
	if !ok {
		if s := strings.TrimRight(line, "\r\n"); strings.TrimSpace(s) != "" {
			o.plain.add(s)
		}
		return
	}
	switch ev.Type {
	case TypeArtifact, TypeArtifactCount:
		o.events = append(o.events, ev)
	case TypeError:
		if ev.Target != "" {
			if o.buildErrors == nil {
				o.buildErrors = map[string]string{}
			}
			o.buildErrors[ev.Target] = strings.TrimSpace(strings.Join(ev.Data, ","))
		}
	case TypeUI:
		if kind, text, _ := ev.UI(); kind == UIError {
			if t := strings.TrimSpace(text); t != "" {
				o.uiErrors.add(t)
			}
		}
	}
	if onEvent != nil {
		onEvent(ev)
	}
}

// message is the error text for a failed packer run.
func (o *output) message() string {
	for _, t := range []*lineTail{&o.uiErrors, &o.plain, &o.stderr} {
		if s := strings.TrimSpace(t.String()); s != "" {
			return s
		}
	}
	if o.signal != "" {
		return "packer was killed by " + o.signal
	}
	return fmt.Sprintf("packer exited with code %d and printed no error", o.exitCode)
}

// lineTail keeps the last max bytes worth of lines.
type lineTail struct {
	max     int
	lines   []string
	size    int
	dropped bool
}

func (t *lineTail) add(s string) {
	if len(s) > t.max {
		s = s[len(s)-t.max:]
		t.dropped = true
	}
	t.lines = append(t.lines, s)
	t.size += len(s) + 1
	for t.size > t.max && len(t.lines) > 1 {
		t.size -= len(t.lines[0]) + 1
		t.lines = t.lines[1:]
		t.dropped = true
	}
}

func (t *lineTail) String() string {
	s := strings.ToValidUTF8(strings.Join(t.lines, "\n"), "\uFFFD")
	if t.dropped && s != "" {
		s = "…\n" + s
	}
	return s
}
