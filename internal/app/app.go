// Package app assembles imago from its parts: configuration from the environment,
// the Temporal client, the catalog and provider, and the worker that runs imago's
// workflows and activities. The imago-worker and imago binaries and the
// integration tests all build imago through it.
package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/imago/imago/internal/contract"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"gocloud.dev/secrets"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/bake/runas"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/events"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/policy"
	"github.com/imago/imago/internal/provenance"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/telemetry"
	"github.com/imago/imago/internal/webhook"
	"github.com/imago/imago/workflows"
)

// Config is imago's configuration. ConfigFromEnv reads Temporal's connection the
// way the Temporal CLI and SDKs read theirs (the SDK's envconfig: the profile
// TEMPORAL_PROFILE, default "default", of the file TEMPORAL_CONFIG_FILE, default
// ~/.config/temporalio/temporal.toml, under the variables TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*), and imago's own IMAGO_*.
type Config struct {
	Home            string // IMAGO_HOME, default ~/.imago
	CatalogURL      string // IMAGO_CATALOG_URL, default file://$IMAGO_HOME/catalog
	TemporalAddress string // TEMPORAL_ADDRESS or the profile's address, default 127.0.0.1:7233
	Namespace       string // TEMPORAL_NAMESPACE or the profile's namespace, default "default"
	// Connection is the rest of the Temporal connection: API key, TLS, gRPC
	// metadata (its Address and Namespace are ignored). ConfigFromEnv fills it from
	// the profile file and the envconfig variables, see TemporalEnv.
	Connection envconfig.ClientConfigProfile
	Packer     string // IMAGO_PACKER: the packer binary for builder packer; default packer beside the worker, then on PATH
	SecretsURL string // IMAGO_SECRETS_URL: gocloud secrets keeper of the payload key; default the key file $IMAGO_HOME/secrets.url
	UIOrigin   string // IMAGO_UI_ORIGIN: web UI origins (comma-separated) the codec server lets call it, besides the embedded UI
	// ProviderURL (IMAGO_PROVIDER_URL, imago-worker --provider) names the
	// rollouts' provider and its settings: local://, aws://REGION?vpc=…; see
	// internal/provider's URLMux. ProviderURLSetting names where it came from,
	// for errors (default IMAGO_PROVIDER_URL).
	ProviderURL        string
	ProviderURLSetting string
	Provider           string      // IMAGO_PROVIDER: the older way to name it, local (default) or aws; ProviderURL replaces it
	AWS                *aws.Config // the aws driver's settings an aws URL changes; nil: from IMAGO_AWS_* (see docs/aws.md)
	EventsURL          string      // IMAGO_EVENTS_URL: gocloud pubsub topic of rollout and bake events; default mem://imago-events
	MetricsListen      string      // IMAGO_METRICS_LISTEN: imago-worker's Prometheus /metrics address; default 127.0.0.1:9464, set and empty: none
	// AllowPlaintext (IMAGO_ALLOW_PLAINTEXT=1) lets clients and workers decode
	// payloads that are not encrypted: only to read or finish histories written
	// before encryption, since a worker then runs what anyone who can reach
	// Temporal starts.
	AllowPlaintext bool
	AnalysisAllow  string // IMAGO_ANALYSIS_ALLOW: hosts and CIDRs (comma-separated) analysis URLs may reach although loopback or private; see internal/netguard
	BakeRoots      string // IMAGO_BAKE_ROOTS: the only directories bakes may read (PATH-like list); empty: any the worker can read
	BakeUser       string // IMAGO_BAKE_USER: the user bakes' commands and packer run as; empty: the worker's
	HookSecret     string // IMAGO_HOOK_SECRET: the key that signs hook requests of specs without hooks.secret
	// HookSecretKeeper (IMAGO_HOOK_SECRET_KEEPER) is a gocloud secrets keeper URL
	// (awskms://, gcpkms://, hashivault://, base64key://): when set,
	// IMAGO_HOOK_SECRET is that keeper's ciphertext, in base64, and the worker
	// decrypts it once at start.
	HookSecretKeeper string
	// SigningKey (IMAGO_SIGNING_KEY) signs the provenance of every baked
	// image, on the worker: a PEM private key file or a KMS URI (awskms://,
	// gcpkms://, hashivault://); empty: provenance is stored unsigned.
	// SigningKeyPassword (IMAGO_SIGNING_KEY_PASSWORD) opens an encrypted key file.
	SigningKey         string
	SigningKeyPassword string
	NotifyURL          string // IMAGO_NOTIFY_URL: told of every rollout's notices (awaiting approval, how it ended)
	NotifyFormat       string // IMAGO_NOTIFY_FORMAT: slack (default), teams or json
	Logger             *slog.Logger
	// Telemetry handed to the Temporal client by Dial (imago-worker: internal/telemetry); nil and empty: none.
	MetricsHandler client.MetricsHandler
	Interceptors   []interceptor.ClientInterceptor // client interceptors; those that are also worker interceptors apply to the client's workers

	// ArchiveLimits caps an image archive the local provider unpacks; nil: from
	// IMAGO_ARCHIVE_MAX_BYTES and IMAGO_ARCHIVE_MAX_ENTRIES (image.LimitsFromEnv).
	ArchiveLimits *image.Limits

	envErr error // a malformed variable ConfigFromEnv read; Dial reports it
}

// DefaultTemporalAddress is where the embedded server listens by default.
const DefaultTemporalAddress = "127.0.0.1:7233"

// TemporalEnv lists the variables of Temporal's connection ConfigFromEnv reads:
// the profile file's and profile's names, the SDK's envconfig names (which
// override the profile), then the older Temporal CLI names imago read first,
// which apply when the newer ones are unset.
var TemporalEnv = []string{
	"TEMPORAL_CONFIG_FILE", "TEMPORAL_PROFILE",
	"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS",
	"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_DATA", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_CLIENT_KEY_DATA",
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_DATA", "TEMPORAL_TLS_SERVER_NAME",
	"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "TEMPORAL_CLIENT_AUTHORITY", "TEMPORAL_GRPC_META_*",
	"TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA",
}

// ConfigFromEnv reads the configuration from the environment, with defaults.
func ConfigFromEnv() Config {
	c := Config{
		Home:               os.Getenv("IMAGO_HOME"),
		CatalogURL:         os.Getenv("IMAGO_CATALOG_URL"),
		Packer:             os.Getenv("IMAGO_PACKER"),
		SecretsURL:         os.Getenv("IMAGO_SECRETS_URL"),
		UIOrigin:           os.Getenv("IMAGO_UI_ORIGIN"),
		EventsURL:          os.Getenv("IMAGO_EVENTS_URL"),
		Provider:           os.Getenv("IMAGO_PROVIDER"),
		ProviderURL:        os.Getenv(ProviderURLEnv),
		AnalysisAllow:      os.Getenv(netguard.EnvAllow),
		BakeRoots:          os.Getenv(spec.BakeRootsEnv),
		BakeUser:           os.Getenv(runas.Env),
		HookSecret:         os.Getenv("IMAGO_HOOK_SECRET"),
		HookSecretKeeper:   os.Getenv("IMAGO_HOOK_SECRET_KEEPER"),
		SigningKey:         os.Getenv(provenance.KeyEnv),
		SigningKeyPassword: os.Getenv(provenance.PasswordEnv),
		NotifyURL:          os.Getenv("IMAGO_NOTIFY_URL"),
		NotifyFormat:       os.Getenv("IMAGO_NOTIFY_FORMAT"),
		MetricsListen:      telemetry.DefaultMetricsListen,
	}
	if v, ok := os.LookupEnv("IMAGO_METRICS_LISTEN"); ok {
		c.MetricsListen = v // empty turns metrics off
	}
	var errs []error
	allow, err := codec.AllowPlaintextFromEnv()
	if err != nil {
		errs = append(errs, err)
	}
	c.AllowPlaintext = allow
	// The Temporal CLI's profile, then the variables over it. (make run keeps its
	// embedded server whatever the profile says: it passes --temporal-address=.)
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("Temporal connection profile (file %s, profile %s) or variables: %w",
			temporalConfigFile(), temporalProfile(), err))
	}
	for _, k := range []string{"TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"} {
		if v := os.Getenv(k); v != "" && !slices.Contains([]string{"1", "0", "true", "false"}, strings.ToLower(v)) {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", k, v)) // envconfig would ignore it
		}
	}
	// The older names apply where the envconfig ones are unset, over the profile.
	if cert, key, ca := os.Getenv("TEMPORAL_TLS_CERT"), os.Getenv("TEMPORAL_TLS_KEY"), os.Getenv("TEMPORAL_TLS_CA"); cert+key+ca != "" {
		if prof.TLS == nil {
			prof.TLS = &envconfig.ClientConfigTLS{}
		}
		t := prof.TLS
		older := func(v, newer string, path *string, data *[]byte) {
			if v != "" && os.Getenv(newer+"_PATH") == "" && os.Getenv(newer+"_DATA") == "" {
				*path, *data = v, nil
			}
		}
		older(cert, "TEMPORAL_TLS_CLIENT_CERT", &t.ClientCertPath, &t.ClientCertData)
		older(key, "TEMPORAL_TLS_CLIENT_KEY", &t.ClientKeyPath, &t.ClientKeyData)
		older(ca, "TEMPORAL_TLS_SERVER_CA_CERT", &t.ServerCACertPath, &t.ServerCACertData)
	}
	c.TemporalAddress, c.Namespace, c.Connection = prof.Address, prof.Namespace, prof
	c.envErr = errors.Join(errs...)
	c.fill()
	return c
}

// temporalConfigFile is the Temporal CLI's profile file, as envconfig finds it.
func temporalConfigFile() string {
	if f := os.Getenv("TEMPORAL_CONFIG_FILE"); f != "" {
		return f
	}
	return envconfig.DefaultConfigFilePath()
}

// temporalProfile is the profile envconfig reads from it.
func temporalProfile() string {
	if p := os.Getenv("TEMPORAL_PROFILE"); p != "" {
		return p
	}
	return envconfig.DefaultConfigFileProfile
}

func (c *Config) fill() {
	if c.Home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			c.Home = filepath.Join(h, ".imago")
		} else {
			c.Home = ".imago"
		}
	}
	if abs, err := filepath.Abs(c.Home); err == nil {
		c.Home = abs
	}
	if c.CatalogURL == "" {
		c.CatalogURL = "file://" + filepath.Join(c.Home, "catalog")
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.EventsURL == "" {
		c.EventsURL = events.DefaultURL
	}
	if c.Packer == "" {
		c.Packer = "packer"
		if exe, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(exe), "packer"); fileExists(p) {
				c.Packer = p
			}
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// UseEmbedded points c at the embedded server listening on addr: plaintext and
// without an API key, whatever TLS or key the profile or variables name for
// another server.
func (c *Config) UseEmbedded(addr string) {
	c.TemporalAddress, c.Connection = addr, envconfig.ClientConfigProfile{}
}

// Address returns the Temporal address, the embedded default when unset.
func (c Config) Address() string {
	if c.TemporalAddress == "" {
		return DefaultTemporalAddress
	}
	return c.TemporalAddress
}

// PayloadCodec is this process's payload encryption for c's keeper
// (IMAGO_SECRETS_URL, else the key file $IMAGO_HOME/secrets.url, made on first use).
func (c Config) PayloadCodec(ctx context.Context) (*codec.Codec, error) {
	c.fill()
	return codec.Shared(ctx, c.SecretsURL, c.Home)
}

// Converters are the data and failure converters of every Temporal client imago
// dials, and so of its workers: payloads, failure messages and stack traces are
// encrypted with PayloadCodec, and a payload that is not encrypted is refused
// (codec.ErrPlaintext) unless AllowPlaintext is set.
func (c Config) Converters(ctx context.Context) (converter.DataConverter, converter.FailureConverter, error) {
	pc, err := c.PayloadCodec(ctx)
	if err != nil {
		return nil, nil, err
	}
	dc := pc.StrictDataConverter()
	if c.AllowPlaintext {
		dc = pc.DataConverter()
	}
	return dc, codec.FailureConverter(dc), nil
}

// Dial connects to Temporal with Converters: every payload and failure the client
// (and a worker on it) writes is encrypted, and every one it reads decrypted.
func (c Config) Dial(ctx context.Context) (client.Client, error) {
	c.fill()
	opts, err := c.clientOptions(ctx)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w; is imago-worker running? start it with: make run", c.Address(), c.Namespace, err)
	}
	return cl, nil
}

func (c Config) archiveLimits() (image.Limits, error) {
	if c.ArchiveLimits != nil {
		return *c.ArchiveLimits, nil
	}
	return image.LimitsFromEnv()
}

// clientOptions are the options Dial dials with.
func (c Config) clientOptions(ctx context.Context) (client.Options, error) {
	if c.envErr != nil {
		return client.Options{}, c.envErr
	}
	prof := c.Connection
	prof.Address, prof.Namespace = c.Address(), c.Namespace
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return opts, fmt.Errorf("Temporal connection (TEMPORAL_TLS*, TEMPORAL_API_KEY): %w", err)
	}
	if prof.APIKey != "" && opts.ConnectionOptions.TLSDisabled && !isLoopback(c.Address()) {
		return opts, fmt.Errorf("TEMPORAL_API_KEY would be sent unencrypted to %s: TEMPORAL_TLS=false turns TLS off; enable TLS, or use a loopback address", c.Address())
	}
	if t := opts.ConnectionOptions.TLS; t != nil && t.InsecureSkipVerify {
		c.Logger.Warn("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is set: the Temporal server's certificate is not checked", "address", c.Address())
	}
	if c.AllowPlaintext {
		c.Logger.Warn("IMAGO_ALLOW_PLAINTEXT is set: unencrypted payloads are accepted, so a worker runs what anyone who can reach Temporal starts; unset it once the histories written before encryption are closed")
	}
	opts.Logger = sdklog.NewStructuredLogger(c.Logger)
	if opts.DataConverter, opts.FailureConverter, err = c.Converters(ctx); err != nil {
		return opts, err
	}
	opts.MetricsHandler, opts.Interceptors = c.MetricsHandler, c.Interceptors
	return opts, nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Deps are the dependencies of imago's activities.
type Deps struct {
	Catalog    *catalog.Catalog
	Provider   *provider.Provider
	Local      *local.Driver
	Events     *events.Publisher
	Activities *activities.Activities
}

// OwnerOnly sets this process's umask to 077, so that everything it creates,
// and the processes it starts (routers, instances, packer) create, is its
// owner's alone: files 0600, directories 0700, whichever library makes them
// (SQLite's database, gocloud's fileblob catalog). imago-worker and imago call
// it first thing; imago's own code also asks for owner-only modes explicitly.
func OwnerOnly() { syscall.Umask(0o077) }

// EnsureHome creates IMAGO_HOME with mode 0700, and makes an existing one that
// others can read or enter 0700 (saying so in the log).
func EnsureHome(home string, log *slog.Logger) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("create IMAGO_HOME %s: %w", home, err)
	}
	fi, err := os.Stat(home)
	if err != nil {
		return fmt.Errorf("IMAGO_HOME %s: %w", home, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(home, 0o700); err != nil {
			return fmt.Errorf("IMAGO_HOME %s is %04o, open to others, and cannot be made 0700: %w", home, perm, err)
		}
		if log != nil {
			log.Warn("IMAGO_HOME was open to other users; made it owner-only", "home", home, "was", fmt.Sprintf("%04o", perm), "now", "0700")
		}
	}
	return nil
}

// AnalysisClient is the client of the analysis providers prometheus and http:
// through the outbound guard, allowing what IMAGO_ANALYSIS_ALLOW lists.
func (c Config) AnalysisClient() (*http.Client, error) {
	allow, err := netguard.ParseAllow(c.AnalysisAllow)
	if err != nil {
		return nil, err
	}
	return netguard.New(allow).Client(10 * time.Second), nil
}

// hookSigningKey returns the key that signs hooks: secret itself, or, with a keeper
// URL, secret (base64 ciphertext) decrypted by that gocloud secrets keeper. Its
// errors name the variables, never the key.
func hookSigningKey(ctx context.Context, keeperURL, secret string) (string, error) {
	if keeperURL == "" {
		return secret, nil
	}
	name := codec.Redact(keeperURL)
	if secret == "" {
		return "", fmt.Errorf("IMAGO_HOOK_SECRET_KEEPER %s is set, but IMAGO_HOOK_SECRET (the key's ciphertext, in base64) is empty", name)
	}
	ciphertext, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
	if err != nil {
		return "", fmt.Errorf("IMAGO_HOOK_SECRET is not base64 (with IMAGO_HOOK_SECRET_KEEPER set, it is the key's ciphertext): %v", err)
	}
	k, err := secrets.OpenKeeper(ctx, keeperURL)
	if err != nil {
		return "", fmt.Errorf("open IMAGO_HOOK_SECRET_KEEPER %s: %v", name, err)
	}
	defer k.Close()
	key, err := k.Decrypt(ctx, ciphertext)
	if err != nil {
		return "", fmt.Errorf("decrypt IMAGO_HOOK_SECRET with IMAGO_HOOK_SECRET_KEEPER %s: %v", name, err)
	}
	if len(key) == 0 {
		return "", fmt.Errorf("IMAGO_HOOK_SECRET decrypts to an empty key")
	}
	return string(key), nil
}

// checkNotify refuses an IMAGO_NOTIFY_URL or IMAGO_NOTIFY_FORMAT no
// notification could be sent with, when the worker starts.
func (c Config) checkNotify() error {
	if c.NotifyURL != "" {
		if err := webhook.CheckURL(c.NotifyURL); err != nil {
			return fmt.Errorf("IMAGO_NOTIFY_URL %v", err)
		}
	}
	if f := c.NotifyFormat; f != "" && !slices.Contains(contract.Formats, f) {
		return fmt.Errorf("IMAGO_NOTIFY_FORMAT=%q: want one of %s", f, strings.Join(contract.Formats, ", "))
	}
	return nil
}

// OpenDeps opens the catalog and the local provider under c.Home.
func OpenDeps(ctx context.Context, c Config) (*Deps, error) {
	c.fill()
	roots, err := spec.ParseBakeRoots(c.BakeRoots)
	if err != nil {
		return nil, err
	}
	bakeUser, err := runas.Parse(c.BakeUser)
	if err != nil {
		return nil, err
	}
	if err := EnsureHome(c.Home, c.Logger); err != nil {
		return nil, err
	}
	analysisHTTP, err := c.AnalysisClient()
	if err != nil {
		return nil, err
	}
	limits, err := c.archiveLimits()
	if err != nil {
		return nil, err
	}
	if err := c.checkNotify(); err != nil {
		return nil, err
	}
	hookSecret, err := hookSigningKey(ctx, c.HookSecretKeeper, c.HookSecret)
	if err != nil {
		return nil, err
	}
	signer, err := provenance.LoadSigner(ctx, c.SigningKey, c.SigningKeyPassword)
	if err != nil {
		return nil, err
	}
	var trusted func(context.Context) ([]byte, error) // what a --require-provenance policy without a key trusts
	if signer != nil {
		trusted = signer.PublicKeyPEM
	}
	cat, err := catalog.Open(ctx, c.CatalogURL)
	if err != nil {
		return nil, err
	}
	pub, err := events.Open(ctx, c.EventsURL)
	if err != nil {
		cat.Close()
		return nil, err
	}
	// The https secret references of a rollout's env go through the same guard
	// and allow list (IMAGO_ANALYSIS_ALLOW) as the analysis providers.
	localCfg := local.Config{Home: c.Home, Images: activities.Images{Catalog: cat, Home: c.Home}, ArchiveLimits: limits, SecretClient: analysisHTTP}
	p, err := openProvider(ctx, c, localCfg)
	if err != nil {
		cat.Close()
		pub.Close()
		return nil, err
	}
	// Bake tests of local images always boot locally: on the rollouts' local
	// driver when it runs on this home, else on a local driver of their own.
	drv, ok := p.Driver().(*local.Driver)
	var bakeTests *provider.Provider
	if !ok || drv.Home() != c.Home {
		if drv, err = local.Open(localCfg); err != nil {
			p.Close()
			cat.Close()
			pub.Close()
			return nil, err
		}
		bakeTests = provider.New(ProviderLocal, drv)
	}
	return &Deps{
		Catalog:  cat,
		Provider: p,
		Local:    drv,
		Events:   pub,
		Activities: &activities.Activities{
			Provider:  p,
			Local:     bakeTests,
			Catalog:   cat,
			HTTP:      activities.ProbeClient(),
			Analysis:  analysisHTTP,
			Home:      c.Home,
			Packer:    c.Packer,
			Events:    pub,
			BakeRoots: roots,
			BakeUser:  bakeUser,
			// Hooks and notifications go through the analysis providers' guard.
			HookSecret:   hookSecret,
			NotifyURL:    c.NotifyURL,
			NotifyFormat: c.NotifyFormat,
			Signer:       signer,
			// Environments with --require-provenance verify the catalog's
			// envelope with the policy's key, or this worker's own.
			Provenance: policy.Verifier{Envelope: cat.Provenance, Trusted: trusted},
		},
	}, nil
}

// Close releases the dependencies (fleets and routers keep running).
func (d *Deps) Close() error {
	perr := d.Provider.Close()
	var lerr error
	if d.Provider.Driver() != provider.Driver(d.Local) {
		lerr = d.Local.Close() // the bake tests' local driver
	}
	cerr := d.Catalog.Close()
	eerr := d.Events.Close()
	return errors.Join(perr, lerr, cerr, eerr)
}

// Register registers imago's workflows and activities on a worker.
func Register(r worker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Rollout, workflow.RegisterOptions{Name: contract.WorkflowRollout})
	r.RegisterWorkflowWithOptions(workflows.Bake, workflow.RegisterOptions{Name: contract.WorkflowBake})
	r.RegisterWorkflowWithOptions(workflows.Pipeline, workflow.RegisterOptions{Name: contract.WorkflowPipeline})
	r.RegisterWorkflowWithOptions(workflows.Reaper, workflow.RegisterOptions{Name: contract.WorkflowReaper})
	r.RegisterWorkflowWithOptions(workflows.Campaign, workflow.RegisterOptions{Name: contract.WorkflowCampaign})
	r.RegisterWorkflowWithOptions(workflows.Drift, workflow.RegisterOptions{Name: contract.WorkflowDrift})
	r.RegisterWorkflowWithOptions(workflows.ImageLifecycle, workflow.RegisterOptions{Name: contract.WorkflowLifecycle})
	r.RegisterActivity(acts) // each method under its name: contract.Activity* (TestActivityNamesAreTheContracts)
}
