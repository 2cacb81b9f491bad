package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
)

// The bake cache maps (service, input digest) to the one image built from those
// inputs. Generation 1 lives at inputs/<service>/<digest>.json; it is claimed with
// create-if-not-exist, so of concurrent publishes exactly one wins and the others
// return the winner. Revocation is final, so once generation n's image is revoked
// the next bake of the same inputs claims generation n+1 at
// inputs/<service>/<digest>/<n+1>.json, and so on.

// inputEntry is an object of the bake cache.
type inputEntry struct {
	Service     string    `json:"service"`
	InputDigest string    `json:"inputDigest"`
	ImageID     string    `json:"imageId"`
	Generation  int       `json:"generation"`
	Time        time.Time `json:"time"`
}

func inputKey(service, digest string, gen int) string {
	if gen <= 1 {
		return "inputs/" + service + "/" + digest + ".json"
	}
	return fmt.Sprintf("inputs/%s/%s/%06d.json", service, digest, gen)
}

func checkInputDigest(d string) error {
	if d != "" && !digestRE.MatchString(d) {
		return fmt.Errorf("invalid input digest %q: expected something like sha256:<hex>", d)
	}
	return nil
}

// inputHead returns the latest generation of the bake cache entry for the inputs
// (0 when there is none) and its image. img is nil when the entry names an image
// that is missing from the catalog; the next publish then claims a new generation.
func (c *Catalog) inputHead(ctx context.Context, service, digest string) (gen int, img *contract.Image, err error) {
	var e inputEntry
	err = c.readJSON(ctx, inputKey(service, digest, 1), &e)
	if isNotFound(err) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read bake cache of %s: %w", service, err)
	}
	gen = 1
	img, err = c.inputImage(ctx, e.ImageID)
	if err != nil || (img != nil && img.Revoked == nil && img.InputDigest == digest) {
		// A later generation exists only once this one's image is revoked or
		// gone, or (otherFormat) of another format: one published for other
		// inputs of the same files.
		return gen, img, err
	}
	prefix := "inputs/" + service + "/" + digest + "/"
	keys, err := c.listKeys(ctx, prefix)
	if err != nil {
		return 0, nil, err
	}
	latest := ""
	for _, k := range keys {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(k, prefix), ".json"))
		if err == nil && strings.HasSuffix(k, ".json") && n > gen {
			gen, latest = n, k
		}
	}
	if latest == "" {
		return gen, img, nil
	}
	if err := c.readJSON(ctx, latest, &e); err != nil {
		return 0, nil, fmt.Errorf("read bake cache of %s: %w", service, err)
	}
	img, err = c.inputImage(ctx, e.ImageID)
	return gen, img, err
}

func (c *Catalog) inputImage(ctx context.Context, id string) (*contract.Image, error) {
	img, err := c.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &img, nil
}

// FindByInputDigest returns the image of service built from inputs inputDigest.
// When there is none it fails with ErrNotFound. When the image is revoked it
// returns it (with Revoked set) and an error matching both ErrNotFound and
// ErrRevoked: a cache lookup treats it as a miss, and the next publish for these
// inputs takes its place.
func (c *Catalog) FindByInputDigest(ctx context.Context, service, inputDigest string) (contract.Image, error) {
	if err := checkService(service); err != nil {
		return contract.Image{}, fmt.Errorf("find image by inputs: %w", err)
	}
	if inputDigest == "" {
		return contract.Image{}, fmt.Errorf("find image of %s by inputs: an input digest is required", service)
	}
	if err := checkInputDigest(inputDigest); err != nil {
		return contract.Image{}, fmt.Errorf("find image of %s by inputs: %w", service, err)
	}
	gen, img, err := c.inputHead(ctx, service, inputDigest)
	if err != nil {
		return contract.Image{}, err
	}
	if gen == 0 || img == nil {
		return contract.Image{}, fmt.Errorf("no image of %s built from inputs %s: %w in the catalog (a bake publishes one)", service, inputDigest, ErrNotFound)
	}
	if err := img.Usable(); err != nil {
		return *img, fmt.Errorf("no usable image of %s built from inputs %s (%w in the bake cache): %w; bake again to publish a replacement", service, inputDigest, ErrNotFound, err)
	}
	return *img, nil
}

// cachedWinner returns the usable image other than img that already holds img's
// inputs, if any: publishing img then only returns it. An image of another
// format does not hold them (see otherFormat).
func (c *Catalog) cachedWinner(ctx context.Context, img contract.Image) (contract.Image, bool, error) {
	_, w, err := c.inputHead(ctx, img.Service, img.InputDigest)
	if err != nil {
		return contract.Image{}, false, err
	}
	if w == nil || w.ID == img.ID || w.Revoked != nil || otherFormat(*w, img) {
		return contract.Image{}, false, nil
	}
	return *w, true, nil
}

// claimInput enters img (recorded, usable) in the bake cache for inputDigest and
// returns the image that holds the inputs afterwards: img, or the winner of a race.
func (c *Catalog) claimInput(ctx context.Context, img contract.Image, inputDigest string) (contract.Image, error) {
	for attempt := 0; attempt < 100; attempt++ {
		gen, cur, err := c.inputHead(ctx, img.Service, inputDigest)
		if err != nil {
			return contract.Image{}, err
		}
		if gen > 0 && cur != nil && (cur.ID == img.ID || cur.Revoked == nil && !otherFormat(*cur, img)) {
			return *cur, nil
		}
		e := inputEntry{Service: img.Service, InputDigest: inputDigest, ImageID: img.ID, Generation: gen + 1, Time: time.Now().UTC()}
		err = c.create(ctx, inputKey(img.Service, inputDigest, gen+1), e)
		if err == nil {
			return img, nil
		}
		if !isExists(err) {
			return contract.Image{}, fmt.Errorf("record image %s in the bake cache: %w", img.ID, err)
		}
		// Another publish claimed this generation first: look again.
	}
	return contract.Image{}, fmt.Errorf("record image %s in the bake cache: too much contention on inputs %s; try again", img.ID, inputDigest)
}

// otherFormat reports whether the image a bake-cache entry names is of another
// format than img, published for the same inputs (whose digest covers the
// format). Only a catalog from before the image ID covered the format has such
// an entry: it handed an OCI or VM bake the local image of the same files. A
// publish of the right format (bake --force) takes its place, as it takes a
// revoked image's.
func otherFormat(entry, img contract.Image) bool {
	return Identity(entry).Format != Identity(img).Format
}
