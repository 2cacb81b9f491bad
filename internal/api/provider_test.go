package api

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/aws/awsfake"
)

// POST /v1/rollouts of a strategy the worker's provider cannot run (a rolling
// rollout on a worker of the aws driver, against the in-test fake of AWS) is
// refused with 400 and the field, spec.strategy.type, and nothing is made.
func TestStartRolloutRefusesAStrategyTheWorkersProviderCannotRun(t *testing.T) {
	fake := awsfake.New("eu-west-1")
	t.Cleanup(fake.Close)
	q := url.Values{"vpc": {"vpc-0abc12345678def01"}, "subnets": {fake.AddSubnet("eu-west-1a")}, "instanceType": {"t3.small"}, "endpoint": {fake.URL()}}
	e := newEnv(t, envOptions{temporal: true, worker: func(c *app.Config) {
		c.ProviderURL = "aws://eu-west-1?" + q.Encode()
		c.AWS = &aws.Config{Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKEFAKEFAKE", "fake-secret", ""), RetryMaxBackoff: time.Millisecond}
	}})
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello"), []byte("#!/bin/sh\n"), 0o755))
	img, err := e.cat.Import(context.Background(), dir, "hello", []string{"./hello"}, nil)
	require.NoError(t, err)

	body := map[string]any{"spec": map[string]any{
		"service": "hello", "environment": "test", "provider": "aws", "image": map[string]any{"id": img.ID},
		"strategy": map[string]any{"type": "rolling", "waves": "25%"},
	}}
	p := e.post("/v1/rollouts", body).problem(t, http.StatusBadRequest)
	require.Equal(t, []string{"spec.strategy.type"}, fields(p))
	assert.Equal(t, "spec.strategy.type: rolling needs a provider with fleets that grow and shrink in place (resize), which the worker's provider aws does not have (it has: weights, headerRoutes, stickiness); use strategy blueGreen, or a worker whose provider has it",
		p.Errors[0].Error())
	assert.Empty(t, fake.Resources(), "nothing was made on AWS")
}
