package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

const good = `{"spec": {"service": "hello", "environment": "prod", "listen": "127.0.0.1:9080",
  "fleet": {"size": 3}, "health": {"path": "/healthz", "interval": "1s", "timeout": "1m"},
  "strategy": {"type": "canary", "steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}]}},
  "image": "img-3f2a1c9d0b7e"}`

func TestDecodeStartRolloutDefaultsAndOverridesTheImage(t *testing.T) {
	req, err := DecodeStartRollout(strings.NewReader(good), spec.BakeRoots{})
	require.NoError(t, err)
	assert.Equal(t, "img-3f2a1c9d0b7e", req.Spec.Image.ID)
	assert.Equal(t, "prod", req.Spec.Environment)
	assert.Equal(t, contract.Canary, req.Spec.Strategy.Type)
	assert.Equal(t, "30s", req.Spec.Strategy.Steps[1].Pause.Duration.String())
}

func TestBadRequestsSayWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		body, want string
		status     int
	}{
		{``, "the request body is empty", 400},
		{`{"spec": {"service": "hello"}, "imgae": "x"}`, `unknown field "imgae"`, 400},
		{`{"spec": {"fleet": {"size": "three"}}}`, `spec.fleet.size: "three" is not a whole number`, 400},
		{`{"spec": {"service": "hello", "fleet": {"size": 0}}}`, "spec.fleet.size: must be between 1 and 10000, got 0", 400},
		{`{"spec": `, "not valid JSON", 400},
		{`{} {}`, "more than one JSON value", 400},
		{`{"spec": {"service": "hello", "fleet": {"size": -1}}}`, "spec.fleet.size: must be between 1 and 10000, got -1", 400},
		{`{"spec": {"service": "x"}, "image": "` + strings.Repeat("a", MaxBodyBytes) + `"}`, "larger than 1048576 bytes", 413},
		{`{"spec": {"service": "hello", "listen": "127.0.0.1:9080", "image": {"bake": "bake.yaml"}}}`, "bake: is required when spec.image.bake is set", 400},
		{`{"spec": {"service": "hello", "listen": "127.0.0.1:9080", "image": {"id": "img-3f2a1c9d0b7e"}, "hooks": {"preRollout": "ftp://gate"}, "notify": [{"url": "https://chat.example.com/x", "format": "discord"}]}}`,
			`spec.hooks.preRollout: "ftp://gate": want an http:// or https:// URL`, 400},
		{`{"spec": {"service": "hello", "listen": "127.0.0.1:9080", "image": {"id": "img-3f2a1c9d0b7e"}, "notify": [{"url": "https://chat.example.com/x", "on": ["deployed"]}]}}`,
			`spec.notify[0].on[0]: "deployed": want one of awaiting-approval`, 400},
	} {
		_, err := DecodeStartRollout(strings.NewReader(tc.body), spec.BakeRoots{})
		require.Error(t, err, "%.60s", tc.body)
		p := ProblemFor(err)
		assert.Equal(t, tc.status, p.Status, "%.60s: %v", tc.body, err)
		assert.Contains(t, p.Detail+fieldMessages(p), tc.want, "%.60s", tc.body)
	}
}

func TestInvalidSpecProblemListsFieldPaths(t *testing.T) {
	_, err := DecodeStartRollout(strings.NewReader(`{"spec": {"service": "Hello", "fleet": {"size": -1}}}`), spec.BakeRoots{})
	p := ProblemFor(err)
	assert.Equal(t, http.StatusBadRequest, p.Status)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	assert.Contains(t, fields, "spec.service")
	assert.Contains(t, fields, "spec.fleet.size")
	data, err := json.Marshal(p)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"field":"spec.fleet.size"`)
	assert.Contains(t, p.Detail, `spec.service: "Hello" must be 1-40 lowercase letters`)
}

func TestBakeRequestPathsMustBeAnchoredOnTheServer(t *testing.T) {
	dir := t.TempDir()
	roots := mustRoots(t, dir)
	_, err := DecodeStartBake(strings.NewReader(`{"spec": {"service": "hello", "source": "src", "entrypoint": ["./hello"]}}`), roots)
	p := ProblemFor(err)
	assert.Equal(t, http.StatusBadRequest, p.Status)
	require.Len(t, p.Errors, 1)
	assert.Equal(t, "spec.source", p.Errors[0].Field)
	assert.Contains(t, p.Errors[0].Msg, `"src" is relative: make it absolute, or set spec.dir`)

	req, err := DecodeStartBake(strings.NewReader(`{"spec": {"service": "hello", "dir": "`+dir+`", "source": ".", "entrypoint": ["./hello"]}}`), roots)
	require.NoError(t, err)
	assert.Equal(t, dir, req.Spec.Source, "a relative path is resolved against dir")
	assert.Equal(t, "latest", req.Spec.Channel)

	_, err = DecodeStartBake(strings.NewReader(`{"spec": {"service": "hello", "source": "`+dir+`/src"}}`), roots)
	p = ProblemFor(err)
	assert.Contains(t, p.Detail, "spec.source: "+dir+"/src is not a directory")
	assert.Contains(t, p.Detail, "spec.entrypoint: is required")
}

func mustRoots(t testing.TB, dirs ...string) spec.BakeRoots {
	t.Helper()
	roots, err := spec.ParseBakeRoots(strings.Join(dirs, ":"))
	require.NoError(t, err)
	return roots
}

func TestPromoteAndRevokeRequestsNeedTheirField(t *testing.T) {
	_, err := DecodePromote(strings.NewReader(`{}`))
	assert.Equal(t, "channel: is required: the channel to point at the image, e.g. stable", ProblemFor(err).Errors[0].Error())
	_, err = DecodePromote(strings.NewReader(`{"channel": "Stable"}`))
	assert.Contains(t, ProblemFor(err).Detail, `channel: "Stable" must be lowercase letters`)
	req, err := DecodePromote(strings.NewReader(`{"channel": "stable", "reason": "soaked"}`))
	require.NoError(t, err)
	assert.Equal(t, PromoteRequest{Channel: "stable", Reason: "soaked"}, req)

	_, err = DecodeRevoke(strings.NewReader(`{"reason": "  "}`))
	assert.Equal(t, http.StatusBadRequest, ProblemFor(err).Status)
	assert.Equal(t, "reason", ProblemFor(err).Errors[0].Field)
	rr, err := DecodeRevoke(strings.NewReader(`{"reason": "CVE-2026-1234", "cascade": true}`))
	require.NoError(t, err)
	assert.True(t, rr.Cascade)
}

func fieldMessages(p Problem) string {
	var b bytes.Buffer
	for _, e := range p.Errors {
		b.WriteString(e.Error())
	}
	return b.String()
}

// FuzzDecodeStartRollout: any body gives a request or a 4xx problem, never a
// panic or a 500, and an accepted spec stays valid after a JSON round trip.
func FuzzDecodeStartRollout(f *testing.F) {
	roots := mustRoots(f, f.TempDir())
	f.Add([]byte(good))
	f.Add([]byte(`{"spec": {"service": "hello", "strategy": {"type": "rolling", "waves": "25%"}}}`))
	f.Add([]byte(`{"spec": {"analyses": {"e": {"provider": "router", "max": 0.05}}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeStartRollout(bytes.NewReader(body), roots)
		if err != nil {
			if p := ProblemFor(err); p.Status >= 500 {
				t.Fatalf("a client error became %d: %v", p.Status, err)
			}
			return
		}
		data, err := json.Marshal(req.Spec)
		if err != nil {
			t.Fatal(err)
		}
		var back spec.Rollout
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("accepted spec invalid after a round trip: %v", err)
		}
	})
}
