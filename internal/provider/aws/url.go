package aws

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/imago/imago/internal/provider"
)

// Scheme is the aws driver's provider URL scheme.
const Scheme = "aws"

func init() { provider.Register(Scheme, &URLOpener{}) }

// URLOpener opens aws drivers from URLs whose host is the region and whose
// query parameters are the rest of Config:
//
//	aws://eu-west-1?vpc=vpc-0abc…&subnets=subnet-0a…,subnet-0b…&instanceType=t3.small
//	    &listeners=prod/web=arn:aws:elasticloadbalancing:…,staging/web=arn:…
//	    &securityGroups=sg-…&port=8080&deregistrationDelay=30s&healthCheckPath=/healthz
//	    &keyName=…&instanceProfile=arn:aws:iam::…&endpoint=https://…
//
// Credentials are never in the URL: they come from the default chain
// (environment, shared files, instance role), or from Base.
type URLOpener struct {
	// Base is the configuration the URL changes: what a URL cannot carry
	// (Credentials, HTTPClient, retry and poll timings in tests). Its Images
	// default to the OpenEnv's.
	Base Config
}

// urlParams are the query parameters and the Config fields they set.
var urlParams = map[string]func(c *Config, q *provider.URLParams, name string){
	"vpc":                 func(c *Config, q *provider.URLParams, n string) { c.VPCID = q.String(n) },
	"subnets":             func(c *Config, q *provider.URLParams, n string) { c.Subnets = q.List(n) },
	"securityGroups":      func(c *Config, q *provider.URLParams, n string) { c.SecurityGroups = q.List(n) },
	"instanceType":        func(c *Config, q *provider.URLParams, n string) { c.InstanceType = q.String(n) },
	"keyName":             func(c *Config, q *provider.URLParams, n string) { c.KeyName = q.String(n) },
	"instanceProfile":     func(c *Config, q *provider.URLParams, n string) { c.IAMInstanceProfile = q.String(n) },
	"port":                func(c *Config, q *provider.URLParams, n string) { c.Port = q.Int(n) },
	"healthCheckPath":     func(c *Config, q *provider.URLParams, n string) { c.HealthCheckPath = q.String(n) },
	"deregistrationDelay": func(c *Config, q *provider.URLParams, n string) { c.DeregistrationDelay = q.Duration(n) },
	"endpoint":            func(c *Config, q *provider.URLParams, n string) { c.Endpoint = q.String(n) },
	"listeners": func(c *Config, q *provider.URLParams, n string) {
		for _, kv := range q.List(n) {
			key, arn, ok := strings.Cut(kv, "=")
			if !ok || !strings.Contains(key, "/") || arn == "" {
				q.Fail(n, "%q: want ENV/SERVICE=LISTENER_ARN", kv)
				continue
			}
			if c.Listeners == nil {
				c.Listeners = map[string]string{}
			}
			c.Listeners[strings.TrimSpace(key)] = strings.TrimSpace(arn)
		}
	},
}

// ConfigFromURL returns base changed by u (see URLOpener): the region from its
// host, the rest from its query parameters, present ones only. It returns
// every problem at once.
func ConfigFromURL(u *url.URL, base Config) (Config, error) {
	c := base
	if base.Listeners != nil {
		c.Listeners = make(map[string]string, len(base.Listeners))
		for k, v := range base.Listeners {
			c.Listeners[k] = v
		}
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") {
		return c, fmt.Errorf("aws provider: %q: write aws://REGION?vpc=…&subnets=…&instanceType=…&listeners=…; credentials never go in the URL", u.Redacted())
	}
	if u.Host != "" {
		c.Region = u.Host
	}
	q := provider.NewURLParams(u)
	query := u.Query()
	for _, name := range slices.Sorted(maps.Keys(urlParams)) {
		if _, ok := query[name]; ok {
			urlParams[name](&c, q, name)
		} else {
			q.String(name) // known, absent: keep base's
		}
	}
	if err := q.Err(); err != nil {
		return c, fmt.Errorf("aws provider: %w", err)
	}
	return c, nil
}

// OpenDriverURL implements provider.URLOpener.
func (o *URLOpener) OpenDriverURL(ctx context.Context, u *url.URL, env provider.OpenEnv) (provider.Driver, error) {
	c, err := ConfigFromURL(u, o.Base)
	if err != nil {
		return nil, err
	}
	if c.Images == nil && env.Images != nil {
		c.Images = env.Images
	}
	return Open(ctx, c)
}

// Capabilities implements provider.CapableDriver: the listener's weighted
// forward splits traffic by weight, its rules route by header or cookie, and
// its target-group stickiness keeps clients on a fleet (rules.go). The driver
// does not resize fleets (rolling rollouts), the load balancer's metrics are
// not read (router analyses), and an ALB cannot mirror requests.
func (d *Driver) Capabilities() provider.Capabilities {
	return provider.CapabilitiesOf(provider.CapWeights, provider.CapHeaderRoutes, provider.CapStickiness)
}
