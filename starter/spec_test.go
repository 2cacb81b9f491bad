package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/imago/imago/internal/provider/aws/awsfake"
	"github.com/imago/imago/internal/rollouts"
)

// A rollout spec with every bad input a new user met (an explicit fleet size of
// 0, a pause and a soak that are not durations, a Prometheus address without a
// scheme, an analysis without its address) is refused against a running imago
// with every problem named by field and line, in one error, and nothing starts:
// no workflow, no router.
func TestRolloutStartRefusesEveryBadInputOfAFileAndStartsNothing(t *testing.T) {
	e := newImagoEnv(t)
	img := e.simImage("hello", "v1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	listen := ln.Addr().String()
	require.NoError(t, ln.Close())
	f := filepath.Join(t.TempDir(), "rollout.yaml")
	require.NoError(t, os.WriteFile(f, fmt.Appendf(nil, `service: hello
listen: %s
fleet: {size: 0}
strategy: {type: canary, steps: [{setWeight: 10}, {pause: 20}, {analysis: latency}, {analysis: errors}]}
analyses:
  latency: {provider: prometheus, address: 127.0.0.1:9090, query: up, max: 0.3}
  errors:
    provider: prometheus
    query: rate(errors[1m])
    max: 0.05
soak: forever
`, listen), 0o600))

	_, code, err := run(t, "rollout", "start", "-f", f, "--image", img)
	require.Error(t, err)
	assert.Equal(t, 2, code, "bad input: %v", err)
	assert.Equal(t, f+`: invalid spec:
  fleet.size: line 3: must be between 1 and 10000, got 0
  strategy.steps[1].pause: line 4: 20 has no unit; write 20s, 20m or 20h
  analyses.latency.address: line 6: "127.0.0.1:9090" has no scheme; write http://127.0.0.1:9090
  analyses.errors.address: line 7: (the Prometheus base URL) is required with provider prometheus
  soak: line 11: "forever" is not a duration; write it as 30s, 5m or 1h30m`, err.Error())

	_, err = e.client.DescribeWorkflowExecution(context.Background(), "rollout/dev/hello", "")
	var notFound *serviceerror.NotFound
	assert.ErrorAs(t, err, &notFound, "no rollout workflow was started")
	if c, err := net.Dial("tcp", listen); err == nil {
		c.Close()
		t.Errorf("a router serves on %s: something was started", listen)
	}
}

// A strategy the worker's provider cannot run (here a worker on the aws driver,
// against the in-test fake of AWS: no fleet resizing, no router metrics) is
// refused at start by field and line, exit status 2, and nothing is made: the
// rollout's run ends at its first step, before it resolves the image.
func TestRolloutStartRefusesAStrategyTheWorkersProviderCannotRun(t *testing.T) {
	fake := awsfake.New("eu-west-1")
	t.Cleanup(fake.Close)
	q := url.Values{"vpc": {"vpc-0abc12345678def01"}, "subnets": {fake.AddSubnet("eu-west-1a")}, "instanceType": {"t3.small"}, "endpoint": {fake.URL()}}
	t.Setenv("IMAGO_PROVIDER_URL", "aws://eu-west-1?"+q.Encode())
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKEFAKEFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	e := newImagoEnv(t)
	require.Equal(t, "aws", e.deps.Provider.Name())
	img := e.simImage("hello", "v1")
	f := filepath.Join(t.TempDir(), "rollout.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`service: hello
provider: aws
image: {id: `+img+`}
strategy:
  type: rolling
  waves: 25%
verify: {analysis: errors}
analyses:
  errors: {provider: router, max: 0.05}
`), 0o600))

	_, code, err := run(t, "rollout", "start", "-f", f)
	require.Error(t, err)
	assert.Equal(t, 2, code, "bad input: %v", err)
	assert.Contains(t, err.Error(), f+`: invalid spec:
  strategy.type: line 5: rolling needs a provider with fleets that grow and shrink in place (resize), which the worker's provider aws does not have (it has: weights, headerRoutes, stickiness); use strategy blueGreen, or a worker whose provider has it
  analyses.errors.provider: line 9: a router analysis needs a provider with per-fleet request metrics from its router (fleetMetrics), which the worker's provider aws does not have (it has: weights, headerRoutes, stickiness); measure with a prometheus or http analysis instead`)

	runErr := e.client.GetWorkflow(context.Background(), "rollout/dev/hello", "").Get(context.Background(), nil)
	require.Error(t, runErr, "the run ended at its check")
	assert.Contains(t, rollouts.Reason(runErr), "failed while checking the spec against the worker's provider")
	assert.Contains(t, rollouts.Reason(runErr), "nothing was changed")
	assert.Empty(t, fake.Resources(), "nothing was made on AWS")
	assert.NotContains(t, fake.Actions(), "DescribeImages", "the image was not even resolved")
}
