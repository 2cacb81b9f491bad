package spec

import (
	"fmt"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/secretref"
)

// EnvHint says how to provide a variable an image's entrypoint uses.
const EnvHint = "add it to the spec's env: (NAME: value, or NAME: {secret: URL}), or write $$ for a literal $"

// CheckImage checks that the entrypoint of image imageID (its words) can be
// expanded with this rollout's env: every variable it uses must be PORT, HOST
// or a key of env. The problem names the field env, on line (the line of env
// or image in the file, 0 for none: Normalize forgets the file's lines, so a
// caller keeps it from Line before).
func (r *Rollout) CheckImage(imageID string, words []string, line int) error {
	err := entrypoint.CheckEnv(words, func(n string) bool { _, ok := r.Env[n]; return ok })
	if err == nil {
		return nil
	}
	return contract.FieldErrors{{Field: "env", Line: line, Msg: fmt.Sprintf("image %s: %v; %s", imageID, err, EnvHint)}}
}

// Line is the line of field in the file the spec was parsed from, or of its
// nearest enclosing field; 0 once normalized or when there is none.
func (r *Rollout) Line(field string) int { return r.src.line(field) }

// validateEnv checks the names and references of r.Env.
func (r *Rollout) validateEnv(add func(field, format string, args ...any)) {
	for _, name := range sortedNames(r.Env) {
		v, field := r.Env[name], "env."+name
		switch {
		case v.DecodeProblem() != "":
			add(field, "%s", v.DecodeProblem())
		case !entrypoint.ValidName(name):
			add(field, "%q is not an environment variable name: letters, digits and _, not starting with a digit", name)
		case entrypoint.Reserved(name):
			add(field, "%s is set by the provider for every instance and cannot be set in env (reserved: PORT, HOST, IMAGO_*)", name)
		case v.IsSecret():
			if err := secretref.Check(v.Secret); err != nil {
				add(field+".secret", "%v", err)
			}
		}
	}
	if len(r.Env) > 0 && r.Provider == "aws" {
		add("env", "the aws provider cannot give instances an environment yet (it would have to go into user-data, readable by anything on the instance); bake the configuration into the image or use the local provider")
	}
}
