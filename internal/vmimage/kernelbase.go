package vmimage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/image"
)

// A kernel base is a local image in the catalog whose files are a kernel and
// its initrd (`imago image import-kernel`): a format: vm bake that names it as
// its base boots with that kernel instead of the host's, and, being its child
// in the catalog, is marked outdated when the base's channel moves to a new
// kernel.
const (
	// LabelKernel marks a kernel base; its value is the kernel's version.
	LabelKernel = "imago.vm/kernel"
	// KernelFile and InitrdFile are a kernel base's two files.
	KernelFile = "vmlinuz"
	InitrdFile = "initrd.img"
	// KernelMarker is a file a VM image's bake adds to the image's files
	// (/app/.imago-vm-kernel in the guest): which kernel the disk boots with.
	// It makes the image's archive, and so its ID, differ per kernel: the same
	// program on a new kernel is a new image.
	KernelMarker = ".imago-vm-kernel"
)

// IsKernelBase tells whether img is a kernel base.
func IsKernelBase(img contract.Image) bool { return img.Labels[LabelKernel] != "" }

// StageKernel writes a kernel base's files into dir: k.Vmlinuz as KernelFile
// and k.Initrd as InitrdFile, or, with no Initrd, the initrd BuildInitrd makes
// for the kernel (its modules from /lib/modules/<version>, busybox-static). It
// returns the kernel's version: the part of the vmlinuz-<version> file name
// after vmlinuz-, or the file's name when it has no such form.
func StageKernel(k Kernel, dir string) (string, error) {
	if k.Vmlinuz == "" {
		return "", errors.New("kernel: no vmlinuz")
	}
	version, err := kernelVersion(k.Vmlinuz)
	if err != nil {
		if k.Initrd == "" {
			return "", fmt.Errorf("%w; or give its initrd too (--initrd FILE)", err)
		}
		version = filepath.Base(k.Vmlinuz)
	}
	if err := copyFile(k.Vmlinuz, filepath.Join(dir, KernelFile)); err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	if k.Initrd != "" {
		err = copyFile(k.Initrd, filepath.Join(dir, InitrdFile))
	} else {
		var bb string
		if bb, err = findBusybox(); err == nil {
			err = BuildInitrd(k.Vmlinuz, bb, filepath.Join(dir, InitrdFile))
		}
	}
	if err != nil {
		return "", fmt.Errorf("kernel initrd: %w", err)
	}
	return version, nil
}

// KernelImage makes the kernel base of k for service: the archive of its files
// (StageKernel) and the record to publish it with (catalog.PublishArchive),
// labelled LabelKernel with the kernel's version.
func KernelImage(k Kernel, service string) ([]byte, contract.Image, error) {
	dir, err := os.MkdirTemp("", "imago-kernel-")
	if err != nil {
		return nil, contract.Image{}, err
	}
	defer os.RemoveAll(dir)
	version, err := StageKernel(k, dir)
	if err != nil {
		return nil, contract.Image{}, err
	}
	archive, err := image.Pack(dir)
	if err != nil {
		return nil, contract.Image{}, err
	}
	return archive, contract.Image{Service: service, Builder: "import-kernel", Labels: map[string]string{LabelKernel: version}}, nil
}

// UnpackKernel unpacks the archive of kernel base img (read from r, checked
// against img.Digest) into dir, which must not exist, and returns its kernel.
// Remove dir with RemoveTree.
func UnpackKernel(r io.Reader, img contract.Image, dir string) (Kernel, error) {
	if !IsKernelBase(img) {
		return Kernel{}, fmt.Errorf("image %s is not a kernel base (no %s label): import one with imago image import-kernel", img.ID, LabelKernel)
	}
	if err := image.Unpack(r, dir, img.Digest, image.Limits{}); err != nil {
		return Kernel{}, fmt.Errorf("kernel base %s: %w", img.ID, err)
	}
	k := Kernel{Vmlinuz: filepath.Join(dir, KernelFile), Initrd: filepath.Join(dir, InitrdFile)}
	for _, f := range []string{k.Vmlinuz, k.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return Kernel{}, fmt.Errorf("kernel base %s: %w", img.ID, err)
		}
	}
	return k, nil
}

// RemoveTree removes dir, which image.Unpack may have left read-only.
func RemoveTree(dir string) error {
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// KernelIdentity is what names a VM image's kernel in its bake's input digest
// and in its KernelMarker: a kernel base's image ID and archive digest, or, for
// the host's kernel (FindKernel), the digests of its vmlinuz and of the initrd
// $IMAGO_VM_INITRD names, if any (an initrd Build writes follows from the
// kernel's version, in the vmlinuz file's name).
func KernelIdentity(base *contract.Image) (string, error) {
	if base != nil {
		return fmt.Sprintf("kernel base %s %s\n", base.ID, base.Digest), nil
	}
	k, err := FindKernel()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "host kernel %s", filepath.Base(k.Vmlinuz))
	for _, f := range []string{k.Vmlinuz, k.Initrd} {
		if f == "" {
			continue
		}
		d, err := fileDigest(f)
		if err != nil {
			return "", fmt.Errorf("kernel: %w", err)
		}
		b.WriteString(" " + d)
	}
	b.WriteString("\n")
	return b.String(), nil
}
