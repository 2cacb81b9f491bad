package app

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/aws/awsfake"
	"github.com/imago/imago/internal/provider/local"
	"github.com/imago/imago/internal/spec"
)

// A worker with IMAGO_PROVIDER_URL=aws://… (here against the in-test fake of the AWS
// APIs: there is no AWS on this machine) runs the same reaper: it finds the Auto
// Scaling group a crashed rollout left behind, and the launch template and
// target group of a provision that died before it made its group, and deletes
// them with apply.
func TestReaperOnAnAWSWorkerWithFakeAWS(t *testing.T) {
	fake := awsfake.New("eu-west-1")
	t.Cleanup(fake.Close)
	fake.SetTimeUnit(5 * time.Millisecond)
	ami, listener := fake.AddImage(), fake.AddListener()
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.cfg
	q := url.Values{"vpc": {"vpc-0abc12345678def01"}, "subnets": {fake.AddSubnet("eu-west-1a")}, "instanceType": {"t3.small"},
		"port": {"8080"}, "deregistrationDelay": {"1s"}, "listeners": {"test/hello=" + listener}, "endpoint": {fake.URL()}}
	cfg.ProviderURL = "aws://eu-west-1?" + q.Encode()
	// What a URL does not carry: credentials, and the test's short timings.
	cfg.AWS = &aws.Config{
		RetryMaxBackoff: 2 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKEFAKEFAKE", "fake-secret", ""),
	}
	deps, err := OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	require.Equal(t, ProviderAWS, deps.Provider.Name())
	deps.Activities.Temporal = e.client
	e.ts.NewWorker(contract.TaskQueue, func(r worker.Registry) { Register(r, deps.Activities) })

	_, err = deps.Provider.Provision(ctx, contract.ProvisionRequest{Token: "t", Service: "hello", Environment: "test", ImageID: ami, Size: 1, Provider: ProviderLocal})
	assert.Equal(t, provider.InvalidArgument, provider.ErrorCode(err))
	assert.ErrorContains(t, err, `the spec asks for provider "local", but this worker runs "aws"; run a worker with IMAGO_PROVIDER_URL=local://…`)

	orphan, err := deps.Provider.Provision(ctx, contract.ProvisionRequest{Token: "left-behind", Service: "hello", Environment: "test", ImageID: ami, Size: 2})
	require.NoError(t, err)
	// A provision whose group AWS never made (every attempt answered 500).
	fake.Fail("CreateAutoScalingGroup", 3, 500, "InternalFailure", "fake")
	_, err = deps.Provider.Provision(ctx, contract.ProvisionRequest{Token: "died-early", Service: "hello", Environment: "test", ImageID: ami, Size: 2})
	require.Error(t, err)
	half := aws.FleetID("died-early")

	dry := e.reap(false)
	assert.Equal(t, "aws", dry.Found.Provider)
	var found []string
	for _, o := range dry.Found.Orphans {
		found = append(found, o.FleetID)
	}
	assert.ElementsMatch(t, []string{orphan.ID, half}, found, "%+v", dry.Found)

	applied := e.reap(true)
	assert.ElementsMatch(t, []string{orphan.ID, half}, applied.Terminated, "%+v", applied)
	assert.True(t, slices.Contains(fake.Actions(), "DeleteAutoScalingGroup"), "%v", fake.Actions())
	fleets, err := deps.Provider.ListFleets(ctx, provider.Filter{})
	require.NoError(t, err)
	assert.Empty(t, fleets)
	assert.Empty(t, fake.Resources(), "what the reaper left on AWS")
}

func TestAWSSettingsFromTheEnvironment(t *testing.T) {
	t.Setenv("IMAGO_AWS_REGION", "eu-west-1")
	t.Setenv("IMAGO_AWS_SUBNETS", "subnet-a, subnet-b")
	t.Setenv("IMAGO_AWS_LISTENERS", "prod/web=arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/x/1/2,staging/web=arn:y")
	t.Setenv("IMAGO_AWS_PORT", "8080")
	c, err := awsConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, []string{"subnet-a", "subnet-b"}, c.Subnets)
	assert.Equal(t, "arn:y", c.Listeners["staging/web"])
	assert.Equal(t, 8080, c.Port)

	t.Setenv("IMAGO_AWS_LISTENERS", "web")
	t.Setenv("IMAGO_AWS_PORT", "http")
	_, err = awsConfigFromEnv()
	assert.ErrorContains(t, err, `IMAGO_AWS_PORT: "http" is not a port number`)
	assert.ErrorContains(t, err, `IMAGO_AWS_LISTENERS: "web": want ENV/SERVICE=LISTENER_ARN`)

	_, err = OpenDeps(context.Background(), Config{Home: t.TempDir(), Provider: "gcp"})
	assert.ErrorContains(t, err, `IMAGO_PROVIDER="gcp" is not a provider imago knows; use aws or local, or name one by URL with IMAGO_PROVIDER_URL`)
}

// A spec may name the providers whose drivers are registered (a new driver is
// one file that registers itself, and a blank import).
func TestSpecProvidersAreTheRegisteredDrivers(t *testing.T) {
	r := spec.Rollout{Rollout: contract.Rollout{Service: "web", Provider: "gcp", Image: contract.ImageRef{ID: "img-3f2a1c9d0b7e"}}}
	assert.EqualError(t, r.Normalize(), "invalid spec:\n  provider: \"gcp\" is not a provider imago knows; use aws or libvirt or local or qemu")
	r = spec.Rollout{Rollout: contract.Rollout{Service: "web", Provider: "aws", Image: contract.ImageRef{ID: "img-3f2a1c9d0b7e"}}}
	assert.NoError(t, r.Normalize())
}

// The provider URL names the driver and its settings; a bad one is refused
// with an error that names the setting, and nothing is opened.
func TestProviderURLSetting(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	open := func(c Config) (*Deps, error) {
		c.Home = home
		return OpenDeps(ctx, c)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{ProviderURL: "gcp://my-project/europe-west1-b"}, "IMAGO_PROVIDER_URL: gcp:// is not a provider imago knows; use aws://… or libvirt://… or libvirt+ssh://… or local://… or qemu://…"},
		{Config{ProviderURL: "local"}, `IMAGO_PROVIDER_URL: "local" has no scheme: write a provider URL such as aws://… or libvirt://… or libvirt+ssh://… or local://… or qemu://…`},
		{Config{ProviderURL: "local://?hme=/srv", ProviderURLSetting: "--provider"}, "--provider: local provider: unknown query parameter hme; known: home, sim"},
		{Config{ProviderURL: "local://?home=relative"}, `IMAGO_PROVIDER_URL: local provider: query parameter home: "relative" is not an absolute path`},
		{Config{ProviderURL: "local://somehost/"}, `IMAGO_PROVIDER_URL: local provider: "local://somehost/" has a host or path; write local://`},
		{Config{ProviderURL: "aws://eu-west-1?vpc=vpc-1&port=http"}, `IMAGO_PROVIDER_URL: aws provider: query parameter port: "http" is not a whole number (see docs/aws.md)`},
		{Config{ProviderURL: "aws://eu-west-1?subnets=subnet-0abc12345678def01"}, `IMAGO_PROVIDER_URL: aws provider: vpc "" is not a VPC ID`},
		{Config{ProviderURL: "libvirt:///system?memory=12"}, `IMAGO_PROVIDER_URL: libvirt provider: query parameter memory: "12": want megabytes, 64 to 65536`},
		{Config{ProviderURL: "aws://eu-west-1", Provider: "local"}, "IMAGO_PROVIDER_URL=aws://eu-west-1 and IMAGO_PROVIDER=local name different providers; unset IMAGO_PROVIDER (IMAGO_PROVIDER_URL replaces it)"},
	} {
		_, err := open(tc.c)
		assert.ErrorContains(t, err, tc.want, "%+v", tc.c)
	}

	// local:// and IMAGO_PROVIDER=local are the same local driver on the
	// worker's home, which bake tests share; ?home= is another one.
	for _, c := range []Config{{}, {Provider: "local"}, {ProviderURL: "local://"}} {
		deps, err := open(c)
		require.NoError(t, err)
		assert.Equal(t, "local", deps.Provider.Name())
		assert.Same(t, deps.Local, deps.Provider.Driver(), "%+v", c)
		assert.Nil(t, deps.Activities.Local, "bake tests use the rollouts' local driver")
		assert.Equal(t, "weights, resize, fleetMetrics, headerRoutes, stickiness, mirror", deps.Provider.Capabilities().String())
		require.NoError(t, deps.Close())
	}
	// The older settings: IMAGO_PROVIDER=aws with IMAGO_AWS_*, which also fill
	// what an aws URL leaves out.
	fake := awsfake.New("eu-west-1")
	t.Cleanup(fake.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKEFAKEFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("IMAGO_AWS_REGION", "eu-west-1")
	t.Setenv("IMAGO_AWS_VPC", "vpc-0abc12345678def01")
	t.Setenv("IMAGO_AWS_SUBNETS", fake.AddSubnet("eu-west-1a"))
	t.Setenv("IMAGO_AWS_INSTANCE_TYPE", "t3.small")
	t.Setenv("IMAGO_AWS_ENDPOINT", fake.URL())
	for _, c := range []Config{{Provider: "aws"}, {ProviderURL: "aws://eu-west-1?instanceType=t3.large"}} {
		deps, err := open(c)
		require.NoError(t, err, "%+v", c)
		assert.Equal(t, "aws", deps.Provider.Name())
		assert.Equal(t, "weights, headerRoutes, stickiness", deps.Provider.Capabilities().String())
		assert.NotNil(t, deps.Activities.Local, "bake tests boot on a local driver of their own")
		require.NoError(t, deps.Close())
	}
	t.Setenv("IMAGO_AWS_PORT", "http")
	_, err := open(Config{ProviderURL: "aws://eu-west-1"})
	assert.ErrorContains(t, err, `IMAGO_PROVIDER_URL (IMAGO_AWS_* fill what the URL leaves out): IMAGO_AWS_PORT: "http" is not a port number`)

	other := t.TempDir()
	deps, err := open(Config{ProviderURL: "local://?home=" + other})
	require.NoError(t, err)
	assert.Equal(t, other, deps.Provider.Driver().(*local.Driver).Home())
	assert.Equal(t, home, deps.Local.Home(), "bake tests boot on the worker's own home")
	assert.NotNil(t, deps.Activities.Local)
	require.NoError(t, deps.Close())
	assert.DirExists(t, filepath.Join(other, "fleets"))
}
