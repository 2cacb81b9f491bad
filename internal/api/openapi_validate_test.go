package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openAPIValidator reads the served document with an OpenAPI 3.1 library
// (pb33f/libopenapi) and makes its validator.
func openAPIValidator(t *testing.T) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(openAPI)
	require.NoError(t, err, "libopenapi reads openapi.json")
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs, "libopenapi-validator builds a model of openapi.json")
	return v
}

// validationErrors says each of errs on a line of its own, with the schema
// failures under it, so a failing test names what disagrees and where.
func validationErrors(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n- %s: %s", e.Message, e.Reason)
		if e.SpecLine > 0 {
			fmt.Fprintf(&b, " (openapi.json line %d)", e.SpecLine)
		}
		if e.HowToFix != "" {
			fmt.Fprintf(&b, "; fix: %s", e.HowToFix)
		}
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n    %s at %s (schema %s)", f.Reason, f.FieldPath, f.KeywordLocation)
		}
	}
	return b.String()
}

// The OpenAPI document is valid OpenAPI 3.1 to a validator library that knows
// the specification (its meta-schema and its rules), not only to our own checks.
func TestOpenAPIDocumentIsValidOpenAPI31(t *testing.T) {
	doc, err := libopenapi.NewDocument(openAPI)
	require.NoError(t, err)
	assert.Equal(t, "3.1.0", doc.GetVersion())
	ok, errs := openAPIValidator(t).ValidateDocument()
	assert.True(t, ok, "openapi.json is not valid OpenAPI 3.1:%s", validationErrors(errs))
}

// Live answers of a running API (a real Temporal server and worker behind it)
// validate against the document with the validator's response validation: a
// started rollout, the list, a status, a problem+json error for a bad spec, a
// 401, a 403 naming the missing scope and a 404. What a client generated from the
// document expects is what it gets.
func TestLiveResponsesMatchTheOpenAPIDocument(t *testing.T) {
	v := openAPIValidator(t)
	e := newEnv(t, envOptions{temporal: true, config: scopedTokens(t)})
	img := e.importV1()

	check := func(what, method, path string, body any, token string, wantStatus int) response {
		t.Helper()
		r := e.do(method, path, body, token)
		require.Equal(t, wantStatus, r.status, "%s: %s", what, r.body)
		req := httptest.NewRequest(method, e.url+path, nil)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp := &http.Response{StatusCode: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)), Request: req}
		ok, errs := v.ValidateHttpResponse(req, resp)
		assert.True(t, ok, "%s (%s %s, %d) does not match openapi.json:%s\nbody: %s", what, method, path, r.status, validationErrors(errs), r.body)
		return r
	}

	check("a started rollout", "POST", "/v1/rollouts", e.rolloutBody(img), testToken, http.StatusCreated)
	e.waitRollout("end", func(st rolloutStatusJSON) bool { return st.Status != "Running" })
	list := check("the list of rollouts", "GET", "/v1/rollouts?service=hello", nil, testToken, http.StatusOK)
	assert.Contains(t, string(list.body), `"rollouts": [`)
	check("a rollout's status", "GET", "/v1/rollouts/hello/test", nil, testToken, http.StatusOK)
	check("an image list", "GET", "/v1/images?service=hello", nil, testToken, http.StatusOK)

	bad := e.rolloutBody(img, func(s map[string]any) { s["fleet"] = map[string]any{"size": -1} })
	p := check("a spec with a bad field (problem+json)", "POST", "/v1/rollouts", bad, testToken, http.StatusBadRequest)
	assert.Contains(t, string(p.body), "fleet.size")
	check("no token", "GET", "/v1/rollouts", nil, "", http.StatusUnauthorized)
	f := check("a token without the scope", "POST", "/v1/rollouts", e.rolloutBody(img), readTok, http.StatusForbidden)
	assert.Contains(t, f.forbidden(t), "lacks any deploy scope")
	check("no such rollout", "GET", "/v1/rollouts/nope/test", nil, testToken, http.StatusNotFound)

	// The validator is not vacuous: the list with its array turned into a string,
	// and a status the document does not declare, are refused.
	req := httptest.NewRequest("GET", e.url+"/v1/rollouts?service=hello", nil)
	broken := bytes.Replace(list.body, []byte(`"rollouts": [`), []byte(`"rollouts": "x", "was": [`), 1)
	ok, _ := v.ValidateHttpResponse(req, &http.Response{StatusCode: http.StatusOK, Header: list.header, Body: io.NopCloser(bytes.NewReader(broken)), Request: req})
	assert.False(t, ok, "a list whose rollouts is a string validates")
	ok, _ = v.ValidateHttpResponse(req, &http.Response{StatusCode: http.StatusTeapot, Header: list.header, Body: io.NopCloser(bytes.NewReader(list.body)), Request: req})
	assert.False(t, ok, "a status the document does not declare validates")
}
