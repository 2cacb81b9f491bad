package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/spec"
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
	var errs spec.Errors
	if v := os.Getenv("IMAGO_AWS_PORT"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, spec.FieldError{Field: "IMAGO_AWS_PORT", Msg: fmt.Sprintf("%q is not a port number", v)})
		}
		c.Port = port
	}
	if v := os.Getenv("IMAGO_AWS_DEREGISTRATION_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, spec.FieldError{Field: "IMAGO_AWS_DEREGISTRATION_DELAY", Msg: fmt.Sprintf("%q is not a duration such as 30s", v)})
		}
		c.DeregistrationDelay = d
	}
	for _, kv := range split("IMAGO_AWS_LISTENERS") {
		key, arn, ok := strings.Cut(kv, "=")
		if !ok || !strings.Contains(key, "/") || arn == "" {
			errs = append(errs, spec.FieldError{Field: "IMAGO_AWS_LISTENERS", Msg: fmt.Sprintf("%q: want ENV/SERVICE=LISTENER_ARN", kv)})
			continue
		}
		c.Listeners[strings.TrimSpace(key)] = strings.TrimSpace(arn)
	}
	if len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

// openProvider opens the rollouts' provider named by c.Provider; local is the
// local driver already open.
func openProvider(ctx context.Context, c Config, cat *catalog.Catalog, local *provider.Provider) (*provider.Provider, error) {
	switch c.Provider {
	case "", ProviderLocal:
		return local, nil
	case ProviderAWS:
		ac := c.AWS
		if ac == nil {
			fromEnv, err := awsConfigFromEnv()
			if err != nil {
				return nil, fmt.Errorf("IMAGO_PROVIDER=aws: %w", err)
			}
			ac = &fromEnv
		}
		cfg := *ac
		if cfg.Images == nil {
			cfg.Images = cat
		}
		drv, err := aws.Open(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("IMAGO_PROVIDER=aws: %w (see docs/aws.md)", err)
		}
		return provider.New(ProviderAWS, drv), nil
	}
	return nil, fmt.Errorf("IMAGO_PROVIDER=%q is not a provider imago knows; use local or aws", c.Provider)
}
