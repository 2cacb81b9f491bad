package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provenance"
	"github.com/imago/imago/internal/provenance/chain"
)

// TestBakedImageHasSignedProvenanceAndAChain bakes examples/hello on a worker
// with a signing key (a PEM file in a temp dir, as IMAGO_SIGNING_KEY names it),
// checks the envelope with sigstore's own DSSE verifier, sees verification fail
// once one byte of the archive changes, then rolls the image out and reads its
// chain: bake → channel move → rollout → live fleet.
func TestBakedImageHasSignedProvenanceAndAChain(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))

	e := newEnv(t)
	e.deps.Activities.Signer, err = provenance.LoadSigner(ctx, keyFile, "")
	require.NoError(t, err)
	e.startWorker()
	b := helloBake(t)
	res, err := e.bake(b)
	require.NoError(t, err)
	img, err := e.deps.Catalog.Get(ctx, res.ImageID)
	require.NoError(t, err)
	env, err := e.deps.Catalog.Provenance(ctx, img.ID)
	require.NoError(t, err)

	// sigstore's verifier (what cosign verify-blob-attestation runs), not only ours.
	sv, err := signature.LoadVerifier(key.Public(), crypto.SHA256)
	require.NoError(t, err)
	require.NoError(t, dsse.WrapVerifier(sv).VerifySignature(bytes.NewReader(env), nil))

	r, err := e.deps.Catalog.OpenArchive(ctx, img)
	require.NoError(t, err)
	archive, err := io.ReadAll(r)
	r.Close()
	require.NoError(t, err)
	st, err := provenance.Verify(env, bytes.NewReader(archive), sv)
	require.NoError(t, err)
	bakeID, bakeRun := e.last.GetID(), e.last.GetRunID()
	assert.Equal(t, bakeID+"/"+bakeRun, st.InvocationID(), "the bake's workflow and run")
	var names []string
	for _, d := range st.Provenance.GetBuildDefinition().GetResolvedDependencies() {
		names = append(names, d.GetName())
		assert.NotEmpty(t, d.GetDigest()["sha256"], "%s has its digest", d.GetName())
	}
	var want []string // examples/hello bakes from files
	for _, f := range b.Files {
		want = append(want, "file:"+filepath.Base(f))
	}
	require.NotEmpty(t, want)
	assert.Equal(t, want, names, "the bake's files with their digests")
	archive[len(archive)/2] ^= 1
	_, err = provenance.Verify(env, bytes.NewReader(archive), sv)
	assert.ErrorContains(t, err, "not this archive")

	// An environment that requires provenance signed by this key accepts it.
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	require.NoError(t, err)
	_, err = e.deps.Catalog.SetPolicy(ctx, contract.Policy{Environment: "test", RequireProvenance: true, ProvenanceKey: string(pubPEM)})
	require.NoError(t, err)
	_, err = e.rollout(e.spec(img.ID))
	require.NoError(t, err)
	ch, err := chain.Build(ctx, e.deps.Catalog, img.ID, chain.Options{Temporal: e.client, Verifier: sv})
	require.NoError(t, err)
	require.NotNil(t, ch.Provenance)
	assert.True(t, *ch.Provenance.Verified, ch.Provenance.VerifyError)
	assert.Equal(t, bakeID, ch.Provenance.BakeWorkflowID)
	assert.Equal(t, bakeRun, ch.Provenance.BakeRunID)
	assert.Equal(t, "integration-test", ch.Provenance.BakedBy)
	require.Len(t, ch.Channels, 1)
	assert.Equal(t, b.Channel, ch.Channels[0].Channel)
	require.Len(t, ch.Rollouts, 1)
	assert.Equal(t, contract.OutcomeSucceeded, ch.Rollouts[0].Outcome)
	assert.Equal(t, e.last.GetID(), ch.Rollouts[0].RolloutID)
	assert.Equal(t, e.last.GetRunID(), ch.Rollouts[0].RunID)
	assert.Equal(t, "integration-test", ch.Rollouts[0].StartedBy)
	require.Len(t, ch.Live, 1)
	assert.Equal(t, "test", ch.Live[0].Environment)
	assert.Equal(t, 3, ch.Live[0].Instances)
	assert.Empty(t, ch.Notes)

	// Signed by another key: refused before anything is provisioned.
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	otherPEM, err := cryptoutils.MarshalPublicKeyToPEM(other.Public())
	require.NoError(t, err)
	_, err = e.deps.Catalog.SetPolicy(ctx, contract.Policy{Environment: "test", RequireProvenance: true, ProvenanceKey: string(otherPEM)})
	require.NoError(t, err)
	_, err = e.rollout(e.spec(img.ID))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--require-provenance: image "+img.ID+"'s provenance does not verify with the policy's --provenance-key")
	byFleet, _ := e.instances()
	assert.Equal(t, map[string]int{ch.Live[0].FleetID: 3}, byFleet, "nothing was provisioned")
}
