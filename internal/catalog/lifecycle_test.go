package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

const day = 24 * time.Hour

// lifecycleCatalog fills c with images of web that a lifecycle rule (keep the
// newest 1, deprecate after 30 days, delete after 90) must keep for each
// reason, and old ones it acts on; now is the sweep's time.
func lifecycleCatalog(t *testing.T, c *Catalog, now time.Time) {
	t.Helper()
	ctx := context.Background()
	img := func(id string, age time.Duration, parent string) {
		publish(t, c, contract.Image{ID: id, Service: "web", Parent: parent, Created: now.Add(-age)})
	}
	img("img-base", 300*day, "") // the base of the channel's image
	img("img-gone", 250*day, "") // deployed once, beyond the retain (2) now
	img("img-retained", 190*day, "")
	img("img-chan", 180*day, "img-base")
	img("img-live", 200*day, "")
	img("img-old", 100*day, "")  // never used, past delete-after
	img("img-stale", 40*day, "") // never used, past deprecate-after
	img("img-young", 10*day, "")
	img("img-newest", 1*day, "")
	publish(t, c, contract.Image{ID: "img-other", Service: "other", Created: now.Add(-400 * day)}) // no rule
	for _, id := range []string{"img-gone", "img-retained", "img-live"} {
		record(t, c, contract.Deployment{Service: "web", Environment: "prod", ImageID: id, RunID: "run-" + id,
			Outcome: contract.OutcomeSucceeded, Spec: []byte(`{"service":"web","environment":"prod","retain":2}`)})
	}
	if _, err := c.MoveChannel(ctx, "web", "stable", "img-chan", MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetLifecycle(ctx, contract.LifecycleRule{Service: "web", KeepLast: 1, DeprecateAfter: contract.Duration(30 * day), DeleteAfter: contract.Duration(90 * day)}); err != nil {
		t.Fatal(err)
	}
}

func decisionTable(ds []contract.LifecycleDecision) map[string]string {
	out := map[string]string{}
	for _, d := range ds {
		out[d.ImageID] = d.Action + ": " + d.Why
	}
	return out
}

// TestLifecycleDryRunListsExactlyTheExpectedImages: live, retained, channel and
// ancestor images are kept with their reason, the newest keep-last too; old
// ones are deprecated or deleted; another service's images are not looked at.
func TestLifecycleDryRunListsExactlyTheExpectedImages(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		now := time.Now().UTC()
		lifecycleCatalog(t, c, now)
		ds, err := c.PlanLifecycle(ctx, now, 5)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"img-live":     "keep: live in prod",
			"img-retained": "keep: within the rollback retain (2) of prod",
			"img-chan":     "keep: on channel stable",
			"img-base":     "keep: base of img-chan (on channel stable)",
			"img-newest":   "keep: among the newest 1",
			"img-young":    "keep: younger than 720h0m0s",
			"img-stale":    "deprecate: older than 720h0m0s",
			"img-old":      "delete: older than 2160h0m0s",
			"img-gone":     "delete: older than 2160h0m0s",
		}
		if got := decisionTable(ds); !reflect.DeepEqual(got, want) {
			t.Errorf("decisions:\n got %v\nwant %v", got, want)
		}
		for _, d := range ds {
			if d.Rule != "lifecycle rule web#1" {
				t.Errorf("%s: rule %q", d.ImageID, d.Rule)
			}
		}
		// A dry run changes nothing.
		imgs, err := c.List(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range imgs {
			if img.Deprecated != nil || img.Deleted != nil {
				t.Errorf("%s marked by a plan: %+v %+v", img.ID, img.Deprecated, img.Deleted)
			}
		}
	})
}

// TestLifecycleDeleteLeavesATombstone: deleting removes the archive and the
// SBOM, keeps the record with a tombstone (owner-only) that Get and List show,
// and the image is no longer usable; a deprecated image stays usable.
func TestLifecycleDeleteLeavesATombstone(t *testing.T) {
	ctx := context.Background()
	c, dir, src, old := importRunScript(t)
	stale := publish(t, c, contract.Image{ID: "img-stale", Service: "hello"})
	archive := filepath.Join(dir, filepath.FromSlash(old.Archive))
	sbom := filepath.Join(dir, "sboms", old.ID+".cdx.json")
	for _, p := range []string{archive, sbom} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("before: %v", err)
		}
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := c.DeleteImage(ctx, old.ID, "lifecycle rule hello#3", at); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteImage(ctx, old.ID, "lifecycle rule hello#4", at.Add(time.Hour)); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if err := c.Deprecate(ctx, stale.ID, "lifecycle rule hello#3", at); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{archive, sbom} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after delete (%v)", p, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "tombstones", old.ID+".json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tombstone: %v %v, want mode 0600", fi, err)
	}
	if di, _ := os.Stat(filepath.Join(dir, "tombstones")); di.Mode().Perm() != 0o700 {
		t.Errorf("tombstones dir mode %v, want 0700", di.Mode().Perm())
	}
	got, err := c.Get(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Deleted == nil || got.Deleted.Rule != "lifecycle rule hello#3" || !got.Deleted.Time.Equal(at) {
		t.Fatalf("Get after delete: deleted = %+v, want the first rule and time", got.Deleted)
	}
	if err := got.Usable(); !errors.Is(err, contract.ErrDeleted) {
		t.Errorf("Usable of a deleted image = %v, want ErrDeleted", err)
	} else {
		wantErr(t, err, old.ID+" was deleted by lifecycle rule hello#3 at 2026-12-01T10:00:00Z")
	}
	if _, err := c.SBOM(ctx, old.ID); err == nil {
		t.Error("a deleted image still has an SBOM")
	}
	// Importing the same tree again is refused, and brings back neither archive nor SBOM.
	_, err = c.Import(ctx, src, "hello", []string{"./run.sh"}, nil)
	wantErr(t, err, "an identical image "+old.ID+" was deleted by lifecycle rule hello#3")
	if _, err := os.Stat(sbom); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("re-import made the deleted image's SBOM again (%v)", err)
	}
	imgs, err := c.List(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, img := range imgs {
		states[img.ID] = fmt.Sprintf("deleted=%t deprecated=%t usable=%t", img.Deleted != nil, img.Deprecated != nil, img.Usable() == nil)
	}
	want := map[string]string{old.ID: "deleted=true deprecated=false usable=false", stale.ID: "deleted=false deprecated=true usable=true"}
	if !reflect.DeepEqual(states, want) {
		t.Errorf("List: %v, want %v", states, want)
	}
}

// TestLifecycleRules: a rule is checked (naming the flag), replaced by the next
// set, and read back; a service without one says how to set one.
func TestLifecycleRules(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		_, err := c.Lifecycle(ctx, "web")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("no rule: %v, want ErrNotFound", err)
		}
		wantErr(t, err, "imago image lifecycle set --service web")
		for _, tc := range []struct {
			r    contract.LifecycleRule
			want string
		}{
			{contract.LifecycleRule{Service: "web", KeepLast: -1, DeprecateAfter: contract.Duration(day)}, "--keep-last must be 0 or more"},
			{contract.LifecycleRule{Service: "web", KeepLast: 3}, "needs --deprecate-after or --delete-after"},
			{contract.LifecycleRule{Service: "web", DeprecateAfter: contract.Duration(2 * day), DeleteAfter: contract.Duration(day)}, "--delete-after (24h0m0s) must not be shorter than --deprecate-after"},
			{contract.LifecycleRule{KeepLast: 3, DeprecateAfter: contract.Duration(day)}, "--service"},
		} {
			_, err := c.SetLifecycle(ctx, tc.r)
			wantErr(t, err, tc.want)
		}
		if _, err := c.SetLifecycle(ctx, contract.LifecycleRule{Service: "web", KeepLast: 3, DeprecateAfter: contract.Duration(day), By: "ann"}); err != nil {
			t.Fatal(err)
		}
		r, err := c.SetLifecycle(ctx, contract.LifecycleRule{Service: "web", KeepLast: 5, DeleteAfter: contract.Duration(9 * day), By: "bob"})
		if err != nil || r.Seq != 2 {
			t.Fatalf("second set: %+v %v", r, err)
		}
		got, err := c.Lifecycle(ctx, "web")
		if err != nil || got.KeepLast != 5 || got.DeprecateAfter != 0 || got.DeleteAfter.D() != 9*day || got.By != "bob" || got.Seq != 2 {
			t.Errorf("Lifecycle = %+v, %v", got, err)
		}
		all, err := c.LifecycleRules(ctx)
		if err != nil || len(all) != 1 || all[0].Seq != 2 {
			t.Errorf("LifecycleRules = %+v, %v", all, err)
		}
	})
}

// importRunScript imports a one-script tree (src) as an image of hello into a
// new file:// catalog under dir.
func importRunScript(t *testing.T) (c *Catalog, dir, src string, img contract.Image) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "catalog")
	c = mustOpen(t, "file://"+dir)
	src = t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := c.Import(context.Background(), src, "hello", []string{"./run.sh"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, dir, src, img
}
