// Package vmimagetest makes VM images for the tests of VM providers (qemu,
// libvirt): examples/hello built static per version, packed as a local image,
// turned into a bootable VM image (vmimage.Build) and published to a catalog.
package vmimagetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/vmimage"
)

// Hello builds examples/hello as each version (its main.version) in tmp and
// publishes a VM image of each (service web) to cat, by version.
func Hello(ctx context.Context, cat *catalog.Catalog, tmp string, versions ...string) (map[string]contract.Image, error) {
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "..", "examples", "hello")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := map[string]contract.Image{}
	for _, v := range versions {
		app := filepath.Join(tmp, "app-"+v)
		cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w -X main.version="+v, "-o", filepath.Join(app, "hello"), src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build hello %s: %v\n%s", v, err, b)
		}
		archive, err := image.Pack(app)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(tmp, "hello-"+v+".tar.gz")
		if err := os.WriteFile(path, archive, 0o600); err != nil {
			return nil, err
		}
		entry := []string{"./hello"}
		arts, err := vmimage.Build(ctx, vmimage.BuildInput{Archive: path, Digest: image.Digest(archive), Entrypoint: entry, OutDir: filepath.Join(tmp, "vm-"+v)})
		if err != nil {
			return nil, err
		}
		img, err := cat.PublishArchive(ctx, archive, contract.Image{Service: "web", Builder: "test", Entrypoint: entry, Artifacts: arts})
		if err != nil {
			return nil, err
		}
		out[v] = img
	}
	return out, nil
}
