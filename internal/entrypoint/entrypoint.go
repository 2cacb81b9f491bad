// Package entrypoint is what imago knows of an image's entrypoint: how the
// command line a user types (--entrypoint './whoami --port $PORT') becomes the
// words an image records, which variables those words use, how they are
// expanded when an instance starts, and where the program is found.
//
// An image records its entrypoint as words, split once at import or bake by
// shell rules (quotes, backslashes; github.com/google/shlex) and never run
// through a shell. When an instance starts, $NAME and ${NAME} in every word are
// replaced by the instance's environment (PORT, HOST and the rollout's env:);
// $$ is a literal $. Quotes do not stop expansion, since the words no longer
// carry them: write $$HOME for a shell to see $HOME.
package entrypoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/shlex"
)

// Variables every instance gets from its provider.
const (
	Port = "PORT" // the port the instance must listen on
	Host = "HOST" // the address it listens on (127.0.0.1 on the local provider)
)

// Reserved reports whether name is a variable the provider sets, which a
// rollout's env: may not set.
func Reserved(name string) bool {
	return name == Port || name == Host || strings.HasPrefix(name, "IMAGO_")
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidName reports whether name is a POSIX environment variable name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Split splits a command line into words by shell rules, without expanding
// anything: "./whoami --port $PORT" is ["./whoami", "--port", "$PORT"].
func Split(line string) ([]string, error) {
	words, err := shlex.Split(line)
	if err != nil {
		return nil, fmt.Errorf("%q cannot be split into words: %v (check the quotes)", line, err)
	}
	if len(words) == 0 {
		return nil, errors.New("is empty")
	}
	return words, nil
}

// Vars returns the variables the words use, sorted, each once; an error names
// the first word whose $ syntax is bad (an unclosed ${, ${}, $1, ${A-B}).
func Vars(words []string) ([]string, error) {
	var out []string
	for i, w := range words {
		names, err := scan(w)
		if err != nil {
			return nil, fmt.Errorf("word %d %q: %w", i+1, w, err)
		}
		out = append(out, names...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Expand replaces the variables of every word with their values in env. A
// variable env does not hold is an error naming it: the rollout's env: must
// provide it.
func Expand(words []string, env map[string]string) ([]string, error) {
	vars, err := Vars(words)
	if err != nil {
		return nil, err
	}
	if missing := Missing(vars, func(n string) bool { _, ok := env[n]; return ok }); len(missing) > 0 {
		return nil, fmt.Errorf("the entrypoint uses %s, which the instance's environment does not hold (PORT, HOST and the rollout's env: are)", dollars(missing))
	}
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = os.Expand(w, func(name string) string {
			if name == "$" {
				return "$" // $$
			}
			return env[name]
		})
	}
	return out, nil
}

// CheckEnv checks that words can be expanded by an instance whose environment
// holds PORT, HOST and the names has accepts (a rollout's env). Its error says
// which variables are missing, or what syntax is bad.
func CheckEnv(words []string, has func(name string) bool) error {
	vars, err := Vars(words)
	if err != nil {
		return fmt.Errorf("entrypoint %q cannot be expanded: %v", strings.Join(words, " "), err)
	}
	if missing := Missing(vars, has); len(missing) > 0 {
		return fmt.Errorf("entrypoint %q uses %s, which is neither PORT, HOST nor a key of env", strings.Join(words, " "), strings.Join(missing, ", "))
	}
	return nil
}

// Missing returns the vars that have is false for (PORT and HOST always count
// as had).
func Missing(vars []string, have func(string) bool) []string {
	var out []string
	for _, v := range vars {
		if v != Port && v != Host && !have(v) {
			out = append(out, v)
		}
	}
	return out
}

func dollars(names []string) string {
	d := make([]string, len(names))
	for i, n := range names {
		d[i] = "$" + n
	}
	return strings.Join(d, ", ")
}

// scan returns the names $NAME and ${NAME} in w, checking the syntax os.Expand
// would silently drop or misread.
func scan(w string) ([]string, error) {
	var names []string
	for i := 0; i < len(w); i++ {
		if w[i] != '$' || i+1 == len(w) {
			continue // a trailing $ is literal
		}
		rest := w[i+1:]
		switch c := rest[0]; {
		case c == '$':
			i++ // $$: a literal $
		case c == '{':
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("${ is not closed by }")
			}
			name := rest[1:end]
			if !ValidName(name) {
				return nil, fmt.Errorf("${%s} is not a variable: write ${NAME} with letters, digits and _ (no defaults or other shell forms), or $$ for a literal $", name)
			}
			names = append(names, name)
			i += end + 1
		case c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
			n := 1
			for n < len(rest) && (rest[n] == '_' || 'A' <= rest[n] && rest[n] <= 'Z' || 'a' <= rest[n] && rest[n] <= 'z' || '0' <= rest[n] && rest[n] <= '9') {
				n++
			}
			names = append(names, rest[:n])
			i += n
		case '0' <= c && c <= '9' || strings.IndexByte("*#@!?-", c) >= 0:
			return nil, fmt.Errorf("$%c is a shell parameter, which imago does not expand; write $$%c for a shell to see it", c, c)
		}
		// Anything else ($/, $.) is a literal $, as os.Expand keeps it.
	}
	return names, nil
}

// ErrNotFound is matched (errors.Is) by Program's errors for a program that is not there.
var ErrNotFound = errors.New("program not found")

// notFound is an error matching ErrNotFound with its own words.
type notFound string

func (e notFound) Error() string      { return string(e) }
func (notFound) Is(target error) bool { return target == ErrNotFound }

// Program finds the program of an entrypoint (its first word) for an image
// whose files are in root, and returns its path on this host:
//
//   - a relative path (./whoami, bin/app) must be an executable file in the image;
//   - an absolute path (/bin/sh) is a program of the host the instance runs on,
//     which must be an executable file there;
//   - a bare name (whoami, sh) is looked up in the image first, then in PATH.
//
// Errors say which of these failed, in words that fit an import, a bake or a rollout.
func Program(root, prog string) (string, error) {
	switch {
	case prog == "":
		return "", errors.New("the entrypoint has no program")
	case filepath.IsAbs(prog):
		if err := executable(prog); err != nil {
			return "", fmt.Errorf("program %s is a path on the host (it starts with /) and %w", prog, err)
		}
		return prog, nil
	case strings.ContainsRune(prog, '/'):
		clean := filepath.Clean(filepath.FromSlash(prog))
		if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			return "", fmt.Errorf("program %s points outside the image", prog)
		}
		p := filepath.Join(root, clean)
		if err := executable(p); err != nil {
			return "", fmt.Errorf("program %s is a path inside the image and %w", prog, err)
		}
		return p, nil
	}
	p := filepath.Join(root, prog)
	if _, err := os.Stat(p); err == nil {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("program %s, found in the image, %w", prog, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(prog); err == nil {
		return p, nil
	}
	return "", notFound(fmt.Sprintf("program %s is neither in the image nor in the PATH of this host; give its path (./%s for one in the image, /usr/bin/%s for one on the host)", prog, prog, prog))
}

// executable checks that p is an executable regular file.
func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notFound("does not exist")
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return errors.New("is not a regular file")
	case fi.Mode().Perm()&0o111 == 0:
		return errors.New("is not executable (chmod +x it)")
	}
	return nil
}
