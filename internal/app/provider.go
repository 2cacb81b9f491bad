package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/libvirt"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/provider/qemu"
)

// Providers a worker can run; one worker runs one.
const (
	ProviderLocal = "local"
	ProviderAWS   = "aws"
)

// awsConfigFromEnv reads the aws driver's settings (IMAGO_AWS_*). Lists are
// comma-separated; IMAGO_AWS_LISTENERS maps routers to ALB listeners as
// "prod/web=arn:…,staging/web=arn:…".
func awsConfigFromEnv() (aws.Config, error) {
	split := func(k string) []string {
		var out []string
		for _, f := range strings.Split(os.Getenv(k), ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	c := aws.Config{
		Region:         os.Getenv("IMAGO_AWS_REGION"),
		VPCID:          os.Getenv("IMAGO_AWS_VPC"),
		Subnets:        split("IMAGO_AWS_SUBNETS"),
		SecurityGroups: split("IMAGO_AWS_SECURITY_GROUPS"),
		InstanceType:   os.Getenv("IMAGO_AWS_INSTANCE_TYPE"),
		Endpoint:       os.Getenv("IMAGO_AWS_ENDPOINT"),
		Listeners:      map[string]string{},
	}
	var errs []error // each names its variable (not contract.FieldErrors, which say "invalid spec")
	if v := os.Getenv("IMAGO_AWS_PORT"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("IMAGO_AWS_PORT: %q is not a port number", v))
		}
		c.Port = port
	}
	if v := os.Getenv("IMAGO_AWS_DEREGISTRATION_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("IMAGO_AWS_DEREGISTRATION_DELAY: %q is not a duration such as 30s", v))
		}
		c.DeregistrationDelay = d
	}
	for _, kv := range split("IMAGO_AWS_LISTENERS") {
		key, arn, ok := strings.Cut(kv, "=")
		if !ok || !strings.Contains(key, "/") || arn == "" {
			errs = append(errs, fmt.Errorf("IMAGO_AWS_LISTENERS: %q: want ENV/SERVICE=LISTENER_ARN", kv))
			continue
		}
		c.Listeners[strings.TrimSpace(key)] = strings.TrimSpace(arn)
	}
	return c, errors.Join(errs...)
}

// ProviderURLEnv is the setting that names the rollouts' provider by URL.
const ProviderURLEnv = "IMAGO_PROVIDER_URL"

// providerURL returns the URL of the rollouts' provider and the setting it came
// from: ProviderURL (IMAGO_PROVIDER_URL, --provider) when set, else the older
// IMAGO_PROVIDER name (local:// or aws://), local:// when neither is set. The
// mux opens it: the registered drivers, where a local URL starts from the
// worker's own local settings, and an aws URL from the IMAGO_AWS_* settings
// (or c.AWS).
func (c Config) providerURL(localBase local.Config) (setting, rawURL string, mux *provider.URLMux, err error) {
	mux = provider.DefaultURLMux().With(ProviderLocal, &local.URLOpener{Base: localBase})
	// qemu:// is the local driver booting VMs: it starts from the same settings.
	mux = mux.With(qemu.Scheme, &qemu.URLOpener{Base: qemu.Config{Local: localBase}})
	// libvirt:// runs VMs as libvirt domains; its routers are the local driver's.
	lv := &libvirt.URLOpener{Base: libvirt.Config{Local: localBase}}
	mux = mux.With(libvirt.Scheme, lv).With(libvirt.SchemeSSH, lv)
	awsBase := func(setting string) error {
		if c.AWS != nil {
			mux = mux.With(ProviderAWS, &aws.URLOpener{Base: *c.AWS})
			return nil
		}
		fromEnv, err := awsConfigFromEnv()
		if err != nil {
			return fmt.Errorf("%s: %w", setting, err)
		}
		mux = mux.With(ProviderAWS, &aws.URLOpener{Base: fromEnv})
		return nil
	}
	if c.ProviderURL != "" {
		setting = c.ProviderURLSetting
		if setting == "" {
			setting = ProviderURLEnv
		}
		u, perr := url.Parse(c.ProviderURL)
		if perr == nil && c.Provider != "" && u.Scheme != "" && c.Provider != u.Scheme {
			return "", "", nil, fmt.Errorf("%s=%s and IMAGO_PROVIDER=%s name different providers; unset IMAGO_PROVIDER (%s replaces it)",
				setting, u.Redacted(), c.Provider, ProviderURLEnv)
		}
		if perr == nil && u.Scheme == ProviderAWS {
			if err := awsBase(setting + " (IMAGO_AWS_* fill what the URL leaves out)"); err != nil {
				return "", "", nil, err
			}
		}
		return setting, c.ProviderURL, mux, nil
	}
	switch c.Provider {
	case "", ProviderLocal:
		return "IMAGO_PROVIDER", ProviderLocal + "://", mux, nil
	case ProviderAWS:
		if err := awsBase("IMAGO_PROVIDER=aws"); err != nil {
			return "", "", nil, err
		}
		return "IMAGO_PROVIDER=aws (IMAGO_AWS_*)", ProviderAWS + "://", mux, nil
	}
	// IMAGO_PROVIDER, the older setting, names aws or local; other drivers (qemu) only by URL.
	return "", "", nil, fmt.Errorf("IMAGO_PROVIDER=%q is not a provider imago knows; use %s or %s, or name one by URL with %s",
		c.Provider, ProviderAWS, ProviderLocal, ProviderURLEnv)
}

// openProvider opens the rollouts' provider (see providerURL); its errors name
// the setting that is wrong.
func openProvider(ctx context.Context, c Config, localBase local.Config) (*provider.Provider, error) {
	setting, raw, mux, err := c.providerURL(localBase)
	if err != nil {
		return nil, err
	}
	p, err := mux.Open(ctx, raw, provider.OpenEnv{Home: c.Home, Images: localBase.Images})
	if err != nil {
		if strings.HasPrefix(raw, ProviderAWS+":") {
			return nil, fmt.Errorf("%s: %w (see docs/aws.md)", setting, err)
		}
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	return p, nil
}
