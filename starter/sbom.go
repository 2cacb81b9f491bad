package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/sbom"
)

func newImageSBOMCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "sbom ID",
		Short: "Print an image's SBOM: Go modules, Debian packages, every file's SHA-256",
		Long: `Print the software bill of materials the catalog keeps beside a local image:
CycloneDX JSON (the default, as stored) or SPDX 2.3 JSON (-o spdx). It lists
every file with its SHA-256, the modules of each Go binary (debug/buildinfo,
purls pkg:golang/...), and the Debian packages of var/lib/dpkg/status.`,
		Example: `  imago image sbom img-3f2a1c9d0b7e
  imago image sbom img-3f2a1c9d0b7e -o spdx > hello.spdx.json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeImageArg,
	}
	cmd.Flags().StringVarP(&format, "output", "o", sbom.FormatCycloneDX, "SBOM format: cyclonedx or spdx")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{sbom.FormatCycloneDX + "\tCycloneDX JSON", sbom.FormatSPDX + "\tSPDX 2.3 JSON"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if sbom.MediaType(format) == "" {
			return usageError{fmt.Errorf("-o %q: want %s or %s", format, sbom.FormatCycloneDX, sbom.FormatSPDX)}
		}
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			bom, err := cat.SBOM(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return sbom.Write(cmd.OutOrStdout(), bom, format)
		})
	}
	return cmd
}
