package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
	"github.com/imago/imago/internal/vmimage"
)

// import-kernel stores a kernel base (content-addressed, labelled with its
// version), moves its channel, and a new kernel on the channel marks the VM
// images built on the old one outdated: the catalog's lineage, as for any base.
func TestImportKernelIsABaseWithLineage(t *testing.T) {
	t.Setenv("IMAGO_HOME", t.TempDir())
	t.Setenv("IMAGO_CATALOG_URL", "")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	vmlinuz, initrd1, initrd2 := write("vmlinuz-6.1.0-test", "kernel"), write("initrd-1", "one"), write("initrd-2", "two")

	_, code, err := run(t, "image", "import-kernel", "--initrd", initrd1)
	require.Error(t, err)
	assert.Equal(t, 2, code)
	assert.Contains(t, err.Error(), "--initrd goes with --vmlinuz")

	out, _, err := run(t, "image", "import-kernel", "--vmlinuz", vmlinuz, "--initrd", initrd1, "--channel", "stable")
	require.NoError(t, err)
	k1 := strings.TrimSpace(out)
	assert.Regexp(t, `^img-[0-9a-f]{12}$`, k1)
	// The default kernel is the host's: IMAGO_VM_KERNEL and IMAGO_VM_INITRD here.
	t.Setenv(vmimage.KernelEnv, vmlinuz)
	t.Setenv(vmimage.InitrdEnv, initrd1)
	again, _, err := run(t, "image", "import-kernel")
	require.NoError(t, err)
	assert.Equal(t, k1, strings.TrimSpace(again), "the same kernel and initrd are the same base")

	ctx := context.Background()
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	require.NoError(t, err)
	defer cat.Close()
	base, err := cat.Get(ctx, k1)
	require.NoError(t, err)
	assert.Equal(t, "kernel", base.Service)
	assert.Equal(t, "6.1.0-test", base.Labels[vmimage.LabelKernel])
	assert.True(t, vmimage.IsKernelBase(base))

	// A VM image built on it (what a format: vm bake with base {service:
	// kernel, channel: stable} publishes).
	files := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(files, "app.sh"), []byte("#!/bin/sh\n"), 0o755))
	archive, err := image.Pack(files)
	require.NoError(t, err)
	child, err := cat.PublishArchive(ctx, archive, contract.Image{Service: "hello-vm", Entrypoint: []string{"./app.sh"}, Builder: "imago-local", Parent: k1})
	require.NoError(t, err)

	out, _, err = run(t, "image", "import-kernel", "--vmlinuz", vmlinuz, "--initrd", initrd2, "--channel", "stable", "--reason", "new initrd")
	require.NoError(t, err)
	k2 := strings.Split(strings.TrimSpace(out), "\n")[0]
	assert.NotEqual(t, k1, k2)
	assert.Contains(t, out, "now outdated (built on "+k1+"): 1 images")
	got, err := cat.Get(ctx, child.ID)
	require.NoError(t, err)
	require.NotNil(t, got.Outdated, "the VM image built on the old kernel is outdated")
	assert.Equal(t, k2, got.Outdated.NewBase)
	assert.Equal(t, "kernel/stable", got.Outdated.Base)
}
