package vmimagetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/router"
)

// Main is the TestMain of a VM driver's tests: routers the driver starts
// re-execute the test binary and serve; otherwise a catalog in a temporary
// directory gets Hello's v1 and v2, set (the test's package variables) gets
// them, the tests run, and Main exits with their code.
func Main(m *testing.M, name string, set func(*catalog.Catalog, map[string]contract.Image)) {
	router.RunIfChild()
	tmp, err := os.MkdirTemp("", "imago-"+name+"-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "file://"+filepath.Join(tmp, "catalog"))
	if err == nil {
		var imgs map[string]contract.Image
		if imgs, err = Hello(ctx, cat, tmp, "v1", "v2"); err == nil {
			set(cat, imgs)
			code = m.Run()
		}
		cat.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s tests: %v\n", name, err)
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}
