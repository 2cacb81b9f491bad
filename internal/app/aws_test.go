package app

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/aws/awsfake"
	"github.com/imago/imago/workflows"
)

// A worker with IMAGO_PROVIDER=aws (here against the in-test fake of the AWS
// APIs: there is no AWS on this machine) runs the same reaper: it finds the Auto
// Scaling group a crashed rollout left behind and deletes it with apply.
func TestReaperOnAnAWSWorkerWithFakeAWS(t *testing.T) {
	fake := awsfake.New("eu-west-1")
	t.Cleanup(fake.Close)
	ami, listener := fake.AddImage(), fake.AddListener()
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.cfg
	cfg.Provider = ProviderAWS
	cfg.AWS = &aws.Config{
		Region: "eu-west-1", VPCID: "vpc-0abc12345678def01", Subnets: []string{"subnet-0abc12345678def01"},
		InstanceType: "t3.small", Port: 8080, DeregistrationDelay: time.Second,
		Listeners: map[string]string{"test/hello": listener}, Endpoint: fake.URL(), MaxAttempts: 1, PollInterval: 5 * time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKEFAKEFAKE", "fake-secret", ""),
	}
	deps, err := OpenDeps(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { deps.Close() })
	require.Equal(t, ProviderAWS, deps.Provider.Name())
	deps.Activities.Temporal = e.client
	e.ts.NewWorker(workflows.TaskQueue, func(r worker.Registry) { Register(r, deps.Activities) })

	_, err = deps.Provider.Provision(ctx, provider.ProvisionRequest{Token: "t", Service: "hello", Environment: "test", ImageID: ami, Size: 1, Provider: ProviderLocal})
	assert.Equal(t, provider.InvalidArgument, provider.ErrorCode(err))
	assert.ErrorContains(t, err, `the spec asks for provider "local", but this worker runs "aws"; run a worker with IMAGO_PROVIDER=local`)

	orphan, err := deps.Provider.Provision(ctx, provider.ProvisionRequest{Token: "left-behind", Service: "hello", Environment: "test", ImageID: ami, Size: 2})
	require.NoError(t, err)

	dry := e.reap(false)
	assert.Equal(t, "aws", dry.Found.Provider)
	require.Len(t, dry.Found.Orphans, 1, "%+v", dry.Found)
	assert.Equal(t, orphan.ID, dry.Found.Orphans[0].FleetID)

	applied := e.reap(true)
	assert.Equal(t, []string{orphan.ID}, applied.Terminated)
	assert.True(t, slices.Contains(fake.Actions(), "DeleteAutoScalingGroup"), "%v", fake.Actions())
	fleets, err := deps.Provider.ListFleets(ctx, provider.Filter{})
	require.NoError(t, err)
	assert.Empty(t, fleets)
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
	assert.ErrorContains(t, err, `IMAGO_PROVIDER="gcp" is not a provider imago knows; use local or aws`)
}
