package codec_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/imago/imago/internal/api/tokens"
	"github.com/imago/imago/internal/codec"
)

const uiOrigin = "http://127.0.0.1:8233"

// The tokens of the tests, as IMAGO_API_TOKENS or a tokens file gives them.
const (
	opsTok    = "tok-ops-0123456789abcdef"
	uiTok     = "tok-ui-0123456789abcdef"
	readTok   = "tok-read-0123456789abcdef"
	deployTok = "tok-deploy-0123456789abcdef"
)

// mustTokens reads lines of a tokens file.
func mustTokens(t *testing.T, lines ...string) []tokens.Token {
	t.Helper()
	toks, err := tokens.Parse(strings.Join(lines, "\n"), "test tokens")
	require.NoError(t, err)
	return toks
}

// codecServer serves a fresh codec on a real loopback listener, as imago-worker's
// --codec-listen does, with the tokens of lines (a tokens file's), and returns
// the codec and the endpoint.
func codecServer(t *testing.T, lines ...string) (*codec.Codec, string) {
	t.Helper()
	c, err := codec.Shared(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	srv, err := codec.Listen("127.0.0.1:0", len(lines) > 0)
	require.NoError(t, err)
	srv.Serve(codec.NewHandler(c, codec.HandlerOptions{Tokens: mustTokens(t, lines...), Origins: []string{uiOrigin}}))
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	return c, srv.Endpoint()
}

// encrypted is the JSON body the web UI posts to …/decode for value.
func encrypted(t *testing.T, c *codec.Codec, value any) []byte {
	t.Helper()
	p, err := c.DataConverter().ToPayload(value)
	require.NoError(t, err)
	body, err := json.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	require.NoError(t, err)
	require.NotContains(t, string(body), "hello-secret")
	return body
}

func post(t *testing.T, url string, body []byte, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// decoded is the plaintext JSON value of the single payload in a …/decode answer.
func decoded(t *testing.T, body string) string {
	t.Helper()
	var out commonpb.Payloads
	require.NoError(t, json.Unmarshal([]byte(body), &out), body)
	require.Len(t, out.Payloads, 1)
	assert.Equal(t, "json/plain", string(out.Payloads[0].Metadata["encoding"]))
	return string(out.Payloads[0].Data)
}

func TestCodecEndpointDecodesForTheRightTokenOnly(t *testing.T) {
	c, endpoint := codecServer(t, opsTok+" admin", uiTok+" admin")
	body := encrypted(t, c, map[string]string{"reason": "hello-secret"})

	for name, header := range map[string]map[string]string{
		"no token":      {},
		"wrong token":   {"Authorization": "Bearer tok-nope-0123456789abcdef"},
		"prefix token":  {"Authorization": "Bearer tok-ops-0123456789abcde"},
		"not a bearer":  {"Authorization": "Basic dG9rLW9wczo="},
		"bearer, empty": {"Authorization": "Bearer "},
	} {
		status, h, text := post(t, endpoint+"/decode", body, header)
		assert.Equal(t, http.StatusUnauthorized, status, name)
		assert.Equal(t, `Bearer realm="imago codec"`, h.Get("WWW-Authenticate"), name)
		assert.Contains(t, text, "IMAGO_API_TOKENS", name)
		assert.NotContains(t, text, "hello-secret", name)
	}

	status, h, text := post(t, endpoint+"/decode", body, map[string]string{"Authorization": "Bearer " + uiTok})
	require.Equal(t, http.StatusOK, status, text)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.JSONEq(t, `{"reason":"hello-secret"}`, decoded(t, text))

	// The temporal CLI's --codec-endpoint client (the SDK's remote codec) speaks the same protocol.
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: endpoint,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+opsTok)
			return nil
		},
	})
	p, err := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), remote).ToPayload("approved by hello-secret")
	require.NoError(t, err)
	assert.Equal(t, codec.Encoding, string(p.Metadata["encoding"]), "…/encode encrypts")
	var got string
	require.NoError(t, c.DataConverter().FromPayload(p, &got))
	assert.Equal(t, "approved by hello-secret", got)
}

// Decoding shows sealed payloads and encoding seals work a worker would run:
// a token without admin, which the API would let read or deploy, gets 403 for
// both, and learns nothing of the payload.
func TestCodecEndpointNeedsTheAdminScope(t *testing.T) {
	c, endpoint := codecServer(t, readTok, deployTok+" deploy,approve,bake", opsTok+" admin")
	body := encrypted(t, c, map[string]string{"reason": "hello-secret"})
	plain, err := json.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"approved"`)}}})
	require.NoError(t, err)

	for tok, has := range map[string]string{readTok: "it has read (api:", deployTok: "it has deploy, approve, bake (api:"} {
		for path, req := range map[string][]byte{"/decode": body, "/encode": plain} {
			status, _, text := post(t, endpoint+path, req, map[string]string{"Authorization": "Bearer " + tok})
			assert.Equal(t, http.StatusForbidden, status, "%s %s", path, has)
			assert.Contains(t, text, "this token lacks the scope admin, which the codec server needs", path)
			assert.Contains(t, text, has, path)
			assert.NotContains(t, text, "hello-secret", path)
			assert.NotContains(t, text, tok, "the answer never quotes the token")
		}
	}

	status, _, text := post(t, endpoint+"/decode", body, map[string]string{"Authorization": "Bearer " + opsTok})
	require.Equal(t, http.StatusOK, status, text)
	assert.JSONEq(t, `{"reason":"hello-secret"}`, decoded(t, text))
	status, _, text = post(t, endpoint+"/encode", plain, map[string]string{"Authorization": "Bearer " + opsTok})
	require.Equal(t, http.StatusOK, status, text)
	assert.Contains(t, text, base64.StdEncoding.EncodeToString([]byte(codec.Encoding)), "encode seals")
}

func TestCodecEndpointWithoutTokensServesLoopbackOnly(t *testing.T) {
	c, endpoint := codecServer(t)
	body := encrypted(t, c, "hello-secret")

	status, _, text := post(t, endpoint+"/decode", body, nil)
	require.Equal(t, http.StatusOK, status, text)
	assert.Equal(t, `"hello-secret"`, decoded(t, text))

	// A web page whose name was rebound to 127.0.0.1 sends its own Host.
	status, _, text = post(t, endpoint+"/decode", body, map[string]string{"Host": "evil.example:8234"})
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, text, "serves loopback callers only")

	_, err := codec.Listen("0.0.0.0:0", false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set IMAGO_API_TOKENS or listen on 127.0.0.1")
}

func TestCodecEndpointAnswersCORSForTheUIOriginOnly(t *testing.T) {
	_, endpoint := codecServer(t, uiTok+" admin")
	preflight := func(origin string) *http.Response {
		req, err := http.NewRequest(http.MethodOptions, endpoint+"/decode?preserveStorageRefs=true", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}

	resp := preflight(uiOrigin)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	for _, h := range []string{"Content-Type", "Authorization", "X-Namespace"} {
		assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), h)
	}
	assert.Contains(t, resp.Header.Values("Vary"), "Origin")

	resp = preflight("https://evil.example")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	// The actual request from the UI carries the CORS headers too, also when refused,
	// so the UI can show why.
	status, h, _ := post(t, endpoint+"/decode", []byte(`{"payloads":[]}`), map[string]string{"Origin": uiOrigin})
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, uiOrigin, h.Get("Access-Control-Allow-Origin"))
}

func TestCodecHandlerMountsUnderAPrefixAndRefusesNonsense(t *testing.T) {
	c, err := codec.Shared(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/codec/", codec.NewHandler(c, codec.HandlerOptions{Tokens: mustTokens(t, opsTok+" admin")}))
	srv := httptest.NewServer(mux) // as `imago serve` mounts it beside /v1/
	defer srv.Close()
	auth := map[string]string{"Authorization": "Bearer " + opsTok}

	status, _, text := post(t, srv.URL+"/codec/decode", encrypted(t, c, "hello-secret"), auth)
	require.Equal(t, http.StatusOK, status, text)
	assert.Equal(t, `"hello-secret"`, decoded(t, text))

	status, _, text = post(t, srv.URL+"/codec/rotate", nil, auth)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, text, "POST …/encode and POST …/decode")

	resp, err := http.Get(srv.URL + "/codec/decode")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	status, _, text = post(t, srv.URL+"/codec/decode", []byte(`{"payloads": "nope"}`), auth)
	assert.Equal(t, http.StatusBadRequest, status, text)

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", strings.NewReader(`{"payloads":[]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+opsTok)
	req.Header.Set("Content-Type", "text/plain")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)

	// A payload under another key: 400 with the reason, as the UI shows it.
	other, err := codec.Shared(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	status, _, text = post(t, srv.URL+"/codec/decode", encrypted(t, other, "hello-secret"), auth)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, text, "payload was encrypted with a key this IMAGO_SECRETS_URL cannot unwrap")
}

// A client that sends half a request, or keeps a connection open doing nothing,
// is disconnected by the server's timeouts (shortened here from 10 s and 2 min).
func TestCodecServerDropsSlowAndIdleClients(t *testing.T) {
	c, err := codec.Shared(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	srv, err := codec.Listen("127.0.0.1:0", false)
	require.NoError(t, err)
	codec.ShortenTimeouts(srv, 200*time.Millisecond)
	srv.Serve(codec.NewHandler(c, codec.HandlerOptions{}))
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })

	closedByServer := func(conn net.Conn) bool {
		t.Helper()
		// The test's own bound: far above the server's timeout.
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
		_, err := io.ReadAll(conn)
		return err == nil // EOF: the server hung up; a deadline error would be ours
	}

	slow, err := net.Dial("tcp", srv.Addr())
	require.NoError(t, err)
	defer slow.Close()
	_, err = io.WriteString(slow, "POST /codec/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
	require.NoError(t, err)
	assert.True(t, closedByServer(slow), "a client stuck in its headers is disconnected")

	idle, err := net.Dial("tcp", srv.Addr())
	require.NoError(t, err)
	defer idle.Close()
	body := encrypted(t, c, "hello-secret")
	_, err = fmt.Fprintf(idle, "POST /codec/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	require.NoError(t, err)
	text, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(text))
	assert.Equal(t, `"hello-secret"`, decoded(t, string(text)))
	assert.True(t, closedByServer(idle), "a kept-alive connection left idle is closed")
}

func TestUIOrigins(t *testing.T) {
	assert.Equal(t, []string{"http://127.0.0.1:8233", "http://localhost:8233"}, codec.UIOrigins("127.0.0.1:8233"))
	assert.Equal(t, []string{"http://0.0.0.0:8233", "http://127.0.0.1:8233", "http://localhost:8233"}, codec.UIOrigins("0.0.0.0:8233"))
	assert.Equal(t, []string{"http://10.1.2.3:8233"}, codec.UIOrigins("10.1.2.3:8233"))
	assert.Nil(t, codec.UIOrigins(""))
	assert.Equal(t, []string{"https://ui.example.com", "http://127.0.0.1:8233"}, codec.ParseOrigins(" https://ui.example.com/ ,, http://127.0.0.1:8233"))
}
