package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/server/temporaltest"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/workflows"
)

// imago image revoke --cascade of a base revokes what was built on it and
// starts a campaign that rebuilds those services on the base channel's
// current image, its rings from --campaign FILE; a bad file is refused before
// anything is revoked; a channel still on a revoked base starts none.
func TestImageRevokeCascadeStartsARebuildCampaign(t *testing.T) {
	home := t.TempDir()
	t.Setenv("IMAGO_HOME", home)
	t.Setenv("IMAGO_CATALOG_URL", "")
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	t.Setenv("TEMPORAL_ADDRESS", ts.GetFrontendHostPort())
	t.Setenv("TEMPORAL_NAMESPACE", ts.GetDefaultNamespace())
	ctx := context.Background()
	_, err := ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ts.GetDefaultNamespace(), SearchAttributes: workflows.SearchAttributes(),
	})
	require.NoError(t, err)
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	defer cat.Close()
	const base1, api1, web1, base2, api2, leaf = "img-000000000c01", "img-000000000a01", "img-000000000b01", "img-000000000c02", "img-000000000a02", "img-000000000d01"
	for _, img := range []contract.Image{
		{ID: base1, Service: "base", Builder: "import", Entrypoint: []string{"./base"}},
		{ID: api1, Service: "api", Builder: "imago-local", Entrypoint: []string{"./api"}, Parent: base1},
		{ID: web1, Service: "web", Builder: "imago-local", Entrypoint: []string{"./web"}, Parent: base1},
		{ID: base2, Service: "base", Builder: "import", Entrypoint: []string{"./base", "-v2"}},
		{ID: api2, Service: "api", Builder: "imago-local", Entrypoint: []string{"./api", "-v2"}, Parent: base2},
		{ID: leaf, Service: "tool", Builder: "import", Entrypoint: []string{"./tool"}},
	} {
		_, err := cat.Publish(ctx, img)
		require.NoError(t, err)
	}
	for _, id := range []string{base1, base2} {
		_, err = cat.MoveChannel(ctx, "base", "stable", id, catalog.MoveOptions{By: "alice"})
		require.NoError(t, err)
	}
	write := func(name, body string) string {
		f := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(f, []byte(body), 0o600))
		return f
	}

	// A campaign file that selects its own services is refused; nothing is revoked.
	bad := write("bad.yaml", "services: [api]\nrings:\n  - {environments: [staging]}\n")
	_, code, err := run(t, "image", "revoke", base1, "--reason", "CVE-2026-1234", "--cascade", "--campaign", bad)
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), "leave out services (the revoke sets them)")
	img, err := cat.Get(ctx, base1)
	require.NoError(t, err)
	assert.Nil(t, img.Revoked, "nothing is revoked")

	rings := write("rings.yaml", "rings:\n  - {environments: [staging], parallel: 2}\n  - {environments: [prod], approval: {required: true}}\nerrorBudget: {maxFailed: 1}\n")
	out, code, err := run(t, "image", "revoke", base1, "--reason", "CVE-2026-1234", "--cascade", "--campaign", rings)
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "revoked "+base1+", ")
	assert.Contains(t, out, api1)
	assert.Contains(t, out, web1)
	assert.Contains(t, out, "started campaign cascade-"+base1+": rebuilds every service built on base/stable and rolls it out\n")

	// The campaign's input: the file's rings and budget, every service on base/stable rebuilt.
	c, err := app.ConfigFromEnv().Dial(ctx)
	require.NoError(t, err)
	defer c.Close()
	it := c.GetWorkflowHistory(ctx, contract.CampaignWorkflowID("cascade-"+base1), "", false, 0)
	ev, err := it.Next()
	require.NoError(t, err)
	dc, _, err := app.ConfigFromEnv().Converters(ctx)
	require.NoError(t, err)
	var in contract.CampaignInput
	require.NoError(t, dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in))
	assert.Equal(t, &contract.CampaignSelect{Base: &contract.ImageRef{Service: "base", Channel: "stable"}}, in.Spec.Select)
	assert.True(t, in.Spec.Rebuilds())
	require.Len(t, in.Spec.Rings, 2)
	assert.Equal(t, []string{"prod"}, in.Spec.Rings[1].Environments)
	assert.True(t, in.Spec.Rings[1].Approval.Required)
	assert.Equal(t, 1, in.Spec.ErrorBudget.MaxFailed)

	// base/stable names base2: revoked, there is nothing to rebuild on.
	out, code, err = run(t, "image", "revoke", base2, "--reason", "CVE-2026-9999", "--cascade", "--campaign", rings)
	require.Error(t, err)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "revoked "+base2+", "+api2)
	assert.Contains(t, err.Error(), "no rebuild campaign started: base/stable still names "+base2+", which is revoked: publish the fixed base on it first")

	// Without a campaign file (none in IMAGO_HOME) a cascade revokes only, and says how to rebuild.
	out, _, err = run(t, "image", "revoke", leaf, "--reason", "leaked key", "--cascade")
	require.NoError(t, err, out)
	assert.Contains(t, out, "no rebuild campaign started: pass --campaign FILE or write "+filepath.Join(home, "cascade.yaml"))
	// With one, a revoked image nothing is built on starts none either.
	require.NoError(t, os.WriteFile(filepath.Join(home, "cascade.yaml"), []byte("rings:\n  - {environments: [staging]}\n"), 0o600))
	out, _, err = run(t, "image", "revoke", web1, "--reason", "again", "--cascade")
	require.NoError(t, err, out)
	assert.Contains(t, out, "no rebuild campaign started: no image of another service is built on "+web1)
}
