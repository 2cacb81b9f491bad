package app

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/vmimage"
)

// qemuURL is the provider of the VM tests: TCG (KVM may hang here), 128 MB guests.
const qemuURL = "qemu://?accel=tcg&memory=128"

// useQemu reopens e's dependencies with the qemu provider and starts the
// in-process worker on them.
func (e *env) useQemu() {
	e.openQemu()
	e.startWorker()
}

// openQemu reopens e's dependencies (the test's view of the home) with the
// qemu provider.
func (e *env) openQemu() {
	t := e.t
	e.cfg.ProviderURL = qemuURL
	deps, err := OpenDeps(context.Background(), e.cfg)
	require.NoError(t, err)
	e.deps.Close()
	e.deps = deps
	t.Cleanup(func() { deps.Close() })
	require.Equal(t, "qemu", deps.Provider.Name())
	deps.Activities.Temporal = e.client // the reaper asks Temporal which fleets running rollouts own
}

// helloVMBake is examples/hello/bake-vm.yaml with VERSION version, its test
// checking that version.
func helloVMBake(t *testing.T, version string, mutate func(*spec.Bake)) spec.Bake {
	_, file, _, _ := runtime.Caller(0)
	b, err := spec.LoadBake(filepath.Join(filepath.Dir(file), "..", "..", "examples", "hello", "bake-vm.yaml"))
	require.NoError(t, err)
	b.Variables = map[string]string{"VERSION": version}
	b.Test.Checks = []contract.Check{{Path: "/", ExpectBody: version}}
	if mutate != nil {
		mutate(&b)
	}
	require.NoError(t, b.Normalize())
	return b
}

// TestVMKernelBaseLineage: a kernel imported as a base image (what `imago image
// import-kernel` stores) is the kernel of the VM images baked on its channel;
// a new kernel on the channel marks them outdated, and the same bake again
// builds a new image on the new kernel (not the cache's), which boots as a
// real VM under QEMU.
func TestVMKernelBaseLineage(t *testing.T) {
	e := newEnv(t)
	e.useQemu()
	ctx := context.Background()
	cat := e.deps.Catalog
	host, err := vmimage.FindKernel()
	require.NoError(t, err)

	publishKernel := func(k vmimage.Kernel) contract.Image {
		archive, rec, err := vmimage.KernelImage(k, "kernel")
		require.NoError(t, err)
		img, err := cat.PublishArchive(ctx, archive, rec)
		require.NoError(t, err)
		return img
	}
	// kernelFiles unpacks a kernel base as a bake does and returns the digests
	// of its vmlinuz and initrd.
	kernelFiles := func(base contract.Image) (string, string) {
		r, err := cat.OpenArchive(ctx, base)
		require.NoError(t, err)
		defer r.Close()
		dir := filepath.Join(t.TempDir(), "k")
		k, err := vmimage.UnpackKernel(r, base, dir)
		require.NoError(t, err)
		defer vmimage.RemoveTree(dir)
		kd, err := vmimage.FileDigest(k.Vmlinuz)
		require.NoError(t, err)
		id, err := vmimage.FileDigest(k.Initrd)
		require.NoError(t, err)
		return kd, id
	}
	// bootFiles are the digests of the kernel and initrd a VM image boots with.
	bootFiles := func(img contract.Image) (string, string) {
		kd, err := vmimage.FileDigest(img.Artifacts[vmimage.ArtifactKernel])
		require.NoError(t, err)
		id, err := vmimage.FileDigest(img.Artifacts[vmimage.ArtifactInitrd])
		require.NoError(t, err)
		return kd, id
	}

	// Kernel 1: the host's kernel with the initrd imago writes.
	k1 := publishKernel(vmimage.Kernel{Vmlinuz: host.Vmlinuz})
	_, err = cat.MoveChannel(ctx, "kernel", "stable", k1.ID, catalog.MoveOptions{By: "test"})
	require.NoError(t, err)

	bake := helloVMBake(t, "v1", func(b *spec.Bake) { b.Base = &contract.ImageRef{Service: "kernel", Channel: "stable"} })
	start := time.Now()
	res1, err := e.bake(bake)
	requireOK(t, err)
	t.Logf("VM bake on kernel base 1: %s", time.Since(start).Round(time.Millisecond))
	v1, err := cat.Get(ctx, res1.ImageID)
	require.NoError(t, err)
	assert.Equal(t, k1.ID, v1.Parent, "the VM image is the kernel base's child")
	k1Kernel, k1Initrd := kernelFiles(k1)
	bk, bi := bootFiles(v1)
	assert.Equal(t, k1Kernel, bk, "the VM image boots the kernel base's kernel")
	assert.Equal(t, k1Initrd, bi, "and its initrd")

	// A kernel base is for VM images only.
	_, err = e.bake(helloVMBake(t, "v1", func(b *spec.Bake) {
		b.Format, b.Base = spec.FormatLocal, &contract.ImageRef{Service: "kernel", Channel: "stable"}
	}))
	require.Error(t, err)
	assert.Contains(t, errReason(err), "is a kernel base (imago image import-kernel): it is the base of format: vm bakes only")

	// Kernel 2: the same kernel, another initrd (imago's, then padding, which
	// the kernel's initramfs unpacker skips): a new kernel base.
	initrd2 := filepath.Join(t.TempDir(), "initrd2.img")
	data, err := os.ReadFile(v1.Artifacts[vmimage.ArtifactInitrd])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(initrd2, append(data, make([]byte, 512)...), 0o600))
	k2 := publishKernel(vmimage.Kernel{Vmlinuz: host.Vmlinuz, Initrd: initrd2})
	require.NotEqual(t, k1.ID, k2.ID)
	moved, err := cat.MoveChannel(ctx, "kernel", "stable", k2.ID, catalog.MoveOptions{By: "test", Reason: "new initrd"})
	require.NoError(t, err)
	assert.Equal(t, []string{v1.ID}, moved.Outdated, "the VM image built on kernel 1 is outdated")
	v1, err = cat.Get(ctx, v1.ID)
	require.NoError(t, err)
	require.NotNil(t, v1.Outdated)
	assert.Equal(t, "kernel/stable", v1.Outdated.Base)
	assert.Equal(t, k2.ID, v1.Outdated.NewBase)

	// The same bake again: its input digest names kernel 2, so no cache hit,
	// and the image (its files name the kernel) is a new one.
	start = time.Now()
	res2, err := e.bake(bake)
	requireOK(t, err)
	t.Logf("VM bake on kernel base 2: %s", time.Since(start).Round(time.Millisecond))
	assert.False(t, res2.Cached)
	assert.NotEqual(t, res1.InputDigest, res2.InputDigest)
	require.NotEqual(t, v1.ID, res2.ImageID, "a new kernel makes a new image")
	v2, err := cat.Get(ctx, res2.ImageID)
	require.NoError(t, err)
	assert.Equal(t, k2.ID, v2.Parent)
	assert.Nil(t, v2.Outdated)
	k2Kernel, k2Initrd := kernelFiles(k2)
	bk, bi = bootFiles(v2)
	assert.Equal(t, k2Kernel, bk)
	assert.Equal(t, k2Initrd, bi, "the rebuilt VM image boots kernel 2's initrd")
	assert.NotEqual(t, k1Initrd, bi)

	// It boots: one VM on the qemu provider answers its health check.
	start = time.Now()
	fleet, err := e.deps.Provider.Provision(ctx, contract.ProvisionRequest{
		Token: "kernel-2-boot", Service: "hello-vm", Environment: "test", ImageID: v2.ID, Size: 1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { e.deps.Provider.Terminate(context.Background(), fleet.ID) })
	require.Len(t, fleet.Instances, 1)
	addr := fleet.Instances[0].Address
	c := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "the VM on kernel 2 did not answer on %s within 3m: %v", addr, err)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a VM on kernel base 2 healthy after %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, e.deps.Provider.Terminate(ctx, fleet.ID))
}
