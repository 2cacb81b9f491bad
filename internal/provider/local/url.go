package local

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/imago/imago/internal/provider"
)

// Scheme is the local driver's provider URL scheme.
const Scheme = "local"

func init() { provider.Register(Scheme, &URLOpener{}) }

// URLOpener opens local drivers from URLs:
//
//	local://                                      on the worker's IMAGO_HOME
//	local://?home=/srv/imago                      on another state directory
//	local://?sim=/usr/local/bin/imago-sim-host    sim hosts run by that command (default $IMAGO_SIM_COMMAND, else the worker)
//
// The URL has no host or path: one local driver serves the machine it runs on.
type URLOpener struct {
	// Base is the configuration the URL's parameters change; its Home and
	// Images default to the OpenEnv's.
	Base Config
}

// OpenDriverURL implements provider.URLOpener.
func (o *URLOpener) OpenDriverURL(ctx context.Context, u *url.URL, env provider.OpenEnv) (provider.Driver, error) {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return nil, fmt.Errorf("local provider: %q has a host or path; write local:// (options as query parameters: ?home=DIR&sim=COMMAND)", u.Redacted())
	}
	cfg := o.Base.WithEnv(env)
	q := provider.NewURLParams(u)
	if h := q.String("home"); h != "" {
		if !filepath.IsAbs(h) {
			q.Fail("home", "%q is not an absolute path", h)
		}
		cfg.Home = h
	}
	if s := q.String("sim"); s != "" {
		if !filepath.IsAbs(s) {
			q.Fail("sim", "%q is not an absolute path to the sim host command", s)
		}
		cfg.SimCommand = []string{s}
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	return Open(cfg)
}

// Capabilities implements provider.CapableDriver: the local router splits
// traffic by weight and counts requests per fleet; fleets resize in place.
func (d *Driver) Capabilities() provider.Capabilities {
	return provider.CapabilitiesOf(provider.CapWeights, provider.CapResize, provider.CapFleetMetrics,
		provider.CapHeaderRoutes, provider.CapStickiness, provider.CapMirror)
}
