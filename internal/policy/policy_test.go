package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

// TestDenyRules: NAME denies any version, NAME@VERSION that version, and
// NAME@<VERSION the versions below it, compared as versions (Go modules'
// v-prefixed semver and Debian's revisions alike); a version that cannot be
// compared is denied (fail closed).
func TestDenyRules(t *testing.T) {
	for _, c := range []struct {
		rule, name, version string
		denied              bool
	}{
		{"openssl", "openssl", "3.0.7", true},
		{"openssl", "openssl", "", true},
		{"openssl", "libssl3", "3.0.2", false},
		{"openssl@3.0.2", "openssl", "3.0.2", true},
		{"openssl@3.0.2", "openssl", "3.0.3", false},
		{"golang.org/x/net@v0.17.0", "golang.org/x/net", "v0.17.0", true},
		{"golang.org/x/net@0.17.0", "golang.org/x/net", "v0.17.0", true},
		{"golang.org/x/net@<v0.23.0", "golang.org/x/net", "v0.17.0", true},
		{"golang.org/x/net@<v0.23.0", "golang.org/x/net", "v0.23.0", false},
		{"golang.org/x/net@<v0.23.0", "golang.org/x/net", "v0.100.0", false},
		{"golang.org/x/net@<v0.23.0", "golang.org/x/net", "v0.0.0-20231010000000-abcdef123456", true},
		{"libssl3@<3.0.7", "libssl3", "3.0.2-0ubuntu1.10", true},
		{"libssl3@<3.0.7", "libssl3", "3.0.11-1~deb12u2", false},
		{"libssl3@<3.0.7", "libssl3", "(devel)", true},
		{"@scope/pkg", "@scope/pkg", "1.0.0", true},
		{"@scope/pkg@<2", "@scope/pkg", "1.9.9", true},
	} {
		d, err := ParseDeny(c.rule)
		require.NoError(t, err, c.rule)
		assert.Equal(t, c.rule, d.String())
		got, why := d.Match(c.name, c.version)
		assert.Equal(t, c.denied, got, "%s against %s %s (%s)", c.rule, c.name, c.version, why)
	}
	for _, bad := range []string{"", "openssl@", "openssl@<", "openssl@<three", "open ssl", "openssl@>=3"} {
		_, err := ParseDeny(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func publicKeyPEM(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestCheckNamesTheField: each bad part of a policy is one error naming its
// field (the API's) and its flag (the CLI's).
func TestCheckNamesTheField(t *testing.T) {
	key := publicKeyPEM(t)
	assert.Empty(t, Check(contract.Policy{Environment: "prod", RequireProvenance: true, ProvenanceKey: key, DenyPackages: []string{"a@<1"}, MaxAge: contract.Duration(time.Hour)}))
	for field, p := range map[string]contract.Policy{
		"requireProvenance": {},
		"maxAge":            {MaxAge: -1},
		"denyPackages[1]":   {DenyPackages: []string{"ok", "bad@<x y"}},
		"provenanceKey":     {RequireProvenance: true, ProvenanceKey: "not a key"},
	} {
		es := Check(p)
		require.Len(t, es, 1, "%s: %v", field, es)
		assert.Equal(t, field, es[0].Field)
	}
	es := Check(contract.Policy{RequireSBOM: true, ProvenanceKey: key})
	require.Len(t, es, 1)
	assert.Equal(t, "--provenance-key needs --require-provenance", es[0].Msg)
}

type keyChecker struct{ signedBy string }

func (k keyChecker) Check(_ context.Context, img contract.Image, key string) error {
	if key != "" && key != k.signedBy {
		return fmt.Errorf("the provenance of image %s is signed by another key", img.ID)
	}
	return nil
}

var errNone = errors.New("not found")

func bom(comps ...cdx.Component) *cdx.BOM {
	b := cdx.NewBOM()
	b.Components = &comps
	return b
}

// TestEvaluate: a compliant image passes; a refusal names the policy, the
// image and every rule broken; no SBOM fails both --require-sbom and a deny
// list; reading the SBOM failing otherwise is not a refusal (it retries).
func TestEvaluate(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	img := contract.Image{ID: "img-1", Created: now.Add(-100 * 24 * time.Hour)}
	sbom := bom(
		cdx.Component{Type: cdx.ComponentTypeFile, Name: "hello"},
		cdx.Component{Type: cdx.ComponentTypeLibrary, Name: "golang.org/x/net", Version: "v0.17.0"},
		cdx.Component{Type: cdx.ComponentTypeLibrary, Name: "libssl3", Version: "3.0.11-1~deb12u2"},
	)
	in := Inputs{SBOM: func(context.Context) (*cdx.BOM, error) { return sbom, nil }, NotFound: errNone, Now: now, Provenance: keyChecker{signedBy: "K1"}}
	p := contract.Policy{Environment: "prod", Seq: 2, RequireSBOM: true, DenyPackages: []string{"libssl3@<3.0.7", "hello"}, MaxAge: contract.Duration(120 * 24 * time.Hour)}
	require.NoError(t, Evaluate(ctx, p, img, in), "compliant (files are not packages)")

	p.DenyPackages = append(p.DenyPackages, "golang.org/x/net@<v0.23.0")
	p.MaxAge = contract.Duration(90 * 24 * time.Hour)
	p.RequireProvenance, p.ProvenanceKey = true, "K2"
	err := Evaluate(ctx, p, img, in)
	var r *Refusal
	require.ErrorAs(t, err, &r)
	assert.Equal(t, "policy of prod#2 refuses image img-1: "+
		"--deny-package golang.org/x/net@<v0.23.0: the image has golang.org/x/net v0.17.0, below v0.23.0; "+
		"--max-age 90d: image img-1 was created 2026-08-26T12:00:00Z, 100 days ago; "+
		"--require-provenance: the provenance of image img-1 is signed by another key "+
		"(see the policy with: imago policy show prod)", err.Error())

	in.SBOM = func(context.Context) (*cdx.BOM, error) {
		return nil, fmt.Errorf("image img-1 has no SBOM: %w", errNone)
	}
	err = Evaluate(ctx, contract.Policy{Environment: "prod", Seq: 1, DenyPackages: []string{"libssl3"}}, img, in)
	assert.EqualError(t, err, "policy of prod#1 refuses image img-1: --deny-package: image img-1 has no SBOM to check its packages against (a deny list fails closed): image img-1 has no SBOM: not found (see the policy with: imago policy show prod)")
	err = Evaluate(ctx, contract.Policy{Environment: "prod", Seq: 1, RequireSBOM: true}, img, in)
	assert.EqualError(t, err, "policy of prod#1 refuses image img-1: --require-sbom: image img-1 has no SBOM: not found (see the policy with: imago policy show prod)")

	in.SBOM = func(context.Context) (*cdx.BOM, error) { return nil, errors.New("bucket unavailable") }
	err = Evaluate(ctx, contract.Policy{Environment: "prod", Seq: 1, RequireSBOM: true}, img, in)
	require.Error(t, err)
	assert.False(t, errors.As(err, &r), "a failed read is not a refusal: %v", err)

	err = Evaluate(ctx, contract.Policy{Environment: "prod", Seq: 3, RequireProvenance: true}, img, Inputs{Now: now})
	assert.EqualError(t, err, "policy of prod#3 refuses image img-1: --require-provenance: image img-1 has no signed provenance (see the policy with: imago policy show prod)")
}
