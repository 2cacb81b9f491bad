package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/netguard"
)

// The signature is GitHub's form: sha256= and the hex HMAC-SHA256 of the raw
// body (RFC 4231-style known answer), which Verify checks and a changed body,
// key or prefix fails.
func TestSignIsHMACSHA256OfTheRawBody(t *testing.T) {
	body := []byte("The quick brown fox jumps over the lazy dog")
	sig := Sign([]byte("key"), body)
	assert.Equal(t, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8", sig)
	assert.True(t, Verify([]byte("key"), body, sig))
	assert.False(t, Verify([]byte("key"), append(body, '.'), sig))
	assert.False(t, Verify([]byte("other"), body, sig))
	assert.False(t, Verify([]byte("key"), body, sig[len("sha256="):]))
	assert.False(t, Verify([]byte("key"), body, "sha256=zz"))
}

// Post sends the body and headers and reports the answer; a URL the guard
// refuses is never dialed, and the error names the host, not the path (a
// webhook URL's path is often its credential).
func TestPostAnswersAndGuard(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		assert.Equal(t, "v", r.Header.Get("X-Test"))
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, "not yet")
	}))
	defer srv.Close()
	allowed := netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0)
	a, err := Post(context.Background(), allowed, Request{URL: srv.URL + "/hook", Body: []byte(`{"a":1}`), Header: map[string]string{"X-Test": "v"}})
	require.NoError(t, err)
	assert.Equal(t, `{"a":1}`, string(got))
	assert.Equal(t, Answer{Status: 409, Text: "409 Conflict"}, a, "the status, never the body")
	assert.False(t, a.OK())

	_, err = Post(context.Background(), netguard.New(netguard.Allow{}).Client(0), Request{URL: srv.URL + "/T000/B000/XXXX"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, netguard.ErrRefused), "%v", err)
	assert.Contains(t, err.Error(), "127.0.0.1 is loopback")
	assert.NotContains(t, err.Error(), "XXXX")
}

func TestCheckURL(t *testing.T) {
	assert.NoError(t, CheckURL("https://hooks.slack.com/services/T/B/X"))
	assert.ErrorContains(t, CheckURL("ftp://x/"), "want an http:// or https:// URL")
	assert.ErrorContains(t, CheckURL("https://u:p@x/"), "must not hold credentials")
	assert.ErrorContains(t, CheckURL("/just/a/path"), "")
}
