package activities

import (
	"context"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/vmimage"
)

// kernelBase returns the base of a format: vm bake when it is a kernel base
// (vmimage.IsKernelBase), nil when the bake has no base or another kind.
func (a *Activities) kernelBase(ctx context.Context, baseImageID string) (*contract.Image, error) {
	if baseImageID == "" {
		return nil, nil
	}
	base, err := a.Catalog.Get(ctx, baseImageID)
	if err != nil {
		return nil, notFoundIsPermanent(err)
	}
	if !vmimage.IsKernelBase(base) {
		return nil, nil
	}
	return &base, nil
}

// vmKernelIdentity is what the input digest of a format: vm bake records of
// its kernel (vmimage.KernelIdentity): a new kernel is a new build.
func (a *Activities) vmKernelIdentity(ctx context.Context, baseImageID string) (string, error) {
	base, err := a.kernelBase(ctx, baseImageID)
	if err != nil {
		return "", err
	}
	id, err := vmimage.KernelIdentity(base)
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError("format vm: "+err.Error(), contract.ErrTemplate, nil)
	}
	return id, nil
}

// prepareVMKernel finds the kernel a format: vm bake boots with: its kernel
// base's, unpacked from the catalog into a directory of its own, or (zero
// Kernel) the host's, which vmimage.Build finds. It adds the kernel's identity
// to the image's files (vmimage.KernelMarker) through cfg, the imago-local
// builder's configuration, so the same program on another kernel is another
// image. done removes what it wrote.
func (a *Activities) prepareVMKernel(ctx context.Context, cfg map[string]any, baseImageID string) (k vmimage.Kernel, done func(), err error) {
	tmp, err := os.MkdirTemp("", "imago-vm-kernel-")
	if err != nil {
		return k, func() {}, err
	}
	done = func() { vmimage.RemoveTree(tmp) }
	fail := func(err error) (vmimage.Kernel, func(), error) { done(); return vmimage.Kernel{}, func() {}, err }
	base, err := a.kernelBase(ctx, baseImageID)
	if err != nil {
		return fail(err)
	}
	if base != nil {
		r, err := a.Catalog.OpenArchive(ctx, *base)
		if err != nil {
			return fail(err)
		}
		k, err = vmimage.UnpackKernel(r, *base, filepath.Join(tmp, "kernel"))
		r.Close()
		if err != nil {
			return fail(temporal.NewNonRetryableApplicationError("format vm: "+err.Error(), contract.ErrTemplate, nil))
		}
	}
	id, err := vmimage.KernelIdentity(base)
	if err != nil {
		return fail(temporal.NewNonRetryableApplicationError("format vm: "+err.Error(), contract.ErrTemplate, nil))
	}
	marker := filepath.Join(tmp, vmimage.KernelMarker)
	if err := os.WriteFile(marker, []byte(id), 0o600); err != nil {
		return fail(err)
	}
	files, _ := cfg["files"].([]string)
	cfg["files"] = append(append([]string(nil), files...), marker)
	if inc, ok := cfg["include"].([]string); ok {
		cfg["include"] = append(append([]string(nil), inc...), vmimage.KernelMarker)
	}
	return k, done, nil
}
