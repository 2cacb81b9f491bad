package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/imago/imago/internal/spec"
)

// The API refuses a rollout whose image names an OCI image, as the CLI does,
// naming the field.
func TestDecodeStartRolloutRefusesAnOCIImage(t *testing.T) {
	_, err := DecodeStartRollout(strings.NewReader(`{"spec": {"service": "hello", "listen": "127.0.0.1:9080",
	  "image": {"id": "img-3f2a1c9d0b7e", "oci": "oci-layout://out/hello-oci"}}}`), spec.BakeRoots{})
	p := ProblemFor(err)
	assert.Equal(t, http.StatusBadRequest, p.Status)
	assert.Contains(t, p.Detail+fieldMessages(p), "spec.image.oci: an OCI image is a bake's base only")
}
