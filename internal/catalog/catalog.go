// Package catalog records imago's images on a gocloud blob bucket
// (IMAGO_CATALOG_URL: file://, s3://, gs://, azblob://, mem://).
//
// Layout of the bucket:
//
//	archives/<sha256>.tar.gz   local image archives, content-addressed
//	images/<id>.json           image records, immutable once written
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// catalogs, the local default
	_ "gocloud.dev/blob/memblob"  // mem:// catalogs, for tests
	"gocloud.dev/gcerrors"

	"github.com/imago/imago/internal/image"
)

// ErrNotFound is returned (wrapped) when an image does not exist.
var ErrNotFound = errors.New("not found")

// Image is an immutable image record.
type Image struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Digest      string            `json:"digest"`                // content digest of the archive
	InputDigest string            `json:"inputDigest,omitempty"` // digest of the bake inputs
	Parent      string            `json:"parent,omitempty"`      // base image ID
	Builder     string            `json:"builder"`               // "import", "imago-local", "amazon-ebs", ...
	Archive     string            `json:"archive,omitempty"`     // blob key of a local archive
	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Artifacts   map[string]string `json:"artifacts,omitempty"` // e.g. region -> AMI
	Labels      map[string]string `json:"labels,omitempty"`
	Created     time.Time         `json:"created"`
}

// Catalog is a handle on the image catalog.
type Catalog struct {
	bucket *blob.Bucket
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
	return &Catalog{bucket: b}, nil
}

// Close closes the bucket.
func (c *Catalog) Close() error { return c.bucket.Close() }

func archiveKey(digest string) string {
	return "archives/" + strings.TrimPrefix(digest, "sha256:") + ".tar.gz"
}

func recordKey(id string) string { return "images/" + id + ".json" }

// Import packs dir as a local image of service and records it. Importing the same
// tree twice returns the same image.
func (c *Catalog) Import(ctx context.Context, dir, service string, entrypoint []string, labels map[string]string) (Image, error) {
	if service == "" {
		return Image{}, fmt.Errorf("import image: a service name is required (--service)")
	}
	if len(entrypoint) == 0 {
		return Image{}, fmt.Errorf("import image: an entrypoint is required (--entrypoint, e.g. ./hello)")
	}
	archive, err := image.Pack(dir)
	if err != nil {
		return Image{}, err
	}
	return c.PublishArchive(ctx, archive, Image{Service: service, Entrypoint: entrypoint, Builder: "import", Labels: labels})
}

// PublishArchive stores a local image archive and records img for it. The image ID
// is derived from the archive's digest together with the service and entrypoint, so
// the same inputs always give the same ID and publishing twice is harmless.
func (c *Catalog) PublishArchive(ctx context.Context, archive []byte, img Image) (Image, error) {
	img.Digest = image.Digest(archive)
	img.Archive = archiveKey(img.Digest)
	img.ID = image.ID(img.Digest, img.Service, img.Entrypoint)
	if existing, err := c.Get(ctx, img.ID); err == nil {
		return existing, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Image{}, err
	}
	if err := c.bucket.WriteAll(ctx, img.Archive, archive, &blob.WriterOptions{ContentType: "application/gzip"}); err != nil {
		return Image{}, fmt.Errorf("store image archive: %w", err)
	}
	if img.Created.IsZero() {
		img.Created = time.Now().UTC()
	}
	return img, c.put(ctx, img)
}

func (c *Catalog) put(ctx context.Context, img Image) error {
	data, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	if err := c.bucket.WriteAll(ctx, recordKey(img.ID), data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("record image %s: %w", img.ID, err)
	}
	return nil
}

// Get returns the record of image id.
func (c *Catalog) Get(ctx context.Context, id string) (Image, error) {
	data, err := c.bucket.ReadAll(ctx, recordKey(id))
	if gcerrors.Code(err) == gcerrors.NotFound {
		return Image{}, fmt.Errorf("image %s: %w in the catalog (list images with: imago image list)", id, ErrNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("read image %s: %w", id, err)
	}
	var img Image
	if err := json.Unmarshal(data, &img); err != nil {
		return Image{}, fmt.Errorf("image record %s is corrupt: %w", id, err)
	}
	return img, nil
}

// List returns the images of service (all services when empty), newest first.
func (c *Catalog) List(ctx context.Context, service string) ([]Image, error) {
	var out []Image
	it := c.bucket.List(&blob.ListOptions{Prefix: "images/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		id := strings.TrimSuffix(strings.TrimPrefix(obj.Key, "images/"), ".json")
		img, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if service == "" || img.Service == service {
			out = append(out, img)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// OpenArchive opens the archive of a local image.
func (c *Catalog) OpenArchive(ctx context.Context, img Image) (io.ReadCloser, error) {
	if img.Archive == "" {
		return nil, fmt.Errorf("image %s has no local archive (builder %s); the local provider cannot run it", img.ID, img.Builder)
	}
	data, err := c.bucket.ReadAll(ctx, img.Archive)
	if err != nil {
		return nil, fmt.Errorf("read archive of image %s: %w", img.ID, err)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}
