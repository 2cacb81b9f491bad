package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/provenance"
)

// imago image provenance prints the chain (source, bake, signature state,
// channel moves, rollouts, live fleets, notes), verifies with --key, and
// prints the stored envelope with --envelope.
func TestImageProvenancePrintsTheChain(t *testing.T) {
	ctx := context.Background()
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing listens: the chain says so
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	out, _, err := run(t, "image", "import", dir, "--service", "hello", "--entrypoint", "./app.sh")
	require.NoError(t, err)
	id := strings.TrimSpace(out)

	out, _, err = run(t, "image", "provenance", id) // an import: the chain without source and bake
	require.NoError(t, err)
	assert.Contains(t, out, "Note: image "+id+" has no provenance: only bakes write it (builder import)")
	assert.NotContains(t, out, "Bake ")
	_, _, err = run(t, "image", "provenance", id, "--envelope")
	require.ErrorContains(t, err, "has no provenance")

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	tmp := t.TempDir()
	keyFile, pubFile := filepath.Join(tmp, "k.pem"), filepath.Join(tmp, "k.pub")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	s, err := provenance.LoadSigner(ctx, keyFile, "")
	require.NoError(t, err)
	pub, err := s.PublicKeyPEM(ctx)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(pubFile, pub, 0o600))
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	defer cat.Close()
	img, err := cat.Get(ctx, id)
	require.NoError(t, err)
	st, err := provenance.NewStatement(provenance.Build{ImageID: id, Service: "hello", ArchiveDigest: img.Digest, Builder: "imago-local",
		Materials:  []provenance.Material{{Name: "source:app", Digest: provenance.SHA256([]byte("tree"))}},
		WorkflowID: "bake/hello/latest", RunID: "run-1", Worker: "7@builder", Version: "v9", VariableNames: []string{"GREETING"}})
	require.NoError(t, err)
	payload, _ := provenance.Marshal(st)
	env, err := s.Sign(ctx, payload)
	require.NoError(t, err)
	require.NoError(t, cat.PutProvenance(ctx, id, env))

	out, _, err = run(t, "image", "provenance", id, "--key", pubFile)
	require.NoError(t, err)
	for _, want := range []string{
		"Image " + id + " (service hello, builder import",
		"Source\n  source:app  " + provenance.SHA256([]byte("tree")),
		"variables (names only): GREETING",
		"Bake bake/hello/latest run run-1",
		"builder  " + provenance.BuilderID + "#7@builder (imago v9)",
		"provenance signed, verified with --key",
		"Channel moves\n  none", "Rollouts\n  none", "Live now\n  nowhere",
		"Note: approvals and analysis verdicts left out",
	} {
		assert.Contains(t, out, want)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalPKIXPublicKey(other.Public())
	otherFile := filepath.Join(tmp, "other.pub")
	require.NoError(t, os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: otherDER}), 0o600))
	out, _, err = run(t, "image", "provenance", id, "--key", otherFile, "-o", "json")
	require.NoError(t, err)
	var ch struct {
		Provenance struct {
			Signed, Verified bool
			VerifyError      string `json:"verifyError"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &ch), out)
	assert.True(t, ch.Provenance.Signed)
	assert.False(t, ch.Provenance.Verified)
	assert.Contains(t, ch.Provenance.VerifyError, "does not verify with this key")

	out, _, err = run(t, "image", "provenance", id, "--envelope")
	require.NoError(t, err)
	var envelope struct {
		PayloadType string
		Signatures  []struct{ Sig string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &envelope), out)
	assert.Equal(t, provenance.PayloadType, envelope.PayloadType)
	assert.Len(t, envelope.Signatures, 1)
}
