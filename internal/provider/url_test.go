package provider_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/provider"
)

// stubDriver is a driver that does nothing: these tests are about opening.
type stubDriver struct {
	provider.Driver
	url  *url.URL
	home string
}

func (d *stubDriver) Close() error { return nil }

// A mux opens the driver registered for a URL's scheme with the rest of the
// URL, and says which schemes exist when a URL names none of them.
func TestURLMuxOpensByScheme(t *testing.T) {
	ctx := context.Background()
	var mux provider.URLMux
	var got *stubDriver
	opener := func(name string) provider.URLOpener {
		return provider.URLOpenerFunc(func(_ context.Context, u *url.URL, env provider.OpenEnv) (provider.Driver, error) {
			q := provider.NewURLParams(u)
			q.String("zone")
			if err := q.Err(); err != nil {
				return nil, err
			}
			got = &stubDriver{url: u, home: env.Home}
			return got, nil
		})
	}
	mux.Register("qemu", opener("qemu"))
	mux.Register("libvirt+ssh", opener("libvirt"))
	assert.Equal(t, []string{"libvirt+ssh", "qemu"}, mux.Schemes())

	p, err := mux.Open(ctx, "libvirt+ssh://admin:secret@host/system?zone=a", provider.OpenEnv{Home: "/srv/imago"})
	require.NoError(t, err)
	assert.Equal(t, "libvirt", p.Name(), "the name a spec's provider field gives is the scheme without its transport")
	assert.Equal(t, "libvirt+ssh://admin:xxxxx@host/system?zone=a", p.URL(), "the URL is shown without its password")
	assert.Equal(t, "host", got.url.Host)
	assert.Equal(t, "/srv/imago", got.home)

	_, err = mux.Open(ctx, "gcp://project/zone", provider.OpenEnv{})
	assert.EqualError(t, err, "gcp:// is not a provider imago knows; use libvirt+ssh://… or qemu://…")
	_, err = mux.Open(ctx, "qemu", provider.OpenEnv{})
	assert.EqualError(t, err, `"qemu" has no scheme: write a provider URL such as libvirt+ssh://… or qemu://…`)
	_, err = mux.Open(ctx, "qemu://%zz", provider.OpenEnv{})
	assert.ErrorContains(t, err, `"qemu://%zz" is not a URL`)
	_, err = mux.Open(ctx, "qemu://?zone=a&zones=b&cpu=2", provider.OpenEnv{})
	assert.EqualError(t, err, "unknown query parameter cpu, zones; known: zone")

	assert.PanicsWithValue(t, `provider: scheme "qemu" registered twice`, func() { mux.Register("qemu", opener("qemu")) })
	assert.Panics(t, func() { mux.Register("QEMU", opener("qemu")) })

	// With replaces one opener in a copy; the original keeps its own.
	other := mux.With("qemu", provider.URLOpenerFunc(func(context.Context, *url.URL, provider.OpenEnv) (provider.Driver, error) {
		return &stubDriver{home: "replaced"}, nil
	}))
	p, err = other.Open(ctx, "qemu://", provider.OpenEnv{})
	require.NoError(t, err)
	assert.Equal(t, "replaced", p.Driver().(*stubDriver).home)
	_, err = mux.Open(ctx, "qemu://", provider.OpenEnv{Home: "h"})
	require.NoError(t, err)
	assert.Equal(t, "h", got.home)
}

func TestURLParamsReportEveryProblem(t *testing.T) {
	u, err := url.Parse("x://?port=http&delay=forever&subnets=a,%20b&subnets=c&color=red")
	require.NoError(t, err)
	q := provider.NewURLParams(u)
	assert.Equal(t, 0, q.Int("port"))
	assert.Equal(t, int64(0), int64(q.Duration("delay")))
	assert.Equal(t, []string{"a", "b", "c"}, q.List("subnets"))
	assert.Equal(t, "", q.String("absent"))
	assert.EqualError(t, q.Err(), `query parameter port: "http" is not a whole number
query parameter delay: "forever" is not a duration such as 30s
unknown query parameter color; known: absent, delay, port, subnets`)
}
