package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/vmimage"
)

func newImageImportKernelCmd() *cobra.Command {
	var service, vmlinuz, initrd, channel, reason string
	cmd := &cobra.Command{
		Use:   "import-kernel [--service S] [--vmlinuz FILE [--initrd FILE]] [--channel C]",
		Short: "Store a kernel and its initrd as a base image for format: vm bakes and print its ID",
		Long: `Stores a kernel (vmlinuz) and its initrd as a local image of service S
(default kernel) in the catalog: a kernel base. A format: vm bake whose base
names it ({service: kernel, channel: stable} or {id: img-…}) boots with that
kernel instead of the worker's, and is its child in the catalog: moving the
channel to a new kernel marks every VM image built on the old one outdated
(STATE outdated in imago image list), and a campaign or a bake rebuilds them.

Without --vmlinuz it takes the installed Debian cloud kernel
(/boot/vmlinuz-*-cloud-amd64, or IMAGO_VM_KERNEL and IMAGO_VM_INITRD). Without
--initrd it writes imago's small initrd (busybox-static and the kernel's virtio
modules from /lib/modules/<version>; the vmlinuz file must be named
vmlinuz-<version>). The same files always give the same image ID.`,
		Example: `  imago image import-kernel --channel stable
  imago image import-kernel --vmlinuz /boot/vmlinuz-6.1.0-48-cloud-amd64 --channel stable --reason "DSA-5xxx"`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if initrd != "" && vmlinuz == "" {
				return usageError{fmt.Errorf("--initrd goes with --vmlinuz: give the kernel it belongs to")}
			}
			k := vmimage.Kernel{Vmlinuz: vmlinuz, Initrd: initrd}
			if vmlinuz == "" {
				var err error
				if k, err = vmimage.FindKernel(); err != nil {
					return err
				}
			}
			return withCatalog(cmd, func(cat *catalog.Catalog) error {
				img, err := importKernel(cmd.Context(), cat, k, service)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), img.ID)
				if channel == "" {
					return nil
				}
				e, err := cat.MoveChannel(cmd.Context(), service, channel, img.ID, catalog.MoveOptions{By: startedBy(), Reason: reason})
				if err != nil {
					return err
				}
				if len(e.Outdated) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s/%s: %s → %s; now outdated (built on %s): %d images (STATE outdated in imago image list)\n",
						service, channel, e.Previous, img.ID, e.Previous, len(e.Outdated))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&service, "service", "kernel", "service the kernel base belongs to")
	cmd.Flags().StringVar(&vmlinuz, "vmlinuz", "", "the kernel (default: the installed Debian cloud kernel, or IMAGO_VM_KERNEL)")
	cmd.Flags().StringVar(&initrd, "initrd", "", "its initrd (default: one imago writes, with the virtio modules of /lib/modules/<version>)")
	cmd.Flags().StringVar(&channel, "channel", "", "move this channel of the service to the kernel (marks the VM images built on the previous one outdated)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the channel's history (with --channel)")
	_ = cmd.RegisterFlagCompletionFunc("service", completeServices)
	return cmd
}

// importKernel publishes kernel k (and its initrd, or the one imago writes) as
// a kernel base of service (vmimage.KernelImage).
func importKernel(ctx context.Context, cat *catalog.Catalog, k vmimage.Kernel, service string) (contract.Image, error) {
	archive, img, err := vmimage.KernelImage(k, service)
	if err != nil {
		return contract.Image{}, usageError{err}
	}
	return cat.PublishArchive(ctx, archive, img)
}
