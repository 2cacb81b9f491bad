package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

func TestImageSBOMThroughTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	v1 := e.importV1()

	r := e.get("/v1/images/" + v1 + "/sbom")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "application/vnd.cyclonedx+json", r.header.Get("Content-Type"))
	var bom struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct{ Type, Name, Purl string }
	}
	r.json(t, &bom)
	assert.Equal(t, "CycloneDX", bom.BOMFormat)
	var files, modules []string
	for _, c := range bom.Components {
		switch c.Type {
		case "file":
			files = append(files, c.Name)
		case "library":
			modules = append(modules, c.Name)
		}
	}
	assert.Equal(t, []string{"hello"}, files)
	assert.Contains(t, modules, "github.com/imago/imago", "the hello binary's main module")

	r = e.get("/v1/images/" + v1 + "/sbom?format=spdx")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "application/spdx+json", r.header.Get("Content-Type"))
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
	}
	r.json(t, &doc)
	assert.Equal(t, "SPDX-2.3", doc.SPDXVersion)

	p := e.get("/v1/images/"+v1+"/sbom?format=yaml").problem(t, http.StatusBadRequest)
	assert.Contains(t, p.Detail, `format: "yaml" is not an SBOM format`)
	e.get("/v1/images/img-000000000000/sbom").problem(t, http.StatusNotFound)

	_, err := e.cat.Publish(context.Background(), contract.Image{ID: "img-0000000000a1", Service: "hello", Builder: "amazon-ebs", Artifacts: map[string]string{"eu-west-1": "ami-1"}})
	require.NoError(t, err)
	p = e.get("/v1/images/img-0000000000a1/sbom").problem(t, http.StatusNotFound)
	assert.Contains(t, p.Detail, "no local archive")
}
