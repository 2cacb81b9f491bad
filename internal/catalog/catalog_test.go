package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
)

// driver opens catalogs of one gocloud driver. open returns a new handle on the
// same bucket each call where the driver allows it (mem:// buckets exist only
// within their handle, so there it returns the first handle again).
type driver struct {
	name   string
	shared bool // separately opened handles share the bucket
	open   func(t *testing.T) func() *Catalog
}

var drivers = []driver{
	{name: "mem", open: func(t *testing.T) func() *Catalog {
		c := mustOpen(t, "mem://")
		return func() *Catalog { return c }
	}},
	{name: "file", shared: true, open: func(t *testing.T) func() *Catalog {
		url := "file://" + filepath.Join(t.TempDir(), "catalog")
		return func() *Catalog { return mustOpen(t, url) }
	}},
}

func mustOpen(t *testing.T, url string) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eachDriver runs fn against a fresh catalog of every driver.
func eachDriver(t *testing.T, fn func(t *testing.T, c *Catalog)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			fn(t, d.open(t)())
		})
	}
}

func publish(t *testing.T, c *Catalog, img contract.Image) contract.Image {
	t.Helper()
	if img.Builder == "" {
		img.Builder = "test"
	}
	got, err := c.Publish(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func ids(imgs []contract.Image) []string {
	out := []string{}
	for _, img := range imgs {
		out = append(out, img.ID)
	}
	return out
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if got == nil {
		got = []string{}
	}
	if want == nil {
		want = []string{}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantErr(t *testing.T, err error, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", contains)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestImportGetList(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		img, err := c.Import(ctx, dir, "hello", []string{"./hello"}, map[string]string{"version": "v1"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(img.ID, "img-") || img.Archive == "" || img.Created.IsZero() || img.Builder != "import" {
			t.Fatalf("imported %+v", img)
		}
		again, err := c.Import(ctx, dir, "hello", []string{"./hello"}, nil)
		if err != nil || again.ID != img.ID || !again.Created.Equal(img.Created) {
			t.Fatalf("import again = %+v, %v; want the first image", again, err)
		}
		got, err := c.Get(ctx, img.ID)
		if err != nil || got.Service != "hello" || got.Labels["version"] != "v1" || got.Revoked != nil || got.Outdated != nil {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		rc, err := c.OpenArchive(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		if image.Digest(data) != got.Digest {
			t.Errorf("archive digest %s, record says %s", image.Digest(data), got.Digest)
		}

		other := publish(t, c, contract.Image{ID: "img-other", Service: "api", Created: img.Created.Add(time.Second)})
		list, err := c.List(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "List(hello)", ids(list), []string{img.ID})
		all, err := c.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "List()", ids(all), []string{other.ID, img.ID}) // newest first
		none, err := c.List(ctx, "nobody")
		if err != nil || len(none) != 0 {
			t.Errorf("List(nobody) = %v, %v", none, err)
		}

		_, err = c.Get(ctx, "img-000000000000")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(missing) = %v, want ErrNotFound", err)
		}
		wantErr(t, err, "imago image list")
		if _, err := c.Get(ctx, "../escape"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(../escape) = %v, want ErrNotFound", err)
		}
	})
}

func TestPublishIdempotentAndImmutable(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		ami := contract.Image{ID: "img-ami1", Service: "web", Builder: "amazon-ebs", InputDigest: "sha256:aaaa",
			Artifacts: map[string]string{"us-east-1": "ami-1", "eu-west-1": "ami-2"}}
		first, err := c.Publish(ctx, ami)
		if err != nil {
			t.Fatal(err)
		}
		if first.Created.IsZero() {
			t.Fatal("Created not set")
		}
		// A retry (zero Created, say from a retried activity) returns the stored image.
		again, err := c.Publish(ctx, ami)
		if err != nil || !again.Created.Equal(first.Created) || again.ID != first.ID {
			t.Fatalf("publish again = %+v, %v", again, err)
		}
		// ... and so does the stored image itself, overlays and all.
		stored, _ := c.Get(ctx, ami.ID)
		stored.Outdated = &contract.Outdated{Reason: "ignored"}
		if _, err := c.Publish(ctx, stored); err != nil {
			t.Fatalf("publish stored image again: %v", err)
		}

		changed := ami
		changed.Artifacts = map[string]string{"us-east-1": "ami-9"}
		_, err = c.Publish(ctx, changed)
		wantErr(t, err, "img-ami1", "different content", "artifacts", "immutable")
		changed = ami
		changed.Created = first.Created.Add(time.Hour)
		_, err = c.Publish(ctx, changed)
		wantErr(t, err, "different content", "created")
		if got, _ := c.Get(ctx, ami.ID); got.Artifacts["us-east-1"] != "ami-1" {
			t.Errorf("record changed: %+v", got)
		}

		_, err = c.Publish(ctx, contract.Image{ID: "bad/id", Service: "web"})
		wantErr(t, err, "invalid image ID")
		_, err = c.Publish(ctx, contract.Image{ID: "img-x"})
		wantErr(t, err, "service name is required")
		_, err = c.Publish(ctx, contract.Image{ID: "img-orphan", Service: "web", Parent: "img-nope"})
		wantErr(t, err, "base image", "img-nope", "not found")
		_, err = c.Publish(ctx, contract.Image{ID: "img-arch", Service: "web", Archive: "archives/nope.tar.gz"})
		wantErr(t, err, "not in the catalog")

		// Concurrent identical publishes all succeed with one record.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.Publish(ctx, contract.Image{ID: "img-same", Service: "web", Builder: "x", Created: first.Created})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

func TestFindByInputDigestConcurrent(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		const digest = "sha256:1nput5"
		_, err := c.FindByInputDigest(ctx, "hello", digest)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("FindByInputDigest before any publish = %v, want ErrNotFound", err)
		}

		// Eight bakes of the same inputs produce different archives (builds are not
		// reproducible) and publish at once: one wins, all get the winner.
		const n = 8
		archives := make([][]byte, n)
		for i := range archives {
			archives[i] = testArchive(t, fmt.Sprintf("archive %d", i))
		}
		got := make([]contract.Image, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i], errs[i] = c.PublishArchive(ctx, archives[i],
					contract.Image{Service: "hello", Builder: "imago-local", InputDigest: digest, Entrypoint: []string{"./hello"}})
			}()
		}
		close(start)
		wg.Wait()
		for i := 0; i < n; i++ {
			if errs[i] != nil {
				t.Fatalf("publish %d: %v", i, errs[i])
			}
			if got[i].ID != got[0].ID {
				t.Errorf("publish %d got %s, publish 0 got %s", i, got[i].ID, got[0].ID)
			}
		}
		winner := got[0]
		found, err := c.FindByInputDigest(ctx, "hello", digest)
		if err != nil || found.ID != winner.ID || found.InputDigest != digest {
			t.Fatalf("FindByInputDigest = %+v, %v; want %s", found, err, winner.ID)
		}
		keys, err := c.listKeys(ctx, "inputs/")
		if err != nil || len(keys) != 1 {
			t.Fatalf("index entries %v, %v; want one", keys, err)
		}
		if _, err := c.FindByInputDigest(ctx, "other", digest); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindByInputDigest(other service) = %v, want ErrNotFound", err)
		}
		// A later publish of the same inputs returns the winner without recording itself.
		late, err := c.PublishArchive(ctx, []byte("late archive"), contract.Image{Service: "hello", InputDigest: digest, Entrypoint: []string{"./hello"}})
		if err != nil || late.ID != winner.ID {
			t.Errorf("late publish = %s, %v; want %s", late.ID, err, winner.ID)
		}
		// So does Publish.
		cloud, err := c.Publish(ctx, contract.Image{ID: "img-cloud", Service: "hello", InputDigest: digest})
		if err != nil || cloud.ID != winner.ID {
			t.Errorf("Publish of cached inputs = %s, %v; want %s", cloud.ID, err, winner.ID)
		}

		// Once the winner is revoked the inputs are a cache miss, and the next bake
		// of them takes its place.
		if _, err := c.Revoke(ctx, winner.ID, RevokeOptions{Reason: "bad build"}); err != nil {
			t.Fatal(err)
		}
		rev, err := c.FindByInputDigest(ctx, "hello", digest)
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, contract.ErrRevoked) || rev.ID != winner.ID || rev.Revoked == nil {
			t.Fatalf("FindByInputDigest of revoked = %s, %v; want the image and ErrNotFound+ErrRevoked", rev.ID, err)
		}
		wantErr(t, err, "bad build", "bake again")
		// The winner's own archive cannot come back: its ID is the revoked one.
		var winning []byte
		for _, a := range archives {
			if image.Digest(a) == winner.Digest {
				winning = a
			}
		}
		_, err = c.PublishArchive(ctx, winning, contract.Image{Service: "hello", Builder: "imago-local", InputDigest: digest, Entrypoint: []string{"./hello"}})
		if !errors.Is(err, contract.ErrRevoked) {
			t.Errorf("republishing the revoked archive = %v, want ErrRevoked", err)
		}
		rebake, err := c.PublishArchive(ctx, testArchive(t, "rebuilt"), contract.Image{Service: "hello", Builder: "imago-local", InputDigest: digest, Entrypoint: []string{"./hello"}})
		if err != nil || rebake.ID == winner.ID {
			t.Fatalf("rebake = %s, %v; want a new image", rebake.ID, err)
		}
		found, err = c.FindByInputDigest(ctx, "hello", digest)
		if err != nil || found.ID != rebake.ID {
			t.Fatalf("FindByInputDigest after rebake = %s, %v; want %s", found.ID, err, rebake.ID)
		}
	})
}

func TestChannels(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		v1 := publish(t, c, contract.Image{ID: "img-v1", Service: "hello"})
		v2 := publish(t, c, contract.Image{ID: "img-v2", Service: "hello"})
		api := publish(t, c, contract.Image{ID: "img-api", Service: "api"})

		_, err := c.Channel(ctx, "hello", "stable")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Channel before a move = %v, want ErrNotFound", err)
		}
		wantErr(t, err, "channel hello/stable not found; move it with: imago image promote ID --channel stable")
		_, err = c.ChannelHistory(ctx, "hello", "stable")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("ChannelHistory before a move = %v, want ErrNotFound", err)
		}
		if chs, err := c.Channels(ctx, "hello"); err != nil || len(chs) != 0 {
			t.Errorf("Channels before a move = %v, %v", chs, err)
		}

		e1, err := c.MoveChannel(ctx, "hello", "stable", v1.ID, MoveOptions{By: "alice", Reason: "first"})
		if err != nil || e1.Seq != 1 || e1.Previous != "" || e1.ImageID != v1.ID || e1.By != "alice" || e1.Time.IsZero() {
			t.Fatalf("first move = %+v, %v", e1, err)
		}
		e2, err := c.MoveChannel(ctx, "hello", "stable", v2.ID, MoveOptions{By: "bob", Reason: "second"})
		if err != nil || e2.Seq != 2 || e2.Previous != v1.ID {
			t.Fatalf("second move = %+v, %v", e2, err)
		}
		// Moving to the current image again is a no-op returning the current entry.
		same, err := c.MoveChannel(ctx, "hello", "stable", v2.ID, MoveOptions{By: "carol"})
		if err != nil || same.Seq != 2 || same.By != "bob" {
			t.Fatalf("repeated move = %+v, %v", same, err)
		}
		e3, err := c.MoveChannel(ctx, "hello", "stable", v1.ID, MoveOptions{By: "bob", Reason: "rollback"})
		if err != nil || e3.Seq != 3 || e3.Previous != v2.ID {
			t.Fatalf("rollback = %+v, %v", e3, err)
		}
		if _, err := c.MoveChannel(ctx, "hello", "latest", v2.ID, MoveOptions{}); err != nil {
			t.Fatal(err)
		}

		cur, err := c.Channel(ctx, "hello", "stable")
		if err != nil || cur.Seq != 3 || cur.ImageID != v1.ID || cur.Reason != "rollback" {
			t.Errorf("Channel = %+v, %v", cur, err)
		}
		hist, err := c.ChannelHistory(ctx, "hello", "stable")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range hist {
			got = append(got, fmt.Sprintf("%d:%s<-%s", e.Seq, e.ImageID, e.Previous))
		}
		sameIDs(t, "history", got, []string{"1:img-v1<-", "2:img-v2<-img-v1", "3:img-v1<-img-v2"})
		chs, err := c.Channels(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, e := range chs {
			got = append(got, fmt.Sprintf("%s=%s@%d", e.Channel, e.ImageID, e.Seq))
		}
		sameIDs(t, "Channels", got, []string{"latest=img-v2@1", "stable=img-v1@3"})

		_, err = c.MoveChannel(ctx, "hello", "stable", api.ID, MoveOptions{})
		wantErr(t, err, "belongs to service api, not hello")
		_, err = c.MoveChannel(ctx, "hello", "Stable!", v1.ID, MoveOptions{})
		wantErr(t, err, "invalid channel name")
		_, err = c.MoveChannel(ctx, "hello", strings.Repeat("a", 41), v1.ID, MoveOptions{})
		wantErr(t, err, "invalid channel name")
		_, err = c.MoveChannel(ctx, "hello", "stable", "img-missing", MoveOptions{})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("move to a missing image = %v, want ErrNotFound", err)
		}
		if _, err := c.MoveChannel(ctx, "hello", "canary-2", v2.ID, MoveOptions{}); err != nil {
			t.Errorf("channel canary-2: %v", err)
		}
	})
}

// TestChannelConcurrentMoves moves one channel 100 times at once from 20
// goroutines; on the file bucket through two separately opened handles (as two
// processes would). No move may be lost: the history has every one, seqs 1..100.
func TestChannelConcurrentMoves(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			open := d.open(t)
			handles := []*Catalog{open(), open()}
			if d.shared && handles[0] == handles[1] {
				t.Fatal("want two handles")
			}
			const goroutines, moves = 20, 5
			for g := 0; g < goroutines; g++ {
				for m := 0; m < moves; m++ {
					publish(t, handles[0], contract.Image{ID: fmt.Sprintf("img-g%02d-m%d", g, m), Service: "hello"})
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*moves)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := handles[g%2]
					for m := 0; m < moves; m++ {
						id := fmt.Sprintf("img-g%02d-m%d", g, m)
						e, err := c.MoveChannel(ctx, "hello", "stable", id, MoveOptions{By: fmt.Sprint("g", g)})
						if err != nil {
							errs <- err
						} else if e.ImageID != id {
							errs <- fmt.Errorf("move to %s returned entry %+v", id, e)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			hist, err := handles[1].ChannelHistory(ctx, "hello", "stable")
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != goroutines*moves {
				t.Fatalf("history has %d entries, want %d", len(hist), goroutines*moves)
			}
			seen := map[string]bool{}
			prev := ""
			for i, e := range hist {
				if e.Seq != int64(i+1) {
					t.Fatalf("entry %d has seq %d", i, e.Seq)
				}
				if e.Previous != prev {
					t.Errorf("entry %d: previous %s, want %s", e.Seq, e.Previous, prev)
				}
				if seen[e.ImageID] {
					t.Errorf("image %s moved to twice", e.ImageID)
				}
				seen[e.ImageID], prev = true, e.ImageID
			}
			for g := 0; g < goroutines; g++ {
				for m := 0; m < moves; m++ {
					if id := fmt.Sprintf("img-g%02d-m%d", g, m); !seen[id] {
						t.Errorf("move to %s lost", id)
					}
				}
			}
			cur, err := handles[0].Channel(ctx, "hello", "stable")
			if err != nil || cur.Seq != goroutines*moves || cur.ImageID != prev {
				t.Errorf("current = %+v, %v; want seq %d image %s", cur, err, goroutines*moves, prev)
			}
		})
	}
}

// TestCreateIsAtomic pins down why create does not use fileblob's IfNotExist: of
// concurrent creates of one key exactly one may succeed.
func TestCreateIsAtomic(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			open := d.open(t)
			handles := []*Catalog{open(), open()}
			for k := 0; k < 50; k++ {
				var wg sync.WaitGroup
				var mu sync.Mutex
				wins := 0
				for g := 0; g < 8; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := handles[g%2].create(context.Background(), fmt.Sprintf("test/%d.json", k), g)
						mu.Lock()
						defer mu.Unlock()
						if err == nil {
							wins++
						} else if !isExists(err) {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				if wins != 1 {
					t.Fatalf("key %d: %d creates succeeded, want 1", k, wins)
				}
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		base := publish(t, c, contract.Image{ID: "img-base", Service: "base"})
		child := publish(t, c, contract.Image{ID: "img-child", Service: "app", Parent: base.ID})
		grand := publish(t, c, contract.Image{ID: "img-grand", Service: "app", Parent: child.ID})
		sibling := publish(t, c, contract.Image{ID: "img-sibling", Service: "app", Parent: base.ID})
		other := publish(t, c, contract.Image{ID: "img-other", Service: "app"})
		if _, err := c.MoveChannel(ctx, "app", "stable", other.ID, MoveOptions{}); err != nil {
			t.Fatal(err)
		}

		_, err := c.Revoke(ctx, child.ID, RevokeOptions{Reason: "  "})
		wantErr(t, err, "reason is required")
		_, err = c.Revoke(ctx, "img-missing", RevokeOptions{Reason: "x"})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke(missing) = %v, want ErrNotFound", err)
		}

		// Without cascade only the image itself.
		got, err := c.Revoke(ctx, sibling.ID, RevokeOptions{Reason: "flaky", By: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "revoked", got, []string{sibling.ID})

		got, err = c.Revoke(ctx, base.ID, RevokeOptions{Reason: "CVE-2024-1234", By: "alice", Cascade: true})
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "revoked with cascade", got, []string{base.ID, child.ID, grand.ID}) // sibling was revoked already

		b, _ := c.Get(ctx, base.ID)
		if b.Revoked == nil || b.Revoked.Reason != "CVE-2024-1234" || b.Revoked.By != "alice" || b.Revoked.CascadedFrom != "" {
			t.Fatalf("base revocation %+v", b.Revoked)
		}
		want := fmt.Sprintf("image img-base is revoked: CVE-2024-1234 (by alice, at %s)", b.Revoked.Time.Format(time.RFC3339))
		if err := b.Usable(); err == nil || err.Error() != want || !errors.Is(err, contract.ErrRevoked) {
			t.Errorf("Usable() = %v, want %q", err, want)
		}
		g, _ := c.Get(ctx, grand.ID)
		if g.Revoked == nil || g.Revoked.Reason != "parent img-base revoked: CVE-2024-1234" || g.Revoked.CascadedFrom != base.ID {
			t.Errorf("grandchild revocation %+v", g.Revoked)
		}
		if s, _ := c.Get(ctx, sibling.ID); s.Revoked == nil || s.Revoked.Reason != "flaky" {
			t.Errorf("sibling keeps its own revocation: %+v", s.Revoked)
		}
		if o, _ := c.Get(ctx, other.ID); o.Usable() != nil {
			t.Errorf("unrelated image revoked: %v", o.Usable())
		}
		list, err := c.List(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range list {
			if (img.Revoked != nil) == (img.ID == other.ID) {
				t.Errorf("List: %s revoked = %+v", img.ID, img.Revoked)
			}
		}

		// Revoking again is harmless and changes nothing.
		got, err = c.Revoke(ctx, base.ID, RevokeOptions{Reason: "again", Cascade: true})
		if err != nil || len(got) != 0 {
			t.Errorf("revoke again = %v, %v", got, err)
		}

		_, err = c.MoveChannel(ctx, "app", "stable", grand.ID, MoveOptions{})
		wantErr(t, err, "img-grand is revoked: parent img-base revoked: CVE-2024-1234", "promote a usable image")
		if !errors.Is(err, contract.ErrRevoked) {
			t.Errorf("move to revoked: %v does not match ErrRevoked", err)
		}
		if cur, _ := c.Channel(ctx, "app", "stable"); cur.ImageID != other.ID {
			t.Errorf("channel moved to %s", cur.ImageID)
		}
		_, err = c.Publish(ctx, contract.Image{ID: "img-late", Service: "app", Parent: base.ID})
		wantErr(t, err, "base image img-base is revoked")
	})
}

func TestAncestryOutdated(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		b1 := publish(t, c, contract.Image{ID: "img-b1", Service: "base", Created: t0})
		b2 := publish(t, c, contract.Image{ID: "img-b2", Service: "base", Created: t0.Add(time.Minute)})
		a1 := publish(t, c, contract.Image{ID: "img-a1", Service: "app", Parent: b1.ID, Created: t0.Add(2 * time.Minute)})
		a2 := publish(t, c, contract.Image{ID: "img-a2", Service: "app", Parent: b1.ID, Created: t0.Add(3 * time.Minute)})
		w1 := publish(t, c, contract.Image{ID: "img-w1", Service: "worker", Parent: b1.ID, Created: t0.Add(4 * time.Minute)})
		g1 := publish(t, c, contract.Image{ID: "img-g1", Service: "app", Parent: a1.ID, Created: t0.Add(5 * time.Minute)})
		x := publish(t, c, contract.Image{ID: "img-x", Service: "app", Parent: b2.ID, Created: t0.Add(6 * time.Minute)})

		kids, err := c.Children(ctx, b1.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "Children(b1)", ids(kids), []string{w1.ID, a2.ID, a1.ID})
		desc, err := c.Descendants(ctx, b1.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "Descendants(b1)", ids(desc), []string{a1.ID, a2.ID, w1.ID, g1.ID})
		if _, err := c.Children(ctx, "img-missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Children(missing) = %v", err)
		}

		e, err := c.MoveChannel(ctx, "base", "stable", b1.ID, MoveOptions{})
		if err != nil || len(e.Outdated) != 0 {
			t.Fatalf("first move = %+v, %v", e, err)
		}
		e, err = c.MoveChannel(ctx, "base", "stable", b2.ID, MoveOptions{By: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "newly outdated", e.Outdated, []string{a1.ID, a2.ID, w1.ID})

		a, _ := c.Get(ctx, a1.ID)
		if a.Outdated == nil || a.Outdated.Reason != "base base/stable moved from img-b1 to img-b2" ||
			a.Outdated.NewBase != b2.ID || !a.Outdated.Since.Equal(e.Time) || a.Usable() != nil {
			t.Errorf("a1 outdated = %+v", a.Outdated)
		}
		for _, id := range []string{g1.ID, x.ID, b1.ID} {
			if img, _ := c.Get(ctx, id); img.Outdated != nil {
				t.Errorf("%s marked outdated: %+v", id, img.Outdated)
			}
		}
		out, err := c.Outdated(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "Outdated(app)", ids(out), []string{a2.ID, a1.ID})
		if out[0].Outdated == nil {
			t.Error("Outdated does not fill Image.Outdated")
		}
		all, _ := c.Outdated(ctx, "")
		sameIDs(t, "Outdated()", ids(all), []string{w1.ID, a2.ID, a1.ID})
		list, _ := c.List(ctx, "app")
		for _, img := range list {
			if (img.Outdated != nil) != (img.ID == a1.ID || img.ID == a2.ID) {
				t.Errorf("List: %s outdated = %+v", img.ID, img.Outdated)
			}
		}

		// Moving to the current image again marks nothing new; moving another
		// channel away from b1 finds them marked already.
		if e, err = c.MoveChannel(ctx, "base", "stable", b2.ID, MoveOptions{}); err != nil || len(e.Outdated) != 0 || e.Seq != 2 {
			t.Errorf("repeated move = %+v, %v", e, err)
		}
		c.MoveChannel(ctx, "base", "latest", b1.ID, MoveOptions{})
		if e, err = c.MoveChannel(ctx, "base", "latest", b2.ID, MoveOptions{}); err != nil || len(e.Outdated) != 0 {
			t.Errorf("latest move = %+v, %v", e, err)
		}
		// Moving away from b2 outdates x.
		if e, err = c.MoveChannel(ctx, "base", "stable", b1.ID, MoveOptions{Reason: "rollback"}); err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "outdated by rollback", e.Outdated, []string{x.ID})
	})
}

// TestFilePrefixURL checks that create's direct file writes land where fileblob
// reads them when the URL has a prefix.
func TestFilePrefixURL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := mustOpen(t, "file://"+dir+"?prefix=cat/")
	img := publish(t, c, contract.Image{ID: "img-p", Service: "hello"})
	if _, err := c.MoveChannel(ctx, "hello", "stable", img.ID, MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"cat/images/img-p.json", "cat/channels/hello/stable/000000000001.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	if e, err := c.Channel(ctx, "hello", "stable"); err != nil || e.ImageID != img.ID {
		t.Errorf("Channel = %+v, %v", e, err)
	}
	if _, err := c.Publish(ctx, contract.Image{ID: "img-p", Service: "other"}); err == nil {
		t.Error("overwrote a record through the prefixed bucket")
	}
}
