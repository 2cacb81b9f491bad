package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// readCommands are the commands that show state; each takes -o table|json.
var readCommands = []string{
	"imago rollout status", "imago rollout list", "imago bake status", "imago status",
	"imago image list", "imago image show", "imago image channels",
}

func TestEveryReadCommandTakesOutputTableOrJSON(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // a bad -o is refused before anything is contacted
	byPath := map[string]bool{}
	for _, c := range allCommands(newRoot()) {
		byPath[c.CommandPath()] = true
		f := c.Flags().Lookup("output")
		if f == nil || c.CommandPath() == "imago image sbom" { // -o picks the SBOM's document format there
			continue
		}
		assert.Equal(t, "o", f.Shorthand, c.CommandPath())
		assert.Equal(t, "table", f.DefValue, "%s: people get a table by default", c.CommandPath())
	}
	for _, path := range readCommands {
		require.True(t, byPath[path], "no command %s", path)
		args := append(strings.Fields(path)[1:], "x", "-o", "yaml")
		if path == "imago rollout list" || path == "imago image list" {
			args = append(strings.Fields(path)[1:], "-o", "yaml")
		}
		_, code, err := run(t, args...)
		require.Error(t, err, path)
		assert.Equal(t, 2, code, "%s: %v", path, err)
		assert.Contains(t, err.Error(), `invalid argument "yaml" for "-o, --output" flag: want table or json (see `+path+` --help)`)
	}
}

// seedImages publishes images of hello (one revoked, one on channel stable) and
// web in a fresh catalog, and returns the IDs of hello's.
func seedImages(t *testing.T) (v1, v2 string) {
	t.Helper()
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // image commands read the catalog only
	ctx := context.Background()
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	defer cat.Close()
	for _, img := range []contract.Image{
		{ID: "img-000000000a01", Service: "hello", Builder: "import", Entrypoint: []string{"./hello"}},
		{ID: "img-000000000a02", Service: "hello", Builder: "imago-local", Entrypoint: []string{"./hello", "-v"}, Parent: "img-000000000a01"},
		{ID: "img-000000000b01", Service: "web", Builder: "import", Entrypoint: []string{"./web"}},
	} {
		_, err := cat.Publish(ctx, img)
		require.NoError(t, err)
	}
	_, err = cat.MoveChannel(ctx, "hello", "stable", "img-000000000a01", catalog.MoveOptions{By: "alice", Reason: "soaked"})
	require.NoError(t, err)
	_, err = cat.Revoke(ctx, "img-000000000a02", catalog.RevokeOptions{Reason: "CVE-2026-1", By: "bob"})
	require.NoError(t, err)
	return "img-000000000a01", "img-000000000a02"
}

func TestImageReadCommandsAsJSONAndTable(t *testing.T) {
	v1, v2 := seedImages(t)

	// image list: a JSON array; a table with one row per image.
	out, code, err := run(t, "image", "list", "--service", "hello", "-o", "json")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	var imgs []contract.Image
	require.NoError(t, json.Unmarshal([]byte(out), &imgs), out)
	require.Len(t, imgs, 2)
	ids := []string{imgs[0].ID, imgs[1].ID}
	assert.ElementsMatch(t, []string{v1, v2}, ids)
	out, _, err = run(t, "image", "list")
	require.NoError(t, err, out)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 4, out)
	assert.Regexp(t, `^ID\s+SERVICE\s+BUILDER\s+ENTRYPOINT\s+CREATED\s+STATE$`, rows[0])
	assert.Contains(t, out, "img-000000000b01  web")
	for _, r := range rows[1:] {
		switch {
		case strings.HasPrefix(r, v2):
			assert.Regexp(t, `^`+v2+`\s+hello\s+imago-local\s+\./hello -v\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+revoked$`, r)
		case strings.HasPrefix(r, v1):
			assert.Regexp(t, `\s+usable$`, r)
		}
	}

	// An empty list is [] in JSON, and a hint (on stderr) in a table.
	out, _, err = run(t, "image", "list", "--service", "nope", "-o", "json")
	require.NoError(t, err)
	assert.Equal(t, "[]\n", out)
	out, _, err = run(t, "image", "list", "--service", "nope")
	require.NoError(t, err)
	assert.Equal(t, "no images; make one with: imago image import DIR --service S --entrypoint CMD, or imago bake start -f FILE\n", out)

	// image show: an object with the image, its channels and children (arrays).
	out, _, err = run(t, "image", "show", v1, "-o", "json")
	require.NoError(t, err, out)
	var d imageDetail
	require.NoError(t, json.Unmarshal([]byte(out), &d), out)
	assert.Equal(t, v1, d.Image.ID)
	assert.Equal(t, []string{"stable"}, d.Channels)
	assert.Equal(t, []string{v2}, d.Children)
	out, _, err = run(t, "image", "show", v2, "-o", "json")
	require.NoError(t, err, out)
	assert.Contains(t, out, `"channels": [],`)
	assert.Contains(t, out, `"children": []`)
	assert.Contains(t, out, `"reason": "CVE-2026-1"`)
	out, _, err = run(t, "image", "show", v2)
	require.NoError(t, err, out)
	assert.Regexp(t, `(?m)^ID:\s+`+v2+`$`, out)
	assert.Regexp(t, `(?m)^Parent:\s+`+v1+`$`, out)
	assert.Regexp(t, `(?m)^Revoked:\s+CVE-2026-1$`, out)

	// image channels.
	out, _, err = run(t, "image", "channels", "hello", "-o", "json")
	require.NoError(t, err, out)
	var chans []contract.ChannelEntry
	require.NoError(t, json.Unmarshal([]byte(out), &chans), out)
	require.Len(t, chans, 1)
	assert.Equal(t, contract.ChannelEntry{Service: "hello", Channel: "stable", ImageID: v1, Seq: 1, By: "alice", Reason: "soaked", Time: chans[0].Time}, chans[0])
	out, _, err = run(t, "image", "channels", "hello")
	require.NoError(t, err, out)
	rows = strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 2, out)
	assert.Regexp(t, `^stable\s+`+v1+`\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+alice\s+soaked$`, rows[1])
	out, _, err = run(t, "image", "channels", "web", "-o", "json")
	require.NoError(t, err)
	assert.Equal(t, "[]\n", out)
	out, _, err = run(t, "image", "channels", "web")
	require.NoError(t, err)
	assert.Equal(t, "web has no channels; move one with: imago image promote ID --channel stable\n", out)
}
