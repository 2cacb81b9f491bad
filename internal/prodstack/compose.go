// Package prodstack reads imago's production stack, docker-compose.yml at the top
// of the repository, the way docker compose reads it: YAML with anchors and merge
// keys, then ${VAR} interpolation from a given environment (${VAR:-default},
// ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR and $$). Its tests check the
// stack; internal/pgtest runs the stack's schema job and Temporal configuration
// against a real PostgreSQL.
package prodstack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"
)

// Compose is the part of a compose file imago's stack uses. Unknown service
// keys are errors, so a misspelt key (healtcheck) does not go unnoticed.
type Compose struct {
	Name     string             `yaml:"name"`
	Services map[string]Service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
	Configs  map[string]Config  `yaml:"configs"`
	// Extensions are the other top-level keys; compose allows only x-… ones.
	Extensions map[string]any `yaml:",inline"`
}

// Service is one service of the stack.
type Service struct {
	Image           string                `yaml:"image"`
	Build           *Build                `yaml:"build"`
	Entrypoint      []string              `yaml:"entrypoint"`
	Command         []string              `yaml:"command"`
	Environment     map[string]string     `yaml:"environment"`
	DependsOn       map[string]Dependency `yaml:"depends_on"`
	Ports           []string              `yaml:"ports"`
	Volumes         []string              `yaml:"volumes"`
	Configs         []ConfigMount         `yaml:"configs"`
	Healthcheck     *Healthcheck          `yaml:"healthcheck"`
	Restart         string                `yaml:"restart"`
	StopGracePeriod string                `yaml:"stop_grace_period"`
}

// Build says how a service's image is built.
type Build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

// Dependency is a depends_on entry.
type Dependency struct {
	Condition string `yaml:"condition"`
}

// Healthcheck is a service's health check.
type Healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// ConfigMount puts a top-level config into a service's file system.
type ConfigMount struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
}

// Config is a top-level config: inline content or a file.
type Config struct {
	Content string `yaml:"content"`
	File    string `yaml:"file"`
}

// File is the path of name at the top of the repository (docker-compose.yml,
// Dockerfile, …), wherever the caller runs.
func File(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", name)
}

// Load reads the compose file at path and interpolates every value with env,
// as `docker compose config` does with that environment.
func Load(path string, env map[string]string) (*Compose, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := interpolateNode(&doc, env, map[*yaml.Node]bool{}); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Through bytes again, to decode with unknown keys refused (merge keys resolved).
	var generic any
	if err := doc.Decode(&generic); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	resolved, err := yaml.Marshal(generic)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(resolved))
	dec.KnownFields(true)
	var c Compose
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func interpolateNode(n *yaml.Node, env map[string]string, seen map[*yaml.Node]bool) error {
	if seen[n] {
		return nil // an anchor reached again through an alias
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!str" || n.Tag == "") {
		v, err := Interpolate(n.Value, env)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		n.Value = v
		return nil
	}
	for _, c := range n.Content {
		if err := interpolateNode(c, env, seen); err != nil {
			return err
		}
	}
	if n.Alias != nil {
		return interpolateNode(n.Alias, env, seen)
	}
	return nil
}

// Interpolate substitutes env into s as compose does: $$ is a literal $;
// ${VAR} and $VAR are VAR's value ("" when unset); ${VAR:-default} is default when
// VAR is unset or empty, ${VAR-default} when it is unset; ${VAR:?message} and
// ${VAR?message} are errors saying message when VAR is unset (or empty, with the colon).
func Interpolate(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			b.WriteByte('$')
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("%q: ${ without a closing }", s)
			}
			v, err := expand(s[i+2:i+end], env)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += end
		case isNameByte(next, true):
			j := i + 1
			for j < len(s) && isNameByte(s[j], j == i+1) {
				j++
			}
			b.WriteString(env[s[i+1:j]])
			i = j - 1
		default:
			return "", fmt.Errorf("%q: a lone $ before %q; write $$ for a literal $", s, next)
		}
	}
	return b.String(), nil
}

// expand is one ${…} expression.
func expand(expr string, env map[string]string) (string, error) {
	n := 0
	for n < len(expr) && isNameByte(expr[n], n == 0) {
		n++
	}
	name, op := expr[:n], expr[n:]
	if name == "" {
		return "", fmt.Errorf("${%s}: no variable name", expr)
	}
	val, set := env[name]
	switch {
	case op == "":
		return val, nil
	case strings.HasPrefix(op, ":-"):
		if val == "" {
			return op[2:], nil
		}
		return val, nil
	case strings.HasPrefix(op, "-"):
		if !set {
			return op[1:], nil
		}
		return val, nil
	case strings.HasPrefix(op, ":?"):
		if val == "" {
			return "", &RequiredError{Name: name, Message: op[2:]}
		}
		return val, nil
	case strings.HasPrefix(op, "?"):
		if !set {
			return "", &RequiredError{Name: name, Message: op[1:]}
		}
		return val, nil
	}
	return "", fmt.Errorf("${%s}: unsupported expression (want ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error})", expr)
}

// RequiredError is a ${VAR:?message} whose variable is not set.
type RequiredError struct {
	Name, Message string
}

func (e *RequiredError) Error() string {
	return fmt.Sprintf("required variable %s is missing a value: %s", e.Name, e.Message)
}

// IsRequired reports whether err is a missing required variable.
func IsRequired(err error) bool {
	var r *RequiredError
	return errors.As(err, &r)
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}
