package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// These need no Temporal: every one is refused before anything is started.

func TestInvalidSpecIsA400WithEveryFieldPath(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := e.rolloutBody("img-3f2a1c9d0b7e", func(s map[string]any) {
		s["service"] = "Hello"
		s["fleet"] = map[string]any{"size": 50000}
		s["listen"] = "nowhere"
		s["checks"] = []any{map[string]any{"path": "no-slash"}}
	})
	p := e.post("/v1/rollouts", body).problem(t, http.StatusBadRequest)
	assert.Equal(t, "Invalid request", p.Title)
	assert.ElementsMatch(t, []string{"spec.service", "spec.fleet.size", "spec.listen", "spec.checks[0].path"}, fields(p))
	assert.Contains(t, p.Detail, "4 problems: ")
	assert.Contains(t, p.Detail, "spec.fleet.size: must be between 1 and 10000, got 50000")
	assert.Contains(t, p.Detail, `spec.listen: "nowhere" is not host:port, e.g. 127.0.0.1:9080`)

	for _, tc := range []struct{ body, want string }{
		{`{"spec": {"service": "hello"}, "imgae": "img-3f2a1c9d0b7e"}`, `unknown field "imgae"`},
		{`{"spec": {"fleet": {"size": "three"}}}`, `spec.fleet.size: "three" is not a whole number`},
		{`{"spec": {"fleet": {"size": 0}}}`, "spec.fleet.size: must be between 1 and 10000, got 0"},
		{`{"spec": {"fleet": {"sise": 3}}}`, "spec.fleet.sise: unknown field"},
		{`not json`, "not valid JSON"},
		{``, "the request body is empty; send a JSON object"},
	} {
		p := e.post("/v1/rollouts", tc.body).problem(t, http.StatusBadRequest)
		assert.Contains(t, p.Detail, tc.want, tc.body)
	}
}

func TestUnknownAndRevokedImagesAreRefusedBeforeAnythingStarts(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := e.post("/v1/rollouts", e.rolloutBody("img-000000000000")).problem(t, http.StatusNotFound)
	assert.Contains(t, p.Detail, "image img-000000000000: not found in the catalog")

	img := e.importV1()
	_, err := e.cat.Revoke(context.Background(), img, catalog.RevokeOptions{Reason: "CVE-2026-1234", By: "test"})
	require.NoError(t, err)
	p = e.post("/v1/rollouts", e.rolloutBody(img)).problem(t, http.StatusConflict)
	assert.Contains(t, p.Detail, "image "+img+" is revoked: CVE-2026-1234")
	// The client of this API reaches no Temporal: a 404 and a 409 prove the
	// catalog refused them first, as `imago rollout start` does.
}

// hideLen hides a reader's length, so the client sends the body chunked, with no
// Content-Length for the server to refuse up front.
type hideLen struct{ io.Reader }

func TestOversizedBodiesAre413(t *testing.T) {
	e := newEnv(t, envOptions{})
	big := `{"spec": {"service": "hello"}, "image": "` + strings.Repeat("a", MaxBodyBytes) + `"}`
	for name, body := range map[string]any{
		"with Content-Length": big,
		"chunked":             hideLen{strings.NewReader(big)},
	} {
		p := e.post("/v1/rollouts", body).problem(t, http.StatusRequestEntityTooLarge)
		assert.Equal(t, "the request body is larger than 1048576 bytes (1 MiB), the most the API reads", p.Detail, name)
	}
	// Every endpoint with a body has the limit.
	padding := bytes.Repeat([]byte(" "), MaxBodyBytes)
	e.post("/v1/images/img-000000000000/revoke", append(padding, `{"reason": "x"}`...)).problem(t, http.StatusRequestEntityTooLarge)
	e.post("/v1/rollouts/hello/test/abort", hideLen{bytes.NewReader(append(padding, `{}`...))}).problem(t, http.StatusRequestEntityTooLarge)
}

func TestImagesAndChannelsThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	v1 := e.importV1()
	other, err := e.cat.Import(ctx, helloBuild(t), "hello", []string{"./hello", "--other"}, nil)
	require.NoError(t, err)

	var list ImageList
	e.get("/v1/images?service=hello").json(t, &list)
	var ids []string
	for _, img := range list.Images {
		ids = append(ids, img.ID)
	}
	assert.ElementsMatch(t, []string{v1, other.ID}, ids)
	r := e.get("/v1/images?service=nobody")
	assert.Contains(t, string(r.body), `"images": []`)

	r = e.post("/v1/images/"+v1+"/promote", PromoteRequest{Channel: "stable", Reason: "soaked a week"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var entry contract.ChannelEntry
	r.json(t, &entry)
	assert.Equal(t, "stable", entry.Channel)
	assert.Equal(t, v1, entry.ImageID)
	assert.Equal(t, int64(1), entry.Seq)
	assert.Equal(t, "soaked a week", entry.Reason)
	assert.Regexp(t, `^api:[0-9a-f]{8}$`, entry.By)

	var chans ChannelList
	e.get("/v1/services/hello/channels").json(t, &chans)
	require.Len(t, chans.Channels, 1)
	assert.Equal(t, "stable", chans.Channels[0].Channel)
	assert.Equal(t, v1, chans.Channels[0].ImageID)

	var detail ImageDetail
	e.get("/v1/images/"+v1).json(t, &detail)
	assert.Equal(t, v1, detail.Image.ID)
	assert.Equal(t, []string{"stable"}, detail.Channels)
	assert.Equal(t, []string{}, detail.Children)

	r = e.post("/v1/images/"+other.ID+"/revoke", RevokeRequest{Reason: "CVE-2026-1234 in openssl"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var revoked Revoked
	r.json(t, &revoked)
	assert.Equal(t, []string{other.ID}, revoked.Revoked)
	e.get("/v1/images/"+other.ID).json(t, &detail)
	require.NotNil(t, detail.Image.Revoked)
	assert.Equal(t, "CVE-2026-1234 in openssl", detail.Image.Revoked.Reason)

	p := e.post("/v1/images/"+other.ID+"/promote", PromoteRequest{Channel: "stable"}).problem(t, http.StatusConflict)
	assert.Contains(t, p.Detail, "is revoked: CVE-2026-1234 in openssl")
	var hist ChannelHistory
	e.get("/v1/services/hello/channels/stable").json(t, &hist)
	assert.Equal(t, v1, hist.Current.ImageID, "a refused promote moves nothing")
	assert.Len(t, hist.History, 1)

	p = e.get("/v1/images/img-000000000000").problem(t, http.StatusNotFound)
	assert.Contains(t, p.Detail, "not found in the catalog")
	e.get("/v1/services/hello/channels/beta").problem(t, http.StatusNotFound)
	e.post("/v1/images/img-000000000000/revoke", RevokeRequest{Reason: "x"}).problem(t, http.StatusNotFound)
	p = e.post("/v1/images/"+v1+"/promote", `{}`).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"channel"}, fields(p))
	p = e.post("/v1/images/"+v1+"/revoke", `{"cascade": true}`).problem(t, http.StatusBadRequest)
	assert.Equal(t, []string{"reason"}, fields(p))
}

// An image whose entrypoint uses a variable the spec's env does not provide is
// refused with a 400 naming spec.env, before anything starts.
func TestAnEntrypointVariableEnvDoesNotProvideIsRefusedBeforeAnythingStarts(t *testing.T) {
	e := newEnv(t, envOptions{})
	img, err := e.cat.Import(context.Background(), helloBuild(t), "hello", []string{"./hello", "--port", "$PORT", "--greeting=${GREETING}"}, nil)
	require.NoError(t, err)
	body := e.rolloutBody(img.ID, func(s map[string]any) {
		s["env"] = map[string]any{"LOG_LEVEL": "debug", "DB_PASSWORD": map[string]string{"secret": "file:///etc/imago/db"}}
	})
	p := e.post("/v1/rollouts", body).problem(t, http.StatusBadRequest)
	require.Len(t, p.Errors, 1, "%+v", p)
	assert.Equal(t, "spec.env", p.Errors[0].Field)
	assert.Contains(t, p.Errors[0].Msg, "image "+img.ID+`: entrypoint "./hello --port $PORT --greeting=${GREETING}" uses GREETING, which is neither PORT, HOST nor a key of env`)

	body = e.rolloutBody(img.ID, func(s map[string]any) { s["env"] = map[string]any{"PORT": "80"} })
	p = e.post("/v1/rollouts", body).problem(t, http.StatusBadRequest)
	assert.Contains(t, p.Detail, "spec.env.PORT: PORT is set by the provider for every instance")
}
