package local

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// tamperEnv is a driver on a fresh Home over its own file catalog, whose objects
// the test changes behind the catalog's back.
type tamperEnv struct {
	*testEnv
	catDir string
	cat    *catalog.Catalog
}

func newTamperEnv(t *testing.T) *tamperEnv {
	t.Helper()
	e := newEnv(t)
	catDir := filepath.Join(t.TempDir(), "catalog")
	cat, err := catalog.Open(context.Background(), "file://"+catDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e.cfg.Images = cat
	if e.d, err = Open(e.cfg); err != nil {
		t.Fatal(err)
	}
	return &tamperEnv{testEnv: e, catDir: catDir, cat: cat}
}

// replace swaps a catalog object for data, as someone with write access to the
// bucket would.
func (e *tamperEnv) replace(key string, data []byte) {
	e.t.Helper()
	p := filepath.Join(e.catDir, filepath.FromSlash(key))
	tmp := p + ".swap"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		e.t.Fatal(err)
	}
}

// provisionFails provisions img and returns the error, which must be a
// FailedPrecondition, with no fleet, no process and no image tree left.
func (e *tamperEnv) provisionFails(imageID string) error {
	e.t.Helper()
	_, err := e.d.Provision(context.Background(), contract.ProvisionRequest{
		Token: "tok-" + imageID, Service: "web", Environment: "test", ImageID: imageID, Size: 2,
	})
	if err == nil {
		e.t.Fatal("Provision succeeded")
	}
	if code := provider.ErrorCode(err); code != provider.FailedPrecondition {
		e.t.Errorf("error code %v, want FailedPrecondition (not retried): %v", code, err)
	}
	if fleets, lerr := e.d.ListFleets(context.Background(), provider.Filter{}); lerr != nil || len(fleets) != 0 {
		e.t.Errorf("fleets after a refused image: %+v, %v", fleets, lerr)
	}
	if ps, perr := processes(e.home); perr != nil || len(ps) != 0 {
		e.t.Errorf("processes after a refused image: %+v, %v", ps, perr)
	}
	entries, _ := os.ReadDir(filepath.Join(e.home, "images"))
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	if want := imageID + ".lock"; len(names) > 1 || (len(names) == 1 && names[0] != want) {
		e.t.Errorf("images/ holds %v; want at most %s", names, want)
	}
	return err
}

func TestProvisionRefusesAnArchiveSwappedInTheCatalog(t *testing.T) {
	e := newTamperEnv(t)
	ctx := context.Background()
	img, err := e.cat.Import(ctx, appDir, "web", []string{"./hello", "-version=v2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "hello"), []byte("#!/bin/sh\necho pwned\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	evil, err := e.cat.Import(ctx, other, "web", []string{"./hello"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	evilArchive, err := os.ReadFile(filepath.Join(e.catDir, filepath.FromSlash(evil.Archive)))
	if err != nil {
		t.Fatal(err)
	}
	e.replace(img.Archive, evilArchive)

	err = e.provisionFails(img.ID)
	want := "image " + img.ID + " archive does not match its digest: the catalog was modified (the record says " + img.Digest + ", the archive is " + evil.Digest + ")"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Provision = %v\nwant %q", err, want)
	}
}

func TestProvisionRefusesARecordChangedInTheCatalog(t *testing.T) {
	e := newTamperEnv(t)
	ctx := context.Background()
	img, err := e.cat.Import(ctx, appDir, "web", []string{"./hello", "-version=v2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Unpacked and serving once; then someone changes what the record runs.
	f := e.provision("tok-ok", img.ID, 1)
	if err := e.d.Terminate(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	tampered := img
	tampered.Entrypoint = []string{"/bin/sh", "-c", "echo pwned"}
	data, _ := json.Marshal(tampered)
	e.replace("images/"+img.ID+".json", data)

	_, err = e.d.Provision(ctx, contract.ProvisionRequest{Token: "tok-tampered", Service: "web", Environment: "test", ImageID: img.ID, Size: 1})
	if err == nil || provider.ErrorCode(err) != provider.FailedPrecondition ||
		!strings.Contains(err.Error(), "image "+img.ID+" record does not match its ID") || !strings.Contains(err.Error(), "the catalog was modified") {
		t.Fatalf("Provision = %v, want a FailedPrecondition saying the record does not match its ID", err)
	}
	if ps, _ := processes(e.home); len(ps) != 0 {
		t.Errorf("processes started from a tampered record: %+v", ps)
	}
}

func TestProvisionRefusesAnArchiveThatWouldEscape(t *testing.T) {
	e := newTamperEnv(t)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "..", Mode: 0o777},
		{Typeflag: tar.TypeReg, Name: "up/fleets/pwned", Mode: 0o755},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	gz.Close()
	// Published through the catalog, so its digest matches: a malicious publisher.
	img, err := e.cat.PublishArchive(context.Background(), buf.Bytes(), contract.Image{Service: "web", Entrypoint: []string{"./up/fleets/pwned"}, Builder: "import"})
	if err != nil {
		t.Fatal(err)
	}
	err = e.provisionFails(img.ID)
	if want := "image " + img.ID + `: unpack image: symlink "up" → ".." leads outside the image`; !strings.Contains(err.Error(), want) {
		t.Errorf("Provision = %v, want %q", err, want)
	}
	if _, err := os.Lstat(filepath.Join(e.home, "fleets", "pwned")); err == nil {
		t.Error("the archive wrote outside its image")
	}
}
