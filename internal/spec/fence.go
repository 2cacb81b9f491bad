package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/ociimage"
)

// The bake fence: what a bake may take from the machine that builds it. The
// directories it reads must lie in IMAGO_BAKE_ROOTS (BakeRoots.Check), and its
// passEnv may not copy imago's, Temporal's or a cloud's credentials from the
// worker's environment (checkPassEnv, part of Validate). See docs/security.md,
// "Bakes in a fence".

// BakeRootsEnv lists the directories bakes may read, separated like PATH.
const BakeRootsEnv = "IMAGO_BAKE_ROOTS"

// noRootsHint is the end of a refusal when no root is configured (the API's
// default: it bakes nothing from disk).
const noRootsHint = "unset: the API bakes nothing from disk; set " + BakeRootsEnv + "=/srv/imago/src"

// BakeRoots are the directories a bake may read its source, files and template
// from. The zero value holds none: every path is outside it.
type BakeRoots struct {
	dirs []string // absolute, clean, symlinks resolved
}

// ParseBakeRoots reads a list of absolute directories separated like PATH
// (empty entries are skipped). Each must exist; symlinks in it are resolved, so a
// root is where its files really are.
func ParseBakeRoots(list string) (BakeRoots, error) {
	var r BakeRoots
	for _, d := range filepath.SplitList(list) {
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			return BakeRoots{}, fmt.Errorf("%s: %q is not an absolute directory", BakeRootsEnv, d)
		}
		real, err := filepath.EvalSymlinks(filepath.Clean(d))
		if err != nil {
			return BakeRoots{}, fmt.Errorf("%s: %w", BakeRootsEnv, err)
		}
		if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
			return BakeRoots{}, fmt.Errorf("%s: %s is not a directory", BakeRootsEnv, d)
		}
		r.dirs = append(r.dirs, real)
	}
	return r, nil
}

// IsZero reports whether r holds no root.
func (r BakeRoots) IsZero() bool { return len(r.dirs) == 0 }

// String lists the roots as IMAGO_BAKE_ROOTS would.
func (r BakeRoots) String() string { return strings.Join(r.dirs, string(filepath.ListSeparator)) }

// contains reports whether p (absolute and clean) is a root or below one.
func (r BakeRoots) contains(p string) bool {
	for _, d := range r.dirs {
		if p == d || d == string(filepath.Separator) || strings.HasPrefix(p, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// Check reports every path b reads (source, files, template; relative ones
// against b.Dir) or writes (the paths of format: oci's destinations) that does not lie in a root once cleaned and its symlinks
// resolved, with the field it comes from. A path outside every root is refused
// without looking at it further, so the refusal says nothing about what exists
// there; a path in a root that does not exist is left to Validate.
func (r BakeRoots) Check(b *Bake) contract.FieldErrors {
	var es contract.FieldErrors
	check := func(field, p string) {
		if p == "" {
			return
		}
		abs := filepath.Clean(b.abs(p))
		if !filepath.IsAbs(abs) {
			if a, err := filepath.Abs(abs); err == nil {
				abs = a
			}
		}
		hint := noRootsHint
		if !r.IsZero() {
			hint = r.String()
		}
		real, err := filepath.EvalSymlinks(abs)
		switch {
		case !r.contains(abs) && (err != nil || !r.contains(real)):
			es = append(es, b.fieldError(field, "%s is outside %s (%s)", abs, BakeRootsEnv, hint))
		case err != nil:
			// in a root but unreadable or missing: Validate says so
		case !r.contains(real):
			es = append(es, b.fieldError(field, "%s resolves to %s, outside %s (%s)", abs, real, BakeRootsEnv, hint))
		}
	}
	check("source", b.Source)
	check("template", b.Template)
	for i, f := range b.Files {
		check(fmt.Sprintf("files[%d]", i), f)
	}
	for i, st := range b.Provision {
		if st.Ansible != "" {
			check(fmt.Sprintf("provision[%d].ansible", i), st.Ansible)
		}
	}
	for i, d := range b.Destinations { // written, not read, but by the same worker
		if dest, err := ociimage.ParseDestination(d, b.Dir); err == nil && dest.IsFile() {
			check(fmt.Sprintf("destinations[%d]", i), dest.Path)
		}
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// deniedEnv are the prefixes of the variables passEnv may not name: imago's and
// Temporal's settings (tokens, keys, the payload keeper's URL), OpenTelemetry's
// (its headers carry collector credentials), and the credentials of the clouds
// and of the secrets keepers imago links (awskms, gcpkms, hashivault; Azure's
// for good measure).
var deniedEnv = []string{"IMAGO_", "TEMPORAL_", "OTEL_", "AWS_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_", "VAULT_", "AZURE_"}

// deniedEnvList is deniedEnv as the refusal names it.
var deniedEnvList = func() string {
	names := make([]string, len(deniedEnv))
	for i, p := range deniedEnv {
		names[i] = p + "*"
	}
	return strings.Join(names, ", ")
}()

// PassEnvErrors reports every name of passEnv that is not an environment
// variable name or names one of imago's or a cloud's secrets. The worker checks
// again with it, whoever validated the spec.
func PassEnvErrors(names []string) contract.FieldErrors {
	var es contract.FieldErrors
	for i, name := range names {
		field := fmt.Sprintf("passEnv[%d]", i)
		if msg := passEnvProblem(name); msg != "" {
			es = append(es, contract.FieldError{Field: field, Msg: msg})
		}
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

func passEnvProblem(name string) string {
	if !envNameRE.MatchString(name) {
		return fmt.Sprintf("%q is not an environment variable name", name)
	}
	upper := strings.ToUpper(name)
	for _, p := range deniedEnv {
		if strings.HasPrefix(upper, p) {
			return fmt.Sprintf("%s may not be passed: a bake never sees the worker's %s (imago's settings and the credentials of Temporal, the clouds and the secrets keepers); put what the build needs under variables", name, deniedEnvList)
		}
	}
	return ""
}
