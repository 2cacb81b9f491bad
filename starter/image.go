package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images in the catalog"}
	cmd.AddCommand(newImageImportCmd(), newImageListCmd())
	return cmd
}

func newImageImportCmd() *cobra.Command {
	var service, entrypoint string
	cmd := &cobra.Command{
		Use:   "import DIR --service S --entrypoint CMD",
		Short: "Package a directory as a local image and print its ID",
		Long: `Packages DIR as a content-addressed local image in the catalog
(IMAGO_CATALOG_URL, default file://$IMAGO_HOME/catalog). The same tree, service
and entrypoint always give the same image ID.`,
		Example: `  go build -ldflags "-X main.version=v2" -o build/hello ./examples/hello
  imago image import build --service hello --entrypoint ./hello`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if service == "" || strings.TrimSpace(entrypoint) == "" {
				return usageError{fmt.Errorf("--service and --entrypoint are required, e.g. --service hello --entrypoint ./hello")}
			}
			cfg := app.ConfigFromEnv()
			cat, err := catalog.Open(cmd.Context(), cfg.CatalogURL)
			if err != nil {
				return err
			}
			defer cat.Close()
			img, err := cat.Import(cmd.Context(), a[0], service, strings.Fields(entrypoint), nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "service the image belongs to (required)")
	cmd.Flags().StringVar(&entrypoint, "entrypoint", "", "command to start an instance, relative to the image root (required)")
	return cmd
}

func newImageListCmd() *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:     "list [--service S]",
		Short:   "List images, newest first",
		Example: `  imago image list --service hello -o json`,
		Args:    args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if err := out.check(); err != nil {
			return err
		}
		cfg := app.ConfigFromEnv()
		cat, err := catalog.Open(cmd.Context(), cfg.CatalogURL)
		if err != nil {
			return err
		}
		defer cat.Close()
		imgs, err := cat.List(cmd.Context(), service)
		if err != nil {
			return err
		}
		if out.json() {
			if imgs == nil {
				imgs = []catalog.Image{}
			}
			return writeJSON(cmd.OutOrStdout(), imgs)
		}
		tw := table(cmd.OutOrStdout())
		fmt.Fprintln(tw, "ID\tSERVICE\tBUILDER\tENTRYPOINT\tCREATED")
		for _, img := range imgs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.ID, img.Service, img.Builder, strings.Join(img.Entrypoint, " "), img.Created.Local().Format(time.DateTime))
		}
		return tw.Flush()
	}
	cmd.Flags().StringVar(&service, "service", "", "only images of this service")
	return cmd
}
