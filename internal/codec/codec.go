// Package codec encrypts imago's Temporal payloads (workflow inputs and results,
// activity arguments, queries, summaries and details) so that the Temporal server
// and its database only ever hold ciphertext, and serves the remote codec the web
// UI and the temporal CLI call to show them decrypted.
//
// Envelope encryption: each process draws a random 256-bit data key at start,
// wraps it once with a gocloud secrets keeper (IMAGO_SECRETS_URL: base64key://,
// awskms://, gcpkms://, hashivault://; by default a base64key:// key kept in
// $IMAGO_HOME/secrets.url) and seals every payload with AES-256-GCM under the
// data key. The wrapped data key travels in each payload's metadata, so any
// process holding the keeper can decrypt any payload; unwrapped keys are cached
// by key ID, so the keeper (a KMS call) is asked once per writer process.
//
// An encrypted payload is
//
//	metadata: encoding=binary/encrypted, encryption-cipher=AES256-GCM,
//	          encryption-key-id=<hex of SHA-256(wrapped key)[:8]>, encryption-key-wrapped=<wrapped key>
//	data:     nonce (12 bytes) || AES-GCM(proto-marshalled original payload)
//
// Workers and imago's clients decode strictly (StrictDataConverter): a payload
// that is not encrypted is refused with ErrPlaintext, so a workflow started on
// the Temporal frontend by anyone without the key runs nothing. The lenient
// DataConverter and Decode return such a payload unchanged, so the codec server
// still shows histories written before encryption was turned on (and
// IMAGO_ALLOW_PLAINTEXT=1 lets a worker replay them). FailureConverter seals
// failure messages and stack traces the same way.
package codec

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"gocloud.dev/secrets"
	"google.golang.org/protobuf/proto"

	// The keepers IMAGO_SECRETS_URL may name.
	_ "gocloud.dev/secrets/awskms"
	_ "gocloud.dev/secrets/gcpkms"
	_ "gocloud.dev/secrets/hashivault"
	_ "gocloud.dev/secrets/localsecrets"
)

// Metadata of an encrypted payload.
const (
	// Encoding is the metadata "encoding" of an encrypted payload.
	Encoding = "binary/encrypted"
	// Cipher is the value of MetadataCipher.
	Cipher = "AES256-GCM"

	MetadataCipher     = "encryption-cipher"
	MetadataKeyID      = "encryption-key-id"
	MetadataKeyWrapped = "encryption-key-wrapped"
)

// keeperTimeout bounds one wrap or unwrap call to the keeper (a KMS round trip).
const keeperTimeout = 30 * time.Second

// ErrKeyMismatch is returned (wrapped) when a payload's data key cannot be
// unwrapped with this process's keeper: it was written under another
// IMAGO_SECRETS_URL or another $IMAGO_HOME/secrets.url.
var ErrKeyMismatch = errors.New("payload was encrypted with a key this IMAGO_SECRETS_URL cannot unwrap")

// Codec is a converter.PayloadCodec that encrypts payloads with AES-256-GCM under
// a per-process data key wrapped by a gocloud secrets keeper. It is safe for
// concurrent use.
type Codec struct {
	keeper   *secrets.Keeper
	keeperID string // the keeper URL without key material, for messages

	keyID   string
	wrapped []byte
	aead    cipher.AEAD

	mu    sync.Mutex
	cache map[string]cipher.AEAD // key ID → unwrapped data key of another writer
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec that seals payloads under a fresh random data key wrapped
// by keeper. keeperName describes the keeper in error messages (e.g. its URL
// without key material). Close closes the keeper.
func New(ctx context.Context, keeper *secrets.Keeper, keeperName string) (*Codec, error) {
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, fmt.Errorf("codec: draw a data key: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, keeperTimeout)
	defer cancel()
	wrapped, err := keeper.Encrypt(wctx, dataKey)
	if err != nil {
		return nil, fmt.Errorf("codec: wrap the payload data key with IMAGO_SECRETS_URL %s: %w; check that the keeper is reachable and this process may use it", keeperName, err)
	}
	aead, err := newAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	id := keyID(wrapped)
	return &Codec{
		keeper:   keeper,
		keeperID: keeperName,
		keyID:    id,
		wrapped:  wrapped,
		aead:     aead,
		cache:    map[string]cipher.AEAD{id: aead},
	}, nil
}

// Open opens the keeper at secretsURL (a gocloud secrets URL) and returns New's codec.
func Open(ctx context.Context, secretsURL string) (*Codec, error) {
	name := Redact(secretsURL)
	if err := checkURL(secretsURL); err != nil {
		return nil, err
	}
	k, err := secrets.OpenKeeper(ctx, secretsURL)
	if err != nil {
		return nil, fmt.Errorf("codec: open IMAGO_SECRETS_URL %s: %w", name, err)
	}
	c, err := New(ctx, k, name)
	if err != nil {
		_ = k.Close()
		return nil, err
	}
	return c, nil
}

var shared struct {
	mu     sync.Mutex
	codecs map[string]*Codec // resolved secrets URL → codec
}

// Shared returns this process's codec for the keeper secretsURL names, or, when
// it is empty, for the key file under home (see SecretsURL). The first call per
// keeper opens it and draws the data key; later calls return the same codec,
// which stays open for the life of the process. The Temporal clients a process
// dials (app.Config.Dial) all share it.
func Shared(ctx context.Context, secretsURL, home string) (*Codec, error) {
	u, err := SecretsURL(secretsURL, home)
	if err != nil {
		return nil, err
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if c, ok := shared.codecs[u]; ok {
		return c, nil
	}
	c, err := Open(ctx, u)
	if err != nil {
		return nil, err
	}
	if shared.codecs == nil {
		shared.codecs = map[string]*Codec{}
	}
	shared.codecs[u] = c
	return c, nil
}

// KeyID identifies this process's data key: the encryption-key-id of the
// payloads it writes.
func (c *Codec) KeyID() string { return c.keyID }

// Close closes the keeper.
func (c *Codec) Close() error { return c.keeper.Close() }

// DataConverter is Temporal's default data converter with c applied to every
// payload. It reads unencrypted payloads as they are: for viewing histories
// written before encryption, not for a worker (see StrictDataConverter).
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// StrictDataConverter is DataConverter refusing, with ErrPlaintext, any payload
// that is not encrypted: what workers and imago's clients decode with.
func (c *Codec) StrictDataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), strict{c})
}

// ErrPlaintext is the error (wrapped) of a strict decode of a payload that is not
// encrypted. Its text is what a Temporal client without imago's codec sees when
// the workflow it started is refused (see FailureConverter), so it says what to do.
var ErrPlaintext = errors.New("imago refuses unencrypted payloads: start imago workflows with the imago CLI/API " +
	"or a client using imago's payload codec (IMAGO_SECRETS_URL); IMAGO_ALLOW_PLAINTEXT=1 reads histories written before encryption")

// AllowPlaintextEnv names the variable that lets imago decode payloads that are
// not encrypted ("1" or "true"): to read or finish histories written before
// encryption.
const AllowPlaintextEnv = "IMAGO_ALLOW_PLAINTEXT"

// AllowPlaintextFromEnv reads IMAGO_ALLOW_PLAINTEXT; unset or empty is false.
func AllowPlaintextFromEnv() (bool, error) {
	v := os.Getenv(AllowPlaintextEnv)
	if v == "" {
		return false, nil
	}
	allow, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want 1 to read histories written before encryption, or leave it unset", AllowPlaintextEnv, v)
	}
	return allow, nil
}

// strict is a codec whose Decode refuses payloads that are not encrypted.
type strict struct{ *Codec }

func (s strict) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	for i, p := range payloads {
		if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != Encoding {
			if len(enc) > 40 {
				enc = enc[:40] + "…"
			}
			return payloads, fmt.Errorf("%w (payload %d of %d has encoding %q)", ErrPlaintext, i+1, len(payloads), enc)
		}
	}
	return s.Codec.Decode(payloads)
}

// FailureConverter converts errors to Temporal failures and back with dc, with
// their messages and stack traces sealed too (the SDK's encoded attributes: the
// server stores "Encoded failure"). A failure caused by ErrPlaintext shows
// ErrPlaintext's text, which holds nothing secret, in place of "Encoded failure",
// so a client without the key still learns why its workflow was refused.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return sealedFailures{temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: dc, EncodeCommonAttributes: true,
	})}
}

type sealedFailures struct{ converter.FailureConverter }

func (f sealedFailures) ErrorToFailure(err error) *failurepb.Failure {
	fl := f.FailureConverter.ErrorToFailure(err)
	if fl.GetEncodedAttributes() != nil && errors.Is(err, ErrPlaintext) {
		fl = proto.Clone(fl).(*failurepb.Failure) // may be the error's own, kept failure
		fl.Message = ErrPlaintext.Error()
	}
	return fl
}

// Encode encrypts each payload.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: draw a nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataCipher:             []byte(Cipher),
				MetadataKeyID:              []byte(c.keyID),
				MetadataKeyWrapped:         c.wrapped,
			},
			Data: c.aead.Seal(nonce, nonce, plain, []byte(c.keyID)),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload and passes the others through.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		d, err := c.decode(p)
		if err != nil {
			return payloads, err
		}
		out[i] = d
	}
	return out, nil
}

func (c *Codec) decode(p *commonpb.Payload) (*commonpb.Payload, error) {
	md := p.GetMetadata()
	if cph := string(md[MetadataCipher]); cph != Cipher {
		return nil, fmt.Errorf("codec: encrypted payload has cipher %q; this imago reads %s only", cph, Cipher)
	}
	wrapped := md[MetadataKeyWrapped]
	if len(wrapped) == 0 {
		return nil, errors.New("codec: encrypted payload has no " + MetadataKeyWrapped + " metadata; it was not written by imago's codec")
	}
	id := keyID(wrapped)
	aead, err := c.unwrap(id, wrapped)
	if err != nil {
		return nil, err
	}
	data := p.GetData()
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("codec: encrypted payload (data key %s) is truncated: %d bytes", id, len(data))
	}
	nonce, sealed := data[:aead.NonceSize()], data[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("codec: encrypted payload (data key %s) failed authentication: it was altered or is corrupt", id)
	}
	var out commonpb.Payload
	if err := proto.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("codec: decrypted payload (data key %s) is not a payload: %w", id, err)
	}
	return &out, nil
}

// unwrap returns the AEAD for a wrapped data key, asking the keeper on a cache miss.
func (c *Codec) unwrap(id string, wrapped []byte) (cipher.AEAD, error) {
	c.mu.Lock()
	aead, ok := c.cache[id]
	c.mu.Unlock()
	if ok {
		return aead, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), keeperTimeout)
	defer cancel()
	key, err := c.keeper.Decrypt(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w (data key %s, keeper %s: %v); set IMAGO_SECRETS_URL to the keeper of the process that wrote it, or share its $IMAGO_HOME/secrets.url",
			ErrKeyMismatch, id, c.keeperID, err)
	}
	aead, err = newAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("%w (data key %s): %v", ErrKeyMismatch, id, err)
	}
	c.mu.Lock()
	c.cache[id] = aead
	c.mu.Unlock()
	return aead, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("codec: data key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	return cipher.NewGCM(block)
}

func keyID(wrapped []byte) string {
	sum := sha256.Sum256(wrapped)
	return hex.EncodeToString(sum[:8])
}

// Redact returns a secrets URL fit for messages and logs: a base64key:// URL's
// key is replaced by "…".
func Redact(secretsURL string) string {
	u, err := url.Parse(secretsURL)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.Scheme == "base64key" {
		if u.Host == "" {
			return "base64key://"
		}
		return "base64key://…"
	}
	return u.Redacted()
}

// checkURL refuses keeper URLs that cannot work for payloads other processes read.
func checkURL(secretsURL string) error {
	u, err := url.Parse(secretsURL)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("codec: IMAGO_SECRETS_URL %s is not a URL; want e.g. base64key://KEY, awskms://ALIAS?region=R, gcpkms://projects/…, hashivault://KEY",
			Redact(secretsURL))
	}
	if u.Scheme == "base64key" && u.Host == "" {
		return errors.New("codec: IMAGO_SECRETS_URL base64key:// has no key, so every process would draw its own and none could read another's payloads; " +
			"unset IMAGO_SECRETS_URL to use the key file $IMAGO_HOME/secrets.url, or give a key: base64key://<32 bytes, base64url>")
	}
	return nil
}
