package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/codec"
)

// pki is a test CA with a server certificate for temporal.internal and a client
// certificate for imago-worker, as PEM files.
type pki struct {
	caPEM                       []byte
	server                      tls.Certificate
	caFile, certFile, keyFile   string
	clientCertPEM, clientKeyPEM []byte
	roots                       *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, tmpl *x509.Certificate) ([]byte, []byte) {
		k := key()
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	serverCert, serverKey := issue(2, &x509.Certificate{Subject: pkix.Name{CommonName: "temporal.internal"},
		DNSNames: []string{"temporal.internal"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	clientCert, clientKey := issue(3, &x509.Certificate{Subject: pkix.Name{CommonName: "imago-worker"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	server, err := tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)
	p := pki{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), server: server,
		caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "client.pem"), keyFile: filepath.Join(dir, "client.key"),
		clientCertPEM: clientCert, clientKeyPEM: clientKey, roots: x509.NewCertPool(),
	}
	p.roots.AddCert(ca)
	for f, data := range map[string][]byte{p.caFile: p.caPEM, p.certFile: clientCert, p.keyFile: clientKey} {
		require.NoError(t, os.WriteFile(f, data, 0o600))
	}
	return p
}

// mtlsProxy terminates TLS on a loopback port, demanding a client certificate
// from p's CA, and forwards the bytes to backend: a Temporal frontend behind
// mTLS. It records the server name and client certificate of each handshake.
type mtlsProxy struct {
	addr string
	mu   sync.Mutex
	seen []string // "SNI client-CN" per completed handshake
}

func newMTLSProxy(t *testing.T, p pki, backend string) *mtlsProxy {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.roots,
		NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	})
	require.NoError(t, err)
	px := &mtlsProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				tc := conn.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				st := tc.ConnectionState()
				px.mu.Lock()
				px.seen = append(px.seen, st.ServerName+" "+st.PeerCertificates[0].Subject.CommonName)
				px.mu.Unlock()
				up, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, tc); up.Close() }()
				_, _ = io.Copy(tc, up)
			}()
		}
	}()
	return px
}

func (px *mtlsProxy) handshakes() []string {
	px.mu.Lock()
	defer px.mu.Unlock()
	return append([]string(nil), px.seen...)
}

// clearTemporalEnv unsets every Temporal connection variable for the test, and
// points TEMPORAL_CONFIG_FILE at a file that does not exist (not the developer's
// own profile).
func clearTemporalEnv(t *testing.T) {
	for _, k := range TemporalEnv {
		if k != "TEMPORAL_GRPC_META_*" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", filepath.Join(t.TempDir(), "none.toml"))
	t.Setenv(codec.AllowPlaintextEnv, "")
	os.Unsetenv(codec.AllowPlaintextEnv)
}

// imago-worker and the CLI reach a Temporal behind mTLS from the standard
// variables alone: the envconfig names (paths, or PEM data) or the older ones.
func TestDialReachesTemporalBehindMTLSFromTheEnvironment(t *testing.T) {
	p := newPKI(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	px := newMTLSProxy(t, p, ts.GetFrontendHostPort())
	home := t.TempDir()

	dial := func(t *testing.T, env map[string]string) error {
		clearTemporalEnv(t)
		t.Setenv("TEMPORAL_ADDRESS", px.addr)
		t.Setenv("TEMPORAL_NAMESPACE", ts.GetDefaultNamespace())
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg := ConfigFromEnv()
		cfg.Home = home
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := cfg.Dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}

	for name, env := range map[string]map[string]string{
		"envconfig paths": {"TEMPORAL_TLS_CLIENT_CERT_PATH": p.certFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": p.keyFile,
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH": p.caFile, "TEMPORAL_TLS_SERVER_NAME": "temporal.internal"},
		"envconfig data": {"TEMPORAL_TLS_CLIENT_CERT_DATA": string(p.clientCertPEM), "TEMPORAL_TLS_CLIENT_KEY_DATA": string(p.clientKeyPEM),
			"TEMPORAL_TLS_SERVER_CA_CERT_DATA": string(p.caPEM), "TEMPORAL_TLS_SERVER_NAME": "temporal.internal"},
		"older names": {"TEMPORAL_TLS_CERT": p.certFile, "TEMPORAL_TLS_KEY": p.keyFile, "TEMPORAL_TLS_CA": p.caFile,
			"TEMPORAL_TLS_SERVER_NAME": "temporal.internal"},
		"the Temporal CLI's profile file": {"TEMPORAL_CONFIG_FILE": writeProfile(t, `
[profile.default.tls]
client_cert_path = "`+p.certFile+`"
client_key_path = "`+p.keyFile+`"
server_ca_cert_path = "`+p.caFile+`"
server_name = "temporal.internal"
`)},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(px.handshakes())
			require.NoError(t, dial(t, env))
			after := px.handshakes()
			require.Greater(t, len(after), before)
			assert.Equal(t, "temporal.internal imago-worker", after[len(after)-1], "server name and client certificate")
		})
	}

	t.Run("no client certificate: refused", func(t *testing.T) {
		err := dial(t, map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": p.caFile, "TEMPORAL_TLS_SERVER_NAME": "temporal.internal"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connect to Temporal at "+px.addr)
	})
	t.Run("server certificate for another name: refused", func(t *testing.T) {
		err := dial(t, map[string]string{"TEMPORAL_TLS_CERT": p.certFile, "TEMPORAL_TLS_KEY": p.keyFile, "TEMPORAL_TLS_CA": p.caFile})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "failed to verify certificate", "it is for temporal.internal, not the dialled 127.0.0.1")
	})
}

func TestConnectionVariablesAreChecked(t *testing.T) {
	home := t.TempDir()
	options := func(env map[string]string) (client.Options, error) {
		clearTemporalEnv(t)
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg := ConfigFromEnv()
		cfg.Home = home
		return cfg.clientOptions(context.Background())
	}

	opts, err := options(map[string]string{"TEMPORAL_ADDRESS": "prod.a1b2c.tmprl.cloud:7233", "TEMPORAL_API_KEY": "key-123"})
	require.NoError(t, err)
	assert.NotNil(t, opts.Credentials, "the API key is sent")
	require.NotNil(t, opts.ConnectionOptions.TLS, "over TLS, on by default with an API key")
	assert.False(t, opts.ConnectionOptions.TLS.InsecureSkipVerify)

	opts, err = options(map[string]string{"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_TLS": "true", "TEMPORAL_TLS_SERVER_NAME": "temporal.internal"})
	require.NoError(t, err)
	require.NotNil(t, opts.ConnectionOptions.TLS)
	assert.Equal(t, "temporal.internal", opts.ConnectionOptions.TLS.ServerName)
	assert.Nil(t, opts.ConnectionOptions.TLS.Certificates)

	opts, err = options(nil)
	require.NoError(t, err)
	assert.Nil(t, opts.ConnectionOptions.TLS, "the embedded server: no TLS")
	assert.Equal(t, DefaultTemporalAddress, opts.HostPort)

	for msg, env := range map[string]map[string]string{
		"TEMPORAL_API_KEY would be sent unencrypted":                              {"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_API_KEY": "key-123", "TEMPORAL_TLS": "false"},
		`TEMPORAL_TLS="yes": want true or false`:                                  {"TEMPORAL_TLS": "yes"},
		`IMAGO_ALLOW_PLAINTEXT="yes": want 1`:                                     {codec.AllowPlaintextEnv: "yes"},
		"if either client cert or key path is present, other must be present too": {"TEMPORAL_TLS_CERT": "client.pem"},
	} {
		_, err := options(env)
		require.Error(t, err, msg)
		assert.Contains(t, err.Error(), msg)
	}
	_, err = options(map[string]string{"TEMPORAL_API_KEY": "key-123", "TEMPORAL_TLS": "false"})
	assert.NoError(t, err, "to a loopback address an API key may go without TLS")
}

func writeProfile(t *testing.T, toml string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "temporal.toml")
	require.NoError(t, os.WriteFile(f, []byte(toml), 0o600))
	return f
}

// The CLI and the worker read the profile file the Temporal CLI reads
// (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE), with the variables over it.
func TestTheTemporalCLIProfileIsReadUnderTheVariables(t *testing.T) {
	file := writeProfile(t, `
[profile.default]
address = "temporal.example:7233"
namespace = "team-a"

[profile.prod]
address = "prod.a1b2c.tmprl.cloud:7233"
namespace = "prod.a1b2c"
api_key = "key-from-profile"
[profile.prod.tls]
server_name = "prod.internal"
`)
	home := t.TempDir()
	load := func(env map[string]string) Config {
		clearTemporalEnv(t)
		t.Setenv("TEMPORAL_CONFIG_FILE", file)
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg := ConfigFromEnv()
		cfg.Home = home
		return cfg
	}

	cfg := load(nil)
	assert.Equal(t, "temporal.example:7233", cfg.Address(), "the default profile")
	assert.Equal(t, "team-a", cfg.Namespace)

	cfg = load(map[string]string{"TEMPORAL_PROFILE": "prod"})
	opts, err := cfg.clientOptions(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "prod.a1b2c.tmprl.cloud:7233", opts.HostPort)
	assert.Equal(t, "prod.a1b2c", opts.Namespace)
	assert.NotNil(t, opts.Credentials, "the profile's API key is sent")
	require.NotNil(t, opts.ConnectionOptions.TLS)
	assert.Equal(t, "prod.internal", opts.ConnectionOptions.TLS.ServerName)

	cfg = load(map[string]string{"TEMPORAL_PROFILE": "prod", "TEMPORAL_ADDRESS": "temporal.internal:7233", "TEMPORAL_NAMESPACE": "ops",
		"TEMPORAL_TLS_SERVER_NAME": "temporal.internal"})
	opts, err = cfg.clientOptions(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "temporal.internal:7233", opts.HostPort, "a variable wins over the profile")
	assert.Equal(t, "ops", opts.Namespace)
	assert.Equal(t, "temporal.internal", opts.ConnectionOptions.TLS.ServerName)

	// The embedded server is plaintext and keyless whatever the profile says.
	cfg = load(map[string]string{"TEMPORAL_PROFILE": "prod"})
	cfg.UseEmbedded("127.0.0.1:7233")
	opts, err = cfg.clientOptions(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:7233", opts.HostPort)
	assert.Nil(t, opts.Credentials)
	assert.Nil(t, opts.ConnectionOptions.TLS)

	// The older names apply over the profile's paths.
	tlsFile := writeProfile(t, `
[profile.default.tls]
client_cert_path = "profile.pem"
client_key_path = "profile.key"
`)
	clearTemporalEnv(t)
	t.Setenv("TEMPORAL_CONFIG_FILE", tlsFile)
	t.Setenv("TEMPORAL_TLS_CERT", "older.pem")
	t.Setenv("TEMPORAL_TLS_KEY", "older.key")
	cfg = ConfigFromEnv()
	assert.Equal(t, "older.pem", cfg.Connection.TLS.ClientCertPath)
	assert.Equal(t, "older.key", cfg.Connection.TLS.ClientKeyPath)

	for msg, env := range map[string]map[string]string{
		"profile staging":       {"TEMPORAL_PROFILE": "staging"},
		"file " + file:          {"TEMPORAL_PROFILE": "staging"},
		"failed parsing config": {"TEMPORAL_CONFIG_FILE": writeProfile(t, "[profile.default\naddress = 1")},
	} {
		cfg := load(nil)
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg = ConfigFromEnv()
		cfg.Home = home
		_, err := cfg.clientOptions(context.Background())
		require.Error(t, err, msg)
		assert.Contains(t, err.Error(), msg)
	}
}
