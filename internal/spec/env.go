package spec

import (
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/secretref"
)

// EnvVar is one variable of a rollout's env: a plain value (LOG_LEVEL: debug)
// or a secret by reference (DB_PASSWORD: {secret: "file:///etc/imago/db"}),
// whose value the worker reads when instances start and which never travels
// through Temporal (only the reference does).
type EnvVar struct {
	Value  string `yaml:"-" json:"-"`
	Secret string `yaml:"secret" json:"secret,omitempty"`

	problem string // what JSON decoding could not take (see UnmarshalJSON)
}

// UnmarshalYAML takes a scalar as the plain value; a mapping is {secret: URL}
// (the spec decoder walks its fields).
func (v *EnvVar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*v = EnvVar{Value: n.Value}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a value (LOG_LEVEL: debug) or {secret: URL}")
	}
	type plain EnvVar
	return n.Decode((*plain)(v))
}

// MarshalJSON writes a plain value as a string, a secret as {"secret": URL}.
func (v EnvVar) MarshalJSON() ([]byte, error) {
	if v.Secret != "" {
		return json.Marshal(map[string]string{"secret": v.Secret})
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads what MarshalJSON writes. What does not decode is kept for
// Validate, which reports it with its path.
func (v *EnvVar) UnmarshalJSON(b []byte) error {
	*v = EnvVar{}
	if json.Unmarshal(b, &v.Value) == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) == nil {
		for k, raw := range m {
			if k != "secret" {
				v.problem = fmt.Sprintf("unknown field %q; a secret is {\"secret\": URL}", k)
				return nil
			}
			if json.Unmarshal(raw, &v.Secret) != nil {
				v.problem = fmt.Sprintf("secret: want a URL string, got %s", raw)
				return nil
			}
		}
		return nil
	}
	v.problem = fmt.Sprintf(`want a string or {"secret": URL}, got %s`, b)
	return nil
}

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
	return Errors{{Field: "env", Line: line, Msg: fmt.Sprintf("image %s: %v; %s", imageID, err, EnvHint)}}
}

// Line is the line of field in the file the spec was parsed from, or of its
// nearest enclosing field; 0 once normalized or when there is none.
func (r *Rollout) Line(field string) int { return r.src.line(field) }

// IsSecret reports whether v is a secret reference.
func (v EnvVar) IsSecret() bool { return v.Secret != "" }

// validateEnv checks the names and references of r.Env.
func (r *Rollout) validateEnv(add func(field, format string, args ...any)) {
	for _, name := range sortedNames(r.Env) {
		v, field := r.Env[name], "env."+name
		switch {
		case v.problem != "":
			add(field, "%s", v.problem)
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
