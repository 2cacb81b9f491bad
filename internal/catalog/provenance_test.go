package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestProvenanceStoredOnceOwnerOnlyAndDeletedWithTheImage: the envelope is
// stored 0600 beside the record, the first one stands, an image without one
// says why, and a lifecycle deletion removes it while the tombstone stays.
func TestProvenanceStoredOnceOwnerOnlyAndDeletedWithTheImage(t *testing.T) {
	ctx := context.Background()
	c, dir, _, img := importRunScript(t)
	_, err := c.Provenance(ctx, img.ID)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("an imported image's provenance: %v, want ErrNotFound", err)
	}
	wantErr(t, err, "has no provenance: only bakes write it (builder import)")
	wantErr(t, c.PutProvenance(ctx, img.ID, []byte("{not json")), "not JSON")
	first := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)
	if err := c.PutProvenance(ctx, img.ID, first); err != nil {
		t.Fatal(err)
	}
	if err := c.PutProvenance(ctx, img.ID, []byte(`{"payloadType":"other"}`)); err != nil {
		t.Fatalf("a second put: %v, want nil (the first stands)", err)
	}
	got, err := c.Provenance(ctx, img.ID)
	if err != nil || !jsonEqual(got, first) {
		t.Fatalf("Provenance = %s, %v; want the first envelope", got, err)
	}
	path := filepath.Join(dir, "provenance", img.ID+".intoto.json")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored envelope: %v %v, want mode 0600", fi, err)
	}
	if err := c.DeleteImage(ctx, img.ID, "lifecycle rule hello#1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("provenance still there after delete (%v)", err)
	}
	_, err = c.Provenance(ctx, img.ID)
	wantErr(t, err, "deleted by lifecycle rule hello#1 (its tombstone stays)")
	wantErr(t, c.PutProvenance(ctx, img.ID, first), "was deleted")
}

// jsonEqual compares two JSON documents whatever their spacing.
func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	return json.Compact(&x, a) == nil && json.Compact(&y, b) == nil && bytes.Equal(x.Bytes(), y.Bytes())
}
