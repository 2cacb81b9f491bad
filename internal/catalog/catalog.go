// Package catalog records imago's images on a gocloud blob bucket
// (IMAGO_CATALOG_URL: file://, s3://, gs://, azblob://, mem://).
//
// Every object but the archives is small JSON, and every object is written once
// and never changed: the catalog's only synchronisation primitive is "create this
// key if it does not exist" (blob.WriterOptions.IfNotExist; for file:// buckets a
// hard link, see createFile). Layout of the bucket:
//
//	archives/<sha256>.tar.gz                  local image archives, content-addressed
//	images/<id>.json                          image records, immutable once written
//	children/<parent-id>/<id>.json            ancestry index: image id was built on parent-id
//	inputs/<service>/<input-digest>.json      bake cache: the image built from these inputs
//	inputs/<service>/<input-digest>/<n>.json  generation n >= 2, claimed when generation n-1's image was revoked
//	channels/<service>/<channel>/<seq>.json   channel moves; seq zero-padded, current = highest
//	revocations/<id>.json                     image id is revoked (the record stays as it was)
//	outdated/<id>.json                        image id's base channel moved on
//	sboms/<id>.cdx.json                       the CycloneDX SBOM of local image id (see SBOM)
//	provenance/<id>.intoto.json               the DSSE envelope of image id's SLSA provenance, from its bake (see Provenance)
//	lifecycle/<service>/<seq>.json            the service's lifecycle rule; current = highest seq
//	deprecations/<id>.json                    image id was deprecated by a lifecycle rule
//	tombstones/<id>.json                      image id was deleted by a lifecycle rule (archive, SBOM and provenance gone)
//	policies/<environment>/<seq>.json         the environment's policy (or its delete); current = highest seq
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imago/imago/internal/contract"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// catalogs, the local default
	_ "gocloud.dev/blob/memblob"  // mem:// catalogs, for tests

	"github.com/imago/imago/internal/image"
)

// ErrNotFound is returned (wrapped) when an image, channel or input digest does
// not exist.
var ErrNotFound = errors.New("not found")

// Catalog is a handle on the image catalog. It is safe for concurrent use, and
// any number of handles (in any number of processes) may share one bucket.
type Catalog struct {
	bucket  *blob.Bucket
	dir     string      // file:// buckets: where keys live on disk, for createFile
	noLinks atomic.Bool // createFile found that dir cannot hard-link
}

// Open opens the catalog at a gocloud blob URL. For file:// URLs the directory is
// created if missing.
func Open(ctx context.Context, url string) (*Catalog, error) {
	if strings.HasPrefix(url, "file://") && !strings.Contains(url, "create_dir") {
		if strings.Contains(url, "?") {
			url += "&create_dir=true"
		} else {
			url += "?create_dir=true"
		}
	}
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open image catalog %q: %w (set IMAGO_CATALOG_URL to a gocloud blob URL such as file:///var/lib/imago/catalog)", url, err)
	}
	return &Catalog{bucket: b, dir: fileDir(url)}, nil
}

// Close closes the bucket.
func (c *Catalog) Close() error { return c.bucket.Close() }

var (
	idRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	serviceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	digestRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._=+-]{0,199}$`)
)

func archiveKey(digest string) string {
	return "archives/" + strings.TrimPrefix(digest, "sha256:") + ".tar.gz"
}

func recordKey(id string) string     { return "images/" + id + ".json" }
func revocationKey(id string) string { return "revocations/" + id + ".json" }
func outdatedKey(id string) string   { return "outdated/" + id + ".json" }

func checkService(service string) error {
	if service == "" {
		return fmt.Errorf("a service name is required (--service)")
	}
	if !serviceRE.MatchString(service) {
		return fmt.Errorf("invalid service name %q: use letters, digits, '.', '_' and '-' (at most 128 characters)", service)
	}
	return nil
}

// Import packs dir as a local image of service and records it. Importing the same
// tree twice returns the same image.
func (c *Catalog) Import(ctx context.Context, dir, service string, entrypoint []string, labels map[string]string) (contract.Image, error) {
	if service == "" {
		return contract.Image{}, fmt.Errorf("import image: a service name is required (--service)")
	}
	if len(entrypoint) == 0 {
		return contract.Image{}, fmt.Errorf("import image: an entrypoint is required (--entrypoint, e.g. ./hello)")
	}
	archive, err := image.Pack(dir)
	if err != nil {
		return contract.Image{}, err
	}
	return c.PublishArchive(ctx, archive, contract.Image{Service: service, Entrypoint: entrypoint, Builder: "import", Labels: labels})
}

// PublishArchive stores a local image archive and records img for it. The image ID
// is derived from the archive's digest together with the service and entrypoint
// and, for an OCI or VM image, its format (and an OCI image's inputs and base; see
// Identity), so the same inputs always give the same ID and publishing twice is
// harmless (the first record stands; it is returned).
//
// With img.InputDigest set, the image is also entered in the bake cache (see
// FindByInputDigest). When another image already holds those inputs, that image is
// returned instead, and when two publishes race, both return the one that won.
//
// Publishing an archive identical to a revoked image fails with ErrRevoked.
func (c *Catalog) PublishArchive(ctx context.Context, archive []byte, img contract.Image) (contract.Image, error) {
	clearMarks(&img)
	img.Digest = image.Digest(archive)
	img.Archive = archiveKey(img.Digest)
	img.ID = Identity(img).ID()
	if err := checkService(img.Service); err != nil {
		return contract.Image{}, fmt.Errorf("publish image: %w", err)
	}
	if err := checkInputDigest(img.InputDigest); err != nil {
		return contract.Image{}, fmt.Errorf("publish image %s: %w", img.ID, err)
	}
	if img.InputDigest != "" {
		if w, ok, err := c.cachedWinner(ctx, img); err != nil || ok {
			return w, err
		}
	}
	existing, err := c.Get(ctx, img.ID)
	if err == nil {
		if existing.Deleted == nil { // a deleted image gets no SBOM back; finishPublish refuses it
			if _, err := c.ensureSBOM(ctx, existing, bytes.NewReader(archive), nil); err != nil {
				return contract.Image{}, err
			}
		}
		return c.finishPublish(ctx, existing, img.InputDigest)
	}
	if !errors.Is(err, ErrNotFound) {
		return contract.Image{}, err
	}
	if err := c.checkParent(ctx, img); err != nil {
		return contract.Image{}, err
	}
	if err := c.bucket.WriteAll(ctx, img.Archive, archive, &blob.WriterOptions{ContentType: "application/gzip"}); err != nil {
		return contract.Image{}, fmt.Errorf("store image archive: %w", err)
	}
	if img.Created.IsZero() {
		img.Created = time.Now().UTC()
	}
	if _, err := c.ensureSBOM(ctx, img, bytes.NewReader(archive), nil); err != nil {
		return contract.Image{}, err
	}
	if err := c.create(ctx, recordKey(img.ID), img); err != nil {
		if !isExists(err) {
			return contract.Image{}, fmt.Errorf("record image %s: %w", img.ID, err)
		}
		// A concurrent publish of the same archive won; its record stands.
		if img, err = c.Get(ctx, img.ID); err != nil {
			return contract.Image{}, err
		}
	}
	return c.finishPublish(ctx, img, img.InputDigest)
}

// Publish records img, an image without a local archive (say, cloud artifacts
// such as region -> AMI), under the ID the caller derived. Records are immutable:
// publishing an ID again with the same content returns the stored image (a zero
// Created matches any), with different content it fails. img.Revoked and
// img.Outdated are ignored. A Parent must be in the catalog and not revoked.
//
// With img.InputDigest set the image enters the bake cache as in PublishArchive:
// if another image holds those inputs already (or wins a concurrent publish), that
// image is returned instead.
func (c *Catalog) Publish(ctx context.Context, img contract.Image) (contract.Image, error) {
	clearMarks(&img)
	if !idRE.MatchString(img.ID) {
		return contract.Image{}, fmt.Errorf("publish image: invalid image ID %q: derive one like img-0123456789ab (letters, digits, '.', '_', '-')", img.ID)
	}
	if err := checkService(img.Service); err != nil {
		return contract.Image{}, fmt.Errorf("publish image %s: %w", img.ID, err)
	}
	if err := checkInputDigest(img.InputDigest); err != nil {
		return contract.Image{}, fmt.Errorf("publish image %s: %w", img.ID, err)
	}
	if img.Archive != "" {
		ok, err := c.bucket.Exists(ctx, img.Archive)
		if err != nil {
			return contract.Image{}, fmt.Errorf("publish image %s: %w", img.ID, err)
		}
		if !ok {
			return contract.Image{}, fmt.Errorf("publish image %s: archive %s is not in the catalog; publish local images with their archive (PublishArchive, imago image import)", img.ID, img.Archive)
		}
	}
	if img.InputDigest != "" {
		if w, ok, err := c.cachedWinner(ctx, img); err != nil || ok {
			return w, err
		}
	}
	existing, err := c.Get(ctx, img.ID)
	switch {
	case err == nil:
		if err := sameRecord(existing, img); err != nil {
			return contract.Image{}, err
		}
		return c.finishPublish(ctx, existing, img.InputDigest)
	case !errors.Is(err, ErrNotFound):
		return contract.Image{}, err
	}
	if err := c.checkParent(ctx, img); err != nil {
		return contract.Image{}, err
	}
	if img.Created.IsZero() {
		img.Created = time.Now().UTC()
	}
	if err := c.create(ctx, recordKey(img.ID), img); err != nil {
		if !isExists(err) {
			return contract.Image{}, fmt.Errorf("record image %s: %w", img.ID, err)
		}
		// Somebody published this ID meanwhile: fine if it is the same image.
		existing, err := c.Get(ctx, img.ID)
		if err != nil {
			return contract.Image{}, err
		}
		if err := sameRecord(existing, img); err != nil {
			return contract.Image{}, err
		}
		img = existing
	}
	return c.finishPublish(ctx, img, img.InputDigest)
}

// sameRecord reports (as an error saying what differs) whether the stored record
// differs from the one a caller publishes. A zero Created in want matches any.
func sameRecord(stored, want contract.Image) error {
	if want.Created.IsZero() {
		want.Created = stored.Created
	}
	a, b := recordFields(stored), recordFields(want)
	var diff []string
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			diff = append(diff, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, k)
		}
	}
	if len(diff) == 0 {
		return nil
	}
	sort.Strings(diff)
	return fmt.Errorf("image %s is already in the catalog with different content (%s differ); image records are immutable: derive a new ID from what changed", stored.ID, strings.Join(diff, ", "))
}

func recordFields(img contract.Image) map[string]json.RawMessage {
	clearMarks(&img)
	img.Created = img.Created.UTC()
	data, _ := json.Marshal(img)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(data, &m)
	return m
}

// checkParent refuses to publish img on a missing or revoked base.
func (c *Catalog) checkParent(ctx context.Context, img contract.Image) error {
	if img.Parent == "" {
		return nil
	}
	if img.Parent == img.ID {
		return fmt.Errorf("publish image %s: an image cannot be its own parent", img.ID)
	}
	parent, err := c.Get(ctx, img.Parent)
	if err != nil {
		return fmt.Errorf("publish image %s: base image: %w", img.ID, err)
	}
	if err := parent.Usable(); err != nil {
		return fmt.Errorf("publish image %s: base %w; bake it again on a usable base", img.ID, err)
	}
	return nil
}

// finishPublish completes the publication of a recorded image: it enters img in
// the ancestry index and, with an input digest, in the bake cache. Both steps are
// idempotent, so publishing again after a crash repairs them. It returns the
// image the caller gets: img, or the bake cache's winner.
func (c *Catalog) finishPublish(ctx context.Context, img contract.Image, inputDigest string) (contract.Image, error) {
	if err := img.Usable(); err != nil {
		return img, fmt.Errorf("publish image %s: an identical %w; change the build inputs to publish a new image", img.ID, err)
	}
	if img.Parent != "" {
		if err := c.create(ctx, childKey(img.Parent, img.ID), childLink{Parent: img.Parent, Child: img.ID}); err != nil && !isExists(err) {
			return contract.Image{}, fmt.Errorf("record image %s as a child of %s: %w", img.ID, img.Parent, err)
		}
	}
	if inputDigest == "" {
		return img, nil
	}
	return c.claimInput(ctx, img, inputDigest)
}

// Get returns image id, with Revoked, Outdated, Deprecated and Deleted filled.
func (c *Catalog) Get(ctx context.Context, id string) (contract.Image, error) {
	img, err := c.record(ctx, id)
	if err != nil {
		return contract.Image{}, err
	}
	if img.Revoked, err = c.revocation(ctx, id); err != nil {
		return contract.Image{}, err
	}
	if img.Outdated, err = c.outdated(ctx, id); err != nil {
		return contract.Image{}, err
	}
	if img.Deprecated, err = c.deprecation(ctx, id); err != nil {
		return contract.Image{}, err
	}
	if img.Deleted, err = c.tombstone(ctx, id); err != nil {
		return contract.Image{}, err
	}
	return img, nil
}

// record reads the stored record of id alone.
func (c *Catalog) record(ctx context.Context, id string) (contract.Image, error) {
	if !idRE.MatchString(id) {
		return contract.Image{}, fmt.Errorf("image %q: %w in the catalog: image IDs look like img-0123456789ab (list images with: imago image list)", id, ErrNotFound)
	}
	var img contract.Image
	err := c.readJSON(ctx, recordKey(id), &img)
	if isNotFound(err) {
		return contract.Image{}, fmt.Errorf("image %s: %w in the catalog (list images with: imago image list)", id, ErrNotFound)
	}
	if err != nil {
		return contract.Image{}, fmt.Errorf("read image %s: %w", id, err)
	}
	clearMarks(&img)
	return img, nil
}

func (c *Catalog) revocation(ctx context.Context, id string) (*contract.Revocation, error) {
	var r contract.Revocation
	err := c.readJSON(ctx, revocationKey(id), &r)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read revocation of image %s: %w", id, err)
	}
	return &r, nil
}

func (c *Catalog) outdated(ctx context.Context, id string) (*contract.Outdated, error) {
	var o contract.Outdated
	err := c.readJSON(ctx, outdatedKey(id), &o)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outdated mark of image %s: %w", id, err)
	}
	return &o, nil
}

// List returns the images of service (all services when empty), newest first,
// with Revoked, Outdated, Deprecated and Deleted filled. It lists the catalog's records, revocations
// and outdated marks once each and reads every object once, several at a time.
func (c *Catalog) List(ctx context.Context, service string) ([]contract.Image, error) {
	keys, err := c.listKeys(ctx, "images/")
	if err != nil {
		return nil, err
	}
	var (
		revoked  map[string]*contract.Revocation
		outdated map[string]*contract.Outdated
		life     lifecycleMarks
		marksErr error
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() { // the marks are few; read them while the records are read
		defer wg.Done()
		if revoked, marksErr = c.revocations(ctx); marksErr == nil {
			outdated, marksErr = c.outdatedMarks(ctx)
		}
		if marksErr == nil {
			life, marksErr = c.lifecycleMarks(ctx)
		}
	}()
	ids := idsOf(keys, "images/")
	imgs := make([]contract.Image, len(ids))
	err = parallel(ctx, len(ids), func(ctx context.Context, i int) error {
		var err error
		imgs[i], err = c.record(ctx, ids[i])
		if errors.Is(err, ErrNotFound) {
			err = nil // deleted behind our back
		}
		return err
	})
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if marksErr != nil {
		return nil, marksErr
	}
	var out []contract.Image
	for _, img := range imgs {
		if img.ID == "" || (service != "" && img.Service != service) {
			continue
		}
		img.Revoked, img.Outdated = revoked[img.ID], outdated[img.ID]
		img.Deprecated, img.Deleted = life.deprecated[img.ID], life.deleted[img.ID]
		out = append(out, img)
	}
	sortNewestFirst(out)
	return out, nil
}

// idsOf turns keys "<prefix><id>.json" into ids, skipping anything else.
func idsOf(keys []string, prefix string) []string {
	var ids []string
	for _, k := range keys {
		id, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), ".json")
		if ok && idRE.MatchString(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func sortNewestFirst(imgs []contract.Image) {
	sort.Slice(imgs, func(i, j int) bool {
		if !imgs[i].Created.Equal(imgs[j].Created) {
			return imgs[i].Created.After(imgs[j].Created)
		}
		return imgs[i].ID < imgs[j].ID
	})
}

// OpenArchive opens the archive of a local image as a stream. Its bytes are the
// bucket's, unchecked: readers verify them against img.Digest (image.Unpack does)
// before they trust them.
func (c *Catalog) OpenArchive(ctx context.Context, img contract.Image) (io.ReadCloser, error) {
	if img.Archive == "" {
		return nil, fmt.Errorf("image %s has no local archive (builder %s); the local provider cannot run it", img.ID, img.Builder)
	}
	r, err := c.bucket.NewReader(ctx, img.Archive, nil)
	if err != nil {
		return nil, fmt.Errorf("read archive of image %s: %w", img.ID, err)
	}
	return r, nil
}

// clearMarks empties what Get and List fill from other objects (revocation,
// outdated, deprecation and tombstone marks): a record never stores them.
func clearMarks(img *contract.Image) {
	img.Revoked, img.Outdated, img.Deprecated, img.Deleted = nil, nil, nil, nil
}
