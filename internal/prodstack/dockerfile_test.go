package prodstack_test

import (
	"go/build"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/prodstack"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY, …
	args string
}

// stage is one FROM … [AS name] and its instructions.
type stage struct {
	name, image string
	body        []instruction
}

// parseDockerfile splits a Dockerfile into stages, with FROM's ${ARG}s (declared
// before the first FROM) replaced by their defaults.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var ins []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	args := map[string]string{}
	var stages []stage
	for _, in := range ins {
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := stage{image: os.Expand(f[0], func(k string) string { return args[k] })}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		default:
			require.NotEmpty(t, stages, "%s before the first FROM", in.cmd)
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return stages
}

func findStage(stages []stage, name string) *stage {
	for i := range stages {
		if stages[i].name == name {
			return &stages[i]
		}
	}
	return nil
}

// goBuilds maps each `go build -o OUT PKG` of a stage to OUT's base name → PKG.
func goBuilds(s *stage) map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`go build\b[^&;]*?-o (\S+) (\S+)`)
	for _, in := range s.body {
		if in.cmd != "RUN" {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(in.args, -1) {
			out[filepath.Base(m[1])] = m[2]
		}
	}
	return out
}

// copied are the paths a stage's COPY instructions put binaries at: for each
// destination directory, the base names of the sources.
func copied(s *stage) map[string]string {
	out := map[string]string{} // path in the image → source
	for _, in := range s.body {
		if in.cmd != "COPY" {
			continue
		}
		var f []string
		for _, a := range strings.Fields(in.args) {
			if !strings.HasPrefix(a, "--") {
				f = append(f, a)
			}
		}
		dst := f[len(f)-1]
		for _, src := range f[:len(f)-1] {
			p := dst
			if strings.HasSuffix(dst, "/") {
				p = dst + filepath.Base(src)
			}
			out[p] = src
		}
	}
	return out
}

// The images the stack builds: from an existing context and Dockerfile, multi-stage,
// static (CGO_ENABLED=0) binaries of this module's worker and starter packages,
// pinned base images, and a non-root user at the end of every target.
func TestDockerfileBuildsTheStacksImages(t *testing.T) {
	c := load(t)
	root := prodstack.File(".")
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, filepath.Join(root, "go.mod")))
	require.NotNil(t, goVersion, "go.mod has no go directive")

	built := 0
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		s := c.Services[name]
		if s.Build == nil {
			continue
		}
		built++
		context := filepath.Join(root, s.Build.Context)
		fi, err := os.Stat(context)
		require.NoError(t, err, "%s: build.context %s", name, s.Build.Context)
		require.True(t, fi.IsDir(), "%s: build.context %s is not a directory", name, s.Build.Context)
		dockerfile := filepath.Join(context, s.Build.Dockerfile)
		require.FileExists(t, dockerfile, "%s: build.dockerfile", name)
		stages := parseDockerfile(t, dockerfile)
		assert.GreaterOrEqual(t, len(stages), 2, "%s: the Dockerfile is multi-stage", name)

		target := findStage(stages, s.Build.Target)
		require.NotNil(t, target, "%s: build.target %q is no stage of %s", name, s.Build.Target, s.Build.Dockerfile)

		// Every base image is pinned (a tag that is not latest, or a digest) or an earlier stage.
		for i, st := range stages {
			if findStage(stages[:i], st.image) != nil || st.image == "scratch" {
				continue
			}
			ref := st.image
			if at := strings.Index(ref, "@sha256:"); at >= 0 {
				continue
			}
			slash := strings.LastIndex(ref, "/")
			_, tag, ok := strings.Cut(ref[slash+1:], ":")
			assert.True(t, ok && tag != "" && tag != "latest", "stage %q: base image %s is not pinned", st.name, st.image)
		}

		// The user ends the stage non-root.
		var user string
		for _, in := range target.body {
			if in.cmd == "USER" {
				user = in.args
			}
		}
		assert.NotEmpty(t, user, "%s: stage %s sets no USER, so it runs as root", name, target.name)
		uid, _, _ := strings.Cut(user, ":")
		assert.NotContains(t, []string{"", "0", "root"}, uid, "%s: stage %s runs as %q", name, target.name, user)
		assert.Equal(t, "USER", lastCmdBefore(target, "ENTRYPOINT", "CMD", "EXPOSE"), "%s: USER comes last in stage %s", name, target.name)

		// Its entrypoint and healthcheck binaries are built from this module, statically.
		var entrypoint string
		for _, in := range target.body {
			if in.cmd == "ENTRYPOINT" {
				entrypoint = strings.Trim(strings.Trim(in.args, "[]"), `"`)
			}
		}
		hc := s.Healthcheck.Test
		for _, bin := range []string{strings.Fields(entrypoint)[0], hc[1]} {
			src, ok := copied(target)[bin]
			require.True(t, ok, "%s: %s is not copied into stage %s", name, bin, target.name)
			from := ""
			for _, in := range target.body {
				if in.cmd == "COPY" && strings.Contains(in.args, src) {
					if m := regexp.MustCompile(`--from=(\S+)`).FindStringSubmatch(in.args); m != nil {
						from = m[1]
					}
				}
			}
			builder := findStage(stages, from)
			require.NotNil(t, builder, "%s: %s comes from no build stage", name, bin)
			assert.Equal(t, "golang:"+goVersion[1], builder.image, "the Go of go.mod builds %s", bin)
			pkg, ok := goBuilds(builder)[filepath.Base(bin)]
			require.True(t, ok, "stage %s does not go build %s", builder.name, filepath.Base(bin))
			cgoOff := false
			for _, in := range builder.body {
				cgoOff = cgoOff || (slices.Contains([]string{"ENV", "RUN"}, in.cmd) && strings.Contains(in.args, "CGO_ENABLED=0"))
			}
			assert.True(t, cgoOff, "stage %s builds %s without CGO_ENABLED=0", builder.name, bin)
			p, err := build.ImportDir(filepath.Join(root, pkg), 0)
			require.NoError(t, err, "%s builds %s, which is no package of this module", builder.name, pkg)
			assert.Equal(t, "main", p.Name, "%s is not a command", pkg)
		}
	}
	assert.Equal(t, 2, built, "imago-worker and imago-api are built from the Dockerfile")

	// The worker runs imago-worker and can bake with builder: packer; the API runs imago serve.
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	assert.Equal(t, "./worker", goBuilds(findStage(stages, "build"))["imago-worker"])
	assert.Equal(t, "./starter", goBuilds(findStage(stages, "build"))["imago"])
	assert.Contains(t, copied(findStage(stages, "worker")), "/usr/local/bin/packer", "IMAGO_PACKER's default: packer beside imago-worker")
	assert.Equal(t, []string{"serve", "--listen", "0.0.0.0:8080"}, c.Services["imago-api"].Command)
}

// lastCmdBefore is the last instruction of s that is none of skip.
func lastCmdBefore(s *stage, skip ...string) string {
	for i := len(s.body) - 1; i >= 0; i-- {
		if !slices.Contains(skip, s.body[i].cmd) {
			return s.body[i].cmd
		}
	}
	return ""
}

// .dockerignore leaves in the build context what the Dockerfile builds from.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	root := prodstack.File(".")
	var patterns []string
	for _, line := range strings.Split(readFile(t, filepath.Join(root, ".dockerignore")), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	require.NotEmpty(t, patterns)
	for _, p := range []string{"go.mod", "go.sum", "worker/main.go", "starter/main.go", "cmd/imago-healthcheck/main.go",
		"internal/app/app.go", "internal/api/openapi.json", "workflows/rollout.go", "activities/activities.go", "tools/packer/go.mod", "tools/packer/build.sh", "tools/gobuild.sh"} {
		require.FileExists(t, filepath.Join(root, p))
		for _, pat := range patterns {
			// A pattern excludes a path when it matches the path or one of its parents.
			for dir := p; dir != "."; dir = filepath.Dir(dir) {
				m, err := filepath.Match(pat, dir)
				require.NoError(t, err, "pattern %q", pat)
				assert.False(t, m, ".dockerignore pattern %q leaves %s out of the build context", pat, p)
			}
		}
	}
	for _, p := range []string{".git", ".imago", "bin"} {
		assert.Contains(t, patterns, p, "%s does not belong in the build context", p)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
