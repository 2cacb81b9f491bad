package ociimage

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/ociimage/skopeo"
)

// Push to go-containerregistry's own registry (pkg/registry, a real
// implementation of the distribution API) on a loopback port, through the
// outbound guard: refused until the guard allows 127.0.0.1, then skopeo reads
// the pushed manifest back with the digest imago computed.
func TestPushToARegistryThroughTheGuard(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the machine's

	archivePath, digest := testArchive(t, t.TempDir())
	img, err := FromArchive(archivePath, Config{ImageID: "img-0123456789ab", Service: "hello", Digest: digest, Entrypoint: []string{"./hello"}})
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)

	d, err := ParseDestination("registry://"+host+"/acme/hello:v1", "")
	require.NoError(t, err)
	err = Push(context.Background(), img, d, netguard.New(netguard.Allow{}).Client(0).Transport)
	require.ErrorIs(t, err, netguard.ErrRefused, "loopback is refused unless allowed")

	require.NoError(t, Push(context.Background(), img, d, netguard.New(netguard.MustParseAllow("127.0.0.1")).Client(0).Transport))
	ref := "docker://" + host + "/acme/hello:v1"
	ins := skopeo.Inspect(t, ref, "--tls-verify=false")
	assert.Equal(t, want.String(), ins.Digest)
	assert.Equal(t, "img-0123456789ab", ins.Labels[LabelImageID])
	assert.Equal(t, []string{"./hello"}, skopeo.InspectConfig(t, ref, "--tls-verify=false").Config.Entrypoint)
}
