package provenance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeKey writes priv as a PKCS#8 PEM file (0600) and returns its path.
func writeKey(t *testing.T, priv crypto.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return path
}

func testBuild(archive []byte) Build {
	return Build{
		ImageID: "img-0123456789ab", Service: "hello", ArchiveDigest: SHA256(archive), InputDigest: "sha256:" + string(bytes.Repeat([]byte("a"), 64)),
		Builder: "imago-local", Entrypoint: []string{"./hello"}, VariableNames: []string{"GREETING"},
		Materials:   []Material{{Name: "source", URI: "file:///src/hello", Digest: SHA256([]byte("tree"))}},
		BaseImageID: "img-base00000000", WorkflowID: "bake/hello/latest", RunID: "run-1", Worker: "1@host", Version: "v1",
		StartedOn: time.Unix(1000, 0), FinishedOn: time.Unix(2000, 0),
	}
}

func TestSignedProvenanceVerifiesWithSigstoreAndOnlyForItsArchive(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		key  func() (crypto.PrivateKey, crypto.PublicKey)
	}{
		{"ecdsa-p256", func() (crypto.PrivateKey, crypto.PublicKey) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return k, k.Public()
		}},
		{"ed25519", func() (crypto.PrivateKey, crypto.PublicKey) {
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			return priv, pub
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			priv, pub := tc.key()
			s, err := LoadSigner(ctx, writeKey(t, priv), "")
			require.NoError(t, err)
			archive := []byte("the image archive")
			st, err := NewStatement(testBuild(archive))
			require.NoError(t, err)
			payload, err := Marshal(st)
			require.NoError(t, err)
			env, err := s.Sign(ctx, payload)
			require.NoError(t, err)

			// sigstore's own DSSE verifier, as cosign verify-blob-attestation uses it.
			sv, err := signature.LoadVerifier(pub, crypto.SHA256)
			require.NoError(t, err)
			require.NoError(t, dsse.WrapVerifier(sv).VerifySignature(bytes.NewReader(env), nil))

			pemPub, err := s.PublicKeyPEM(ctx)
			require.NoError(t, err)
			v, err := LoadVerifier(pemPub)
			require.NoError(t, err)
			got, err := Verify(env, bytes.NewReader(archive), v)
			require.NoError(t, err)
			assert.Equal(t, "bake/hello/latest/run-1", got.InvocationID())
			assert.Equal(t, BuilderID+"#1@host", got.BuilderID())
			assert.True(t, got.Signed)

			changed := bytes.Clone(archive)
			changed[3] ^= 1
			_, err = Verify(env, bytes.NewReader(changed), v)
			assert.ErrorContains(t, err, "not this archive")

			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			ov, err := signature.LoadVerifier(other.Public(), crypto.SHA256)
			require.NoError(t, err)
			_, err = Verify(env, bytes.NewReader(archive), ov)
			assert.ErrorContains(t, err, "does not verify")
		})
	}
}

func TestUnsignedProvenanceIsReadableButNeverVerifies(t *testing.T) {
	archive := []byte("x")
	st, err := NewStatement(testBuild(archive))
	require.NoError(t, err)
	payload, err := Marshal(st)
	require.NoError(t, err)
	var none *Signer
	env, err := none.Sign(context.Background(), payload)
	require.NoError(t, err)
	parsed, err := Parse(env)
	require.NoError(t, err)
	assert.False(t, parsed.Signed)
	assert.True(t, parsed.Covers(SHA256(archive)))
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v, _ := signature.LoadVerifier(k.Public(), crypto.SHA256)
	_, err = VerifyDigest(env, SHA256(archive), v)
	assert.True(t, errors.Is(err, ErrUnsigned), "%v", err)
}

func TestLoadSignerRefusesWhatItCannotUse(t *testing.T) {
	ctx := context.Background()
	s, err := LoadSigner(ctx, "", "")
	assert.NoError(t, err)
	assert.Nil(t, s)
	_, err = LoadSigner(ctx, "azurekms://vault/key", "")
	assert.ErrorContains(t, err, "scheme azurekms:// is not supported")
	bad := filepath.Join(t.TempDir(), "k")
	require.NoError(t, os.WriteFile(bad, []byte("nope"), 0o600))
	_, err = LoadSigner(ctx, bad, "")
	assert.ErrorContains(t, err, "not a PEM private key")
}
