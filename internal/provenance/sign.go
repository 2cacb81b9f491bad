package provenance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"

	// The KMS providers IMAGO_SIGNING_KEY may name (awskms://, gcpkms://,
	// hashivault://); each registers itself with kms.Get.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)

const (
	// KeyEnv names the worker's signing key: a PEM private key file, or a KMS
	// URI (awskms://, gcpkms://, hashivault://). Unset: provenance is unsigned.
	KeyEnv = "IMAGO_SIGNING_KEY"
	// PasswordEnv is the password of an encrypted PEM key (PKCS#8
	// "ENCRYPTED PRIVATE KEY" or a legacy encrypted PEM block).
	PasswordEnv = "IMAGO_SIGNING_KEY_PASSWORD"
)

// ErrUnsigned is returned (wrapped) by Verify for an envelope with no signature:
// a bake on a worker without IMAGO_SIGNING_KEY.
var ErrUnsigned = errors.New("the provenance is unsigned (the bake's worker had no " + KeyEnv + ")")

// KMSSchemes are the KMS URI schemes LoadSigner accepts.
var KMSSchemes = []string{"awskms://", "gcpkms://", "hashivault://"}

// Signer signs statements. It holds the key (or a KMS handle) on the worker.
type Signer struct {
	sv  signature.SignerVerifier
	Ref string // the file path or KMS URI it was loaded from
}

// LoadSigner loads the signer ref names: a KMS URI (KMSSchemes; the provider
// reads its credentials as its SDK does: AWS_*, GOOGLE_APPLICATION_CREDENTIALS,
// VAULT_ADDR and VAULT_TOKEN) or the path of a PEM private key (ECDSA, ed25519
// or RSA; an encrypted one with its password in password). An empty ref is no
// signer (nil, nil).
func LoadSigner(ctx context.Context, ref, password string) (*Signer, error) {
	if ref == "" {
		return nil, nil
	}
	if scheme, _, ok := strings.Cut(ref, "://"); ok {
		for _, s := range KMSSchemes {
			if strings.HasPrefix(ref, s) {
				sv, err := kms.Get(ctx, ref, crypto.SHA256)
				if err != nil {
					return nil, fmt.Errorf("%s=%s: %w", KeyEnv, ref, err)
				}
				return &Signer{sv: sv, Ref: ref}, nil
			}
		}
		return nil, fmt.Errorf("%s=%s: scheme %s:// is not supported: use a PEM key file path or a KMS URI (%s)",
			KeyEnv, ref, scheme, strings.Join(KMSSchemes, ", "))
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyEnv, err)
	}
	var pf cryptoutils.PassFunc
	if password != "" {
		pf = cryptoutils.StaticPasswordFunc([]byte(password))
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(data, pf)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: not a PEM private key (ECDSA, ed25519 or RSA; an encrypted one needs %s): %w", KeyEnv, ref, PasswordEnv, err)
	}
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", KeyEnv, ref, err)
	}
	return &Signer{sv: sv, Ref: ref}, nil
}

// PublicKeyPEM is the signer's public key, PEM-encoded: what verifiers need.
func (s *Signer) PublicKeyPEM(ctx context.Context) ([]byte, error) {
	pub, err := s.sv.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// Sign wraps the statement in a DSSE envelope signed by s. A nil s makes the
// unsigned envelope (Unsigned).
func (s *Signer) Sign(ctx context.Context, payload []byte) ([]byte, error) {
	if s == nil {
		return Unsigned(payload)
	}
	env, err := dsse.WrapSigner(s.sv, PayloadType).SignMessage(bytes.NewReader(payload), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("sign provenance with %s: %w", s.Ref, err)
	}
	return env, nil
}

// Unsigned is a DSSE envelope of payload with no signatures.
func Unsigned(payload []byte) ([]byte, error) {
	return json.Marshal(ssldsse.Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: []ssldsse.Signature{}})
}

// Parse decodes an envelope WITHOUT checking its signature (to show it):
// Signed says whether it has one.
func Parse(envelope []byte) (*Statement, error) {
	var env ssldsse.Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("provenance: not a DSSE envelope: %w", err)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("provenance: payload type %q, want %q", env.PayloadType, PayloadType)
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("provenance: payload: %w", err)
	}
	st, err := decodeStatement(payload)
	if err != nil {
		return nil, err
	}
	st.Signed = len(env.Signatures) > 0
	return st, nil
}

// LoadVerifier reads a PEM public key (ECDSA, ed25519 or RSA) into a verifier
// for Verify.
func LoadVerifier(publicKeyPEM []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(publicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("provenance: public key: %w", err)
	}
	return signature.LoadDefaultVerifier(pub)
}

// Verify checks that envelope is signed by v's key (sigstore's DSSE verifier)
// and that its statement is about archive: a subject has the sha256 of the
// archive's bytes. It returns the verified statement.
func Verify(envelope []byte, archive io.Reader, v signature.Verifier) (*Statement, error) {
	h := sha256.New()
	if _, err := io.Copy(h, archive); err != nil {
		return nil, fmt.Errorf("provenance: read archive: %w", err)
	}
	return VerifyDigest(envelope, "sha256:"+hex.EncodeToString(h.Sum(nil)), v)
}

// VerifyDigest is Verify for an archive whose sha256 (sha256:<hex>) is known,
// say an image record's Digest that the catalog checked on read.
func VerifyDigest(envelope []byte, digest string, v signature.Verifier) (*Statement, error) {
	st, err := Parse(envelope)
	if err != nil {
		return nil, err
	}
	if !st.Signed {
		return nil, ErrUnsigned
	}
	var payload []byte
	vr := dsse.WrapVerifier(v, dsse.WithExpectedPayloadType(PayloadType), dsse.WithDecodedPayload(&payload))
	if err := vr.VerifySignature(bytes.NewReader(envelope), nil); err != nil {
		return nil, fmt.Errorf("provenance: the signature does not verify with this key: %w", err)
	}
	if st, err = decodeStatement(payload); err != nil { // what was signed, not what Parse read
		return nil, err
	}
	st.Signed = true
	if !st.Covers(digest) {
		return nil, fmt.Errorf("provenance: the statement is about %s, not this archive (%s)", strings.Join(st.SubjectDigests(), ", "), digest)
	}
	return st, nil
}
