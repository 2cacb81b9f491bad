package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompletionScriptsForEveryShell(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "# bash completion V2 for imago",
		"zsh":        "#compdef imago",
		"fish":       "complete -c imago",
		"powershell": "Register-ArgumentCompleter -CommandName 'imago'",
	} {
		out, code, err := run(t, "completion", shell)
		require.NoError(t, err, shell)
		assert.Equal(t, 0, code)
		assert.Contains(t, out, want, shell)
	}

	help, _, err := run(t, "completion", "--help")
	require.NoError(t, err)
	for _, install := range []string{
		"imago completion bash > ~/.local/share/bash-completion/completions/imago",
		`imago completion zsh > "${fpath[1]}/_imago"`,
		"imago completion fish > ~/.config/fish/completions/imago.fish",
		"imago completion powershell >> $PROFILE",
	} {
		assert.Contains(t, help, install, "completion --help says how to install it")
	}
	help, _, err = run(t, "completion", "bash", "--help")
	require.NoError(t, err)
	assert.Contains(t, help, "source <(imago completion bash)")
}

// complete asks imago for completions the way the shell scripts do, and returns
// the candidates (without descriptions) and the directive line.
func complete(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	out, _, err := run(t, append([]string{"__complete"}, args...)...)
	require.NoError(t, err)
	var got []string
	directive := ""
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(l, ":"):
			directive = l
		case strings.HasPrefix(l, "Completion ended"):
		default:
			name, _, _ := strings.Cut(l, "\t")
			got = append(got, name)
		}
	}
	return got, directive
}

func TestDynamicCompletion(t *testing.T) {
	v1, v2 := seedImages(t)

	got, _ := complete(t, "rollout", "list", "-o", "")
	assert.Equal(t, []string{"table", "json"}, got)
	got, _ = complete(t, "image", "show", "x", "--output", "")
	assert.Equal(t, []string{"table", "json"}, got)

	got, _ = complete(t, "rollout", "status", "")
	assert.Equal(t, []string{"hello", "web"}, got, "service names from the catalog")
	got, _ = complete(t, "rollout", "approve", "h")
	assert.Equal(t, []string{"hello"}, got, "candidates start with what was typed")
	got, _ = complete(t, "rollout", "list", "--service", "")
	assert.Equal(t, []string{"hello", "web"}, got)

	got, _ = complete(t, "image", "show", "")
	assert.ElementsMatch(t, []string{v1, v2, "img-000000000b01"}, got, "image IDs from the catalog")
	got, _ = complete(t, "image", "promote", v2, "--channel", "")
	assert.Equal(t, []string{"stable"}, got, "the channels of the image's service")

	_, directive := complete(t, "rollout", "start", "-f", "")
	assert.Equal(t, ":8", directive, "-f completes YAML files (ShellCompDirectiveFilterFileExt)")
}

func TestEnvironmentCompletionFromTheInventory(t *testing.T) {
	seedInventory(t)
	got, _ := complete(t, "rollout", "status", "hello", "-e", "")
	assert.Equal(t, []string{"dev", "prod"}, got)
	got, _ = complete(t, "status", "hello", "--environment", "")
	assert.Equal(t, []string{"dev", "prod"}, got)
	got, _ = complete(t, "rollout", "list", "--service", "hello", "-e", "")
	assert.Equal(t, []string{"dev", "prod"}, got)
	got, _ = complete(t, "rollout", "list", "-e", "")
	assert.Empty(t, got, "no service, no environments to offer")
}
