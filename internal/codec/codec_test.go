package codec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// newKeyURL is a fresh base64key:// keeper URL.
func newKeyURL(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return "base64key://" + base64.URLEncoding.EncodeToString(k)
}

func openCodec(t *testing.T, url string) *Codec {
	t.Helper()
	c, err := Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

type deployment struct {
	Service string `json:"service"`
	Reason  string `json:"reason"`
}

func TestEncryptedPayloadHidesTheValueAndDecodesBack(t *testing.T) {
	c := openCodec(t, newKeyURL(t))
	secret := "hunter2-" + t.Name()
	dc := c.DataConverter()

	p, err := dc.ToPayload(deployment{Service: "hello", Reason: secret})
	require.NoError(t, err)
	raw, err := proto.Marshal(p)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), secret, "the marshalled payload holds ciphertext only")
	assert.NotContains(t, string(raw), "hello")
	assert.Equal(t, Encoding, string(p.Metadata[converter.MetadataEncoding]))
	assert.Equal(t, Cipher, string(p.Metadata[MetadataCipher]))
	assert.Equal(t, c.KeyID(), string(p.Metadata[MetadataKeyID]))
	assert.NotEmpty(t, p.Metadata[MetadataKeyWrapped])

	var got deployment
	require.NoError(t, dc.FromPayload(p, &got))
	assert.Equal(t, deployment{Service: "hello", Reason: secret}, got)
	assert.Contains(t, dc.ToString(p), secret, "ToString (what the CLI prints) decrypts too")

	// The same value twice gives two ciphertexts (a fresh nonce each time).
	p2, err := dc.ToPayload(deployment{Service: "hello", Reason: secret})
	require.NoError(t, err)
	assert.NotEqual(t, p.Data, p2.Data)
}

func TestUnencryptedPayloadsPassThrough(t *testing.T) {
	c := openCodec(t, newKeyURL(t))
	plain, err := converter.GetDefaultDataConverter().ToPayloads("written before encryption", 42, nil)
	require.NoError(t, err)
	out, err := c.Decode(plain.Payloads)
	require.NoError(t, err)
	require.Len(t, out, 3)
	for i := range out {
		assert.True(t, proto.Equal(plain.Payloads[i], out[i]), "payload %d unchanged", i)
	}
	var s string
	var n int
	var nothing *string
	require.NoError(t, c.DataConverter().FromPayloads(plain, &s, &n, &nothing))
	assert.Equal(t, "written before encryption", s)
	assert.Equal(t, 42, n)
}

func TestStrictDecodeRefusesPlaintextAndNamesTheWay(t *testing.T) {
	c := openCodec(t, newKeyURL(t))
	strict := c.StrictDataConverter()

	plain, err := converter.GetDefaultDataConverter().ToPayloads("rm -rf /", nil)
	require.NoError(t, err)
	var s string
	var nothing *string
	err = strict.FromPayloads(plain, &s, &nothing)
	require.ErrorIs(t, err, ErrPlaintext)
	assert.Contains(t, err.Error(), `payload 1 of 2 has encoding "json/plain"`)
	assert.Contains(t, err.Error(), "IMAGO_SECRETS_URL")
	assert.Contains(t, err.Error(), "IMAGO_ALLOW_PLAINTEXT=1")
	assert.Empty(t, s, "nothing is decoded")
	assert.NotContains(t, err.Error(), "rm -rf", "the refused payload is not echoed")

	// One plaintext payload among encrypted ones is enough to refuse them all.
	sealed, err := strict.ToPayloads("ok", nil)
	require.NoError(t, err)
	mixed := &commonpb.Payloads{Payloads: []*commonpb.Payload{sealed.Payloads[0], plain.Payloads[1]}}
	require.ErrorIs(t, strict.FromPayloads(mixed, &s, &nothing), ErrPlaintext)

	// Encrypted ones decode; no payloads at all (a signal or update without
	// arguments) are fine.
	require.NoError(t, strict.FromPayloads(sealed, &s, &nothing))
	assert.Equal(t, "ok", s)
	assert.Nil(t, nothing)
	require.NoError(t, strict.FromPayloads(nil))
	require.NoError(t, strict.FromPayloads(&commonpb.Payloads{}))

	// A long made-up encoding is cut in the message.
	odd := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(strings.Repeat("x", 500))}}
	err = strict.FromPayload(odd, &s)
	require.ErrorIs(t, err, ErrPlaintext)
	assert.Less(t, len(err.Error()), len(ErrPlaintext.Error())+120)
}

func TestFailureMessagesAreSealedAndReadBack(t *testing.T) {
	c := openCodec(t, newKeyURL(t))
	fc := FailureConverter(c.StrictDataConverter())
	secret := "token-" + t.Name()

	cause := temporal.NewApplicationError("provision output: "+secret, "BuildFailed")
	f := fc.ErrorToFailure(temporal.NewApplicationErrorWithCause("bake hello: provision output: "+secret, "BakeFailed", cause))
	raw, err := proto.Marshal(f)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), secret, "neither the message nor its cause's is stored in plain text")
	assert.Equal(t, "Encoded failure", f.GetMessage())
	assert.Equal(t, "Encoded failure", f.GetCause().GetMessage())
	assert.Equal(t, "BuildFailed", f.GetCause().GetApplicationFailureInfo().GetType(), "the type stays readable for retries")

	message := func(err error) string {
		t.Helper()
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		return app.Message()
	}
	// (FailureToError decodes the failure in place: each reader gets its own copy.)
	read := func(fc converter.FailureConverter, f *failurepb.Failure) string {
		return message(fc.FailureToError(proto.Clone(f).(*failurepb.Failure)))
	}
	assert.Equal(t, "Encoded failure", read(temporal.GetDefaultFailureConverter(), f), "without the key: no message")
	assert.Equal(t, "bake hello: provision output: "+secret, read(fc, f))

	// A refusal says why, also to a client without the key; its full text stays sealed.
	refused := fmt.Errorf("unable to decode the workflow function input payload with error: %w, function name: Bake",
		c.StrictDataConverter().FromPayload(&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}}, new(string)))
	rf := fc.ErrorToFailure(refused)
	assert.Equal(t, ErrPlaintext.Error(), rf.GetMessage())
	assert.Equal(t, ErrPlaintext.Error(), read(temporal.GetDefaultFailureConverter(), rf))
	assert.Equal(t, refused.Error(), read(fc, rf))
}

func TestAnotherProcessWithTheSameKeeperDecodes(t *testing.T) {
	url := newKeyURL(t)
	writer, reader := openCodec(t, url), openCodec(t, url)
	require.NotEqual(t, writer.KeyID(), reader.KeyID(), "each process draws its own data key")

	p, err := writer.DataConverter().ToPayload("approved by alice")
	require.NoError(t, err)
	for range 2 { // the second decode is served from the unwrapped-key cache
		var got string
		require.NoError(t, reader.DataConverter().FromPayload(p, &got))
		assert.Equal(t, "approved by alice", got)
	}
}

func TestAnotherKeyCannotDecodeAndSaysWhy(t *testing.T) {
	writerURL := newKeyURL(t)
	writer, other := openCodec(t, writerURL), openCodec(t, newKeyURL(t))
	p, err := writer.DataConverter().ToPayload("approved by alice")
	require.NoError(t, err)

	_, err = other.Decode([]*commonpb.Payload{p})
	require.Error(t, err)
	t.Log(err)
	assert.True(t, errors.Is(err, ErrKeyMismatch))
	assert.Contains(t, err.Error(), "payload was encrypted with a key this IMAGO_SECRETS_URL cannot unwrap")
	assert.Contains(t, err.Error(), writer.KeyID(), "names the data key")
	assert.Contains(t, err.Error(), "base64key://…", "names the keeper without its key")
	assert.NotContains(t, err.Error(), strings.TrimPrefix(writerURL, "base64key://")[:8], "nor the key itself")

	var got string
	err = other.DataConverter().FromPayload(p, &got)
	require.ErrorIs(t, err, ErrKeyMismatch)
	assert.Empty(t, got)
}

func TestAlteredPayloadIsRefused(t *testing.T) {
	c := openCodec(t, newKeyURL(t))
	p, err := c.DataConverter().ToPayload("rollout hello to prod")
	require.NoError(t, err)
	bad := proto.Clone(p).(*commonpb.Payload)
	bad.Data[len(bad.Data)-1] ^= 1
	_, err = c.Decode([]*commonpb.Payload{bad})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed authentication: it was altered or is corrupt")

	noKey := proto.Clone(p).(*commonpb.Payload)
	delete(noKey.Metadata, MetadataKeyWrapped)
	_, err = c.Decode([]*commonpb.Payload{noKey})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no encryption-key-wrapped metadata")
}

func TestKeyFileIsMadeOnceWithMode0600(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home") // made on first use
	path := filepath.Join(home, KeyFileName)

	u1, err := SecretsURL("", home)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u1, "base64key://"), u1)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the key file is private")
	content, err := os.ReadFile(path)
	require.NoError(t, err)

	u2, err := SecretsURL("", home)
	require.NoError(t, err)
	assert.Equal(t, u1, u2, "reused on the second open")
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, content, again, "never rewritten")

	// Payloads written with one open decode with the next.
	p, err := openCodec(t, u1).DataConverter().ToPayload("v1")
	require.NoError(t, err)
	var got string
	require.NoError(t, openCodec(t, u2).DataConverter().FromPayload(p, &got))
	assert.Equal(t, "v1", got)

	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	// An explicit IMAGO_SECRETS_URL wins, and the file is left alone.
	other := newKeyURL(t)
	u3, err := SecretsURL(other, home)
	require.NoError(t, err)
	assert.Equal(t, other, u3)
	again, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, content, again)
}

func TestKeyFileAlreadyThereIsNotOverwritten(t *testing.T) {
	home := t.TempDir()
	mine := newKeyURL(t)
	require.NoError(t, os.WriteFile(filepath.Join(home, KeyFileName), []byte(mine+"\n"), 0o600))
	u, err := SecretsURL("", home)
	require.NoError(t, err)
	assert.Equal(t, mine, u)
	b, err := os.ReadFile(filepath.Join(home, KeyFileName))
	require.NoError(t, err)
	assert.Equal(t, mine+"\n", string(b))
}

func TestConcurrentFirstUseAgreesOnOneKey(t *testing.T) {
	home := t.TempDir()
	urls := make([]string, 8)
	var wg sync.WaitGroup
	for i := range urls {
		wg.Go(func() {
			u, err := SecretsURL("", home)
			assert.NoError(t, err)
			urls[i] = u
		})
	}
	wg.Wait()
	for _, u := range urls {
		assert.Equal(t, urls[0], u)
	}
	b, err := os.ReadFile(filepath.Join(home, KeyFileName))
	require.NoError(t, err)
	assert.Equal(t, urls[0], strings.TrimSpace(string(b)))
}

func TestBadKeeperURLsSayWhatToDo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"base64key://", "unset IMAGO_SECRETS_URL to use the key file"},
		{"not a url", "is not a URL; want e.g. base64key://KEY"},
		{"base64key://c2hvcnQ=", "open IMAGO_SECRETS_URL base64key://…"},
		{"nosuchkms://key", "open IMAGO_SECRETS_URL nosuchkms://key"},
	} {
		_, err := Open(ctx, tc.url)
		require.Error(t, err, tc.url)
		t.Log(err)
		assert.Contains(t, err.Error(), tc.want, tc.url)
		if strings.HasPrefix(tc.url, "base64key://c2") {
			assert.NotContains(t, err.Error(), "c2hvcnQ", "the key is not repeated in messages")
		}
	}

	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, KeyFileName), []byte("\n"), 0o600))
	_, err := Shared(ctx, "", home)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is empty; it should hold a keeper URL")
}

func TestSharedIsOneCodecPerKeeper(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	a, err := Shared(ctx, "", home)
	require.NoError(t, err)
	b, err := Shared(ctx, "", home)
	require.NoError(t, err)
	assert.Same(t, a, b)
	c, err := Shared(ctx, "", t.TempDir())
	require.NoError(t, err)
	assert.NotSame(t, a, c)
	assert.False(t, bytes.Equal([]byte(a.KeyID()), []byte(c.KeyID())))
}
