// Package app assembles imago from its parts: configuration from the environment,
// the Temporal client, the catalog and provider, and the worker that runs imago's
// workflows and activities. The imago-worker and imago binaries and the
// integration tests all build imago through it.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/codec"
	"github.com/imago/imago/internal/events"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/telemetry"
	"github.com/imago/imago/workflows"
)

// Config is imago's configuration; ConfigFromEnv reads it the way the Temporal CLI
// reads its own (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY).
type Config struct {
	Home            string      // IMAGO_HOME, default ~/.imago
	CatalogURL      string      // IMAGO_CATALOG_URL, default file://$IMAGO_HOME/catalog
	TemporalAddress string      // TEMPORAL_ADDRESS, default 127.0.0.1:7233
	Namespace       string      // TEMPORAL_NAMESPACE, default "default"
	TLSCert         string      // TEMPORAL_TLS_CERT
	TLSKey          string      // TEMPORAL_TLS_KEY
	TLSCA           string      // TEMPORAL_TLS_CA
	APIKey          string      // TEMPORAL_API_KEY
	Packer          string      // IMAGO_PACKER: the packer binary for builder packer; default packer beside the worker, then on PATH
	SecretsURL      string      // IMAGO_SECRETS_URL: gocloud secrets keeper of the payload key; default the key file $IMAGO_HOME/secrets.url
	UIOrigin        string      // IMAGO_UI_ORIGIN: web UI origins (comma-separated) the codec server lets call it, besides the embedded UI
	Provider        string      // IMAGO_PROVIDER: the rollouts' provider, local (default) or aws
	AWS             *aws.Config // the aws driver's settings; nil: from IMAGO_AWS_* (see docs/aws.md)
	EventsURL       string      // IMAGO_EVENTS_URL: gocloud pubsub topic of rollout and bake events; default mem://imago-events
	MetricsListen   string      // IMAGO_METRICS_LISTEN: imago-worker's Prometheus /metrics address; default 127.0.0.1:9464, set and empty: none
	Logger          *slog.Logger
	// Telemetry handed to the Temporal client by Dial (imago-worker: internal/telemetry); nil and empty: none.
	MetricsHandler client.MetricsHandler
	Interceptors   []interceptor.ClientInterceptor // client interceptors; those that are also worker interceptors apply to the client's workers
}

// DefaultTemporalAddress is where the embedded server listens by default.
const DefaultTemporalAddress = "127.0.0.1:7233"

// ConfigFromEnv reads the configuration from the environment, with defaults.
func ConfigFromEnv() Config {
	c := Config{
		Home:            os.Getenv("IMAGO_HOME"),
		CatalogURL:      os.Getenv("IMAGO_CATALOG_URL"),
		TemporalAddress: os.Getenv("TEMPORAL_ADDRESS"),
		Namespace:       os.Getenv("TEMPORAL_NAMESPACE"),
		TLSCert:         os.Getenv("TEMPORAL_TLS_CERT"),
		TLSKey:          os.Getenv("TEMPORAL_TLS_KEY"),
		TLSCA:           os.Getenv("TEMPORAL_TLS_CA"),
		APIKey:          os.Getenv("TEMPORAL_API_KEY"),
		Packer:          os.Getenv("IMAGO_PACKER"),
		SecretsURL:      os.Getenv("IMAGO_SECRETS_URL"),
		UIOrigin:        os.Getenv("IMAGO_UI_ORIGIN"),
		EventsURL:       os.Getenv("IMAGO_EVENTS_URL"),
		Provider:        os.Getenv("IMAGO_PROVIDER"),
		MetricsListen:   telemetry.DefaultMetricsListen,
	}
	if v, ok := os.LookupEnv("IMAGO_METRICS_LISTEN"); ok {
		c.MetricsListen = v // empty turns metrics off
	}
	c.fill()
	return c
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

// Dial connects to Temporal. Every payload the client (and a worker on it) writes
// is encrypted with PayloadCodec, and every encrypted payload it reads decrypted.
func (c Config) Dial(ctx context.Context) (client.Client, error) {
	c.fill()
	pc, err := c.PayloadCodec(ctx)
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		HostPort:      c.Address(),
		Namespace:     c.Namespace,
		Logger:        sdklog.NewStructuredLogger(c.Logger),
		DataConverter: pc.DataConverter(),
	}
	opts.MetricsHandler, opts.Interceptors = c.MetricsHandler, c.Interceptors
	if c.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	if c.TLSCert != "" || c.TLSCA != "" || c.APIKey != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("load TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("read TEMPORAL_TLS_CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("TEMPORAL_TLS_CA %s holds no PEM certificate", c.TLSCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w; is imago-worker running? start it with: make run", c.Address(), c.Namespace, err)
	}
	return cl, nil
}

// Deps are the dependencies of imago's activities.
type Deps struct {
	Catalog    *catalog.Catalog
	Provider   *provider.Provider
	Local      *local.Driver
	Events     *events.Publisher
	Activities *activities.Activities
}

// OpenDeps opens the catalog and the local provider under c.Home.
func OpenDeps(ctx context.Context, c Config) (*Deps, error) {
	c.fill()
	if err := os.MkdirAll(c.Home, 0o755); err != nil {
		return nil, fmt.Errorf("create IMAGO_HOME %s: %w", c.Home, err)
	}
	cat, err := catalog.Open(ctx, c.CatalogURL)
	if err != nil {
		return nil, err
	}
	drv, err := local.Open(local.Config{Home: c.Home, Images: activities.Images{Catalog: cat, Home: c.Home}})
	if err != nil {
		cat.Close()
		return nil, err
	}
	pub, err := events.Open(ctx, c.EventsURL)
	if err != nil {
		cat.Close()
		return nil, err
	}
	lp := provider.New(ProviderLocal, drv)
	p, err := openProvider(ctx, c, cat, lp)
	if err != nil {
		cat.Close()
		pub.Close()
		return nil, err
	}
	var bakeTests *provider.Provider
	if p != lp {
		bakeTests = lp
	}
	return &Deps{
		Catalog:  cat,
		Provider: p,
		Local:    drv,
		Events:   pub,
		Activities: &activities.Activities{
			Provider: p,
			Local:    bakeTests,
			Catalog:  cat,
			HTTP:     &http.Client{Timeout: 5 * time.Second},
			Home:     c.Home,
			Packer:   c.Packer,
			Events:   pub,
		},
	}, nil
}

// Close releases the dependencies (fleets and routers keep running).
func (d *Deps) Close() error {
	perr := d.Provider.Close()
	var lerr error
	if d.Provider.Name() != ProviderLocal {
		lerr = d.Local.Close() // the bake tests' local driver
	}
	cerr := d.Catalog.Close()
	eerr := d.Events.Close()
	return errors.Join(perr, lerr, cerr, eerr)
}

// Register registers imago's workflows and activities on a worker.
func Register(r worker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Rollout, workflow.RegisterOptions{Name: "Rollout"})
	r.RegisterWorkflowWithOptions(workflows.Bake, workflow.RegisterOptions{Name: "Bake"})
	r.RegisterWorkflowWithOptions(workflows.Pipeline, workflow.RegisterOptions{Name: "Pipeline"})
	r.RegisterWorkflowWithOptions(workflows.Reaper, workflow.RegisterOptions{Name: "Reaper"})
	r.RegisterActivity(acts)
}
