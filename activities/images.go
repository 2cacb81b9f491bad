package activities

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// Images is where the local provider finds images: the catalog, and the images a
// bake has built but not yet published (a bake tests an image before the catalog
// lists it). BakeBuild leaves their records in Home/bakes/<service>/<build>/done.json.
type Images struct {
	Catalog *catalog.Catalog
	Home    string
}

// Get returns a published image, or a built one awaiting its test.
func (s Images) Get(ctx context.Context, id string) (contract.Image, error) {
	img, err := s.Catalog.Get(ctx, id)
	if err == nil || !errors.Is(err, catalog.ErrNotFound) {
		return img, err
	}
	matches, _ := filepath.Glob(filepath.Join(s.Home, "bakes", "*", "*", "done.json"))
	for _, m := range matches {
		var res contract.BakeBuildResult
		if readJSON(m, &res) == nil && res.Image.ID == id && res.ArchivePath != "" {
			return res.Image, nil
		}
	}
	return img, err
}

// OpenArchive opens a catalog archive, or a built image's archive file.
func (s Images) OpenArchive(ctx context.Context, img contract.Image) (io.ReadCloser, error) {
	if filepath.IsAbs(img.Archive) {
		return os.Open(img.Archive)
	}
	return s.Catalog.OpenArchive(ctx, img)
}
