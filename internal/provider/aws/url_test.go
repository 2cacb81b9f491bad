package aws_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/provider/aws"
)

// An aws URL carries the region as its host and the rest of the settings as
// query parameters; what it leaves out keeps the base's value.
func TestConfigFromURL(t *testing.T) {
	u, err := url.Parse("aws://eu-west-1?vpc=vpc-0abc12345678def01&subnets=subnet-0a,subnet-0b&instanceType=t3.small" +
		"&securityGroups=sg-1&port=8080&deregistrationDelay=45s&healthCheckPath=/ready&keyName=ops&instanceProfile=arn:aws:iam::1:instance-profile/web" +
		"&endpoint=https://vpce.example&listeners=prod/web=arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/lb/1/2,staging/web=arn:b")
	require.NoError(t, err)
	c, err := aws.ConfigFromURL(u, aws.Config{Region: "us-east-1", Listeners: map[string]string{"dev/web": "arn:dev"}, PollInterval: time.Second})
	require.NoError(t, err)
	assert.Equal(t, aws.Config{
		Region: "eu-west-1", VPCID: "vpc-0abc12345678def01", Subnets: []string{"subnet-0a", "subnet-0b"}, InstanceType: "t3.small",
		SecurityGroups: []string{"sg-1"}, Port: 8080, DeregistrationDelay: 45 * time.Second, HealthCheckPath: "/ready",
		KeyName: "ops", IAMInstanceProfile: "arn:aws:iam::1:instance-profile/web", Endpoint: "https://vpce.example",
		Listeners: map[string]string{
			"dev/web":     "arn:dev",
			"prod/web":    "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/lb/1/2",
			"staging/web": "arn:b",
		},
		PollInterval: time.Second,
	}, c)

	u, _ = url.Parse("aws://?listeners=web&port=x&region=eu-west-1")
	_, err = aws.ConfigFromURL(u, aws.Config{})
	assert.EqualError(t, err, `aws provider: query parameter listeners: "web": want ENV/SERVICE=LISTENER_ARN
query parameter port: "x" is not a whole number
unknown query parameter region; known: deregistrationDelay, endpoint, healthCheckPath, instanceProfile, instanceType, keyName, listeners, port, securityGroups, subnets, vpc`)
	u, _ = url.Parse("aws://AKID:secret@eu-west-1")
	_, err = aws.ConfigFromURL(u, aws.Config{})
	assert.ErrorContains(t, err, "credentials never go in the URL")
	assert.NotContains(t, err.Error(), "secret")
}
