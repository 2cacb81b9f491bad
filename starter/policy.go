package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "What every image rolled out to an environment must have, and must not",
		Long: `An environment's policy is checked by every rollout to it (those of pipelines and
campaigns too) in its resolve step, before anything is provisioned: an image without
signed provenance (--require-provenance; signed by --provenance-key when given), without
an SBOM (--require-sbom), with a package its SBOM lists and --deny-package names
(NAME: any version, NAME@VERSION: that one, NAME@<VERSION: any below it), or older than
--max-age is refused, with the rule and the image named. Policies are kept in the catalog.`,
		Example: `  imago policy set prod --require-sbom --deny-package 'libssl3@<3.0.7' --max-age 90d
  imago policy set prod --require-provenance --provenance-key cosign.pub
  imago policy show
  imago policy show prod -o json
  imago policy delete staging`,
	}
	cmd.AddCommand(newPolicySetCmd(), newPolicyShowCmd(), newPolicyDeleteCmd())
	return cmd
}

func newPolicySetCmd() *cobra.Command {
	var p contract.Policy
	var keyFile string
	cmd := &cobra.Command{
		Use:   "set ENV [--require-provenance [--provenance-key FILE]] [--require-sbom] [--deny-package NAME@<VERSION]... [--max-age 90d]",
		Short: "Set an environment's policy (replacing its previous one)",
		Example: `  imago policy set prod --require-sbom --deny-package 'libssl3@<3.0.7' --deny-package golang.org/x/net@v0.17.0 --max-age 90d
  imago policy set prod --require-provenance --provenance-key cosign.pub`,
		Args: args(cobra.ExactArgs(1)),
	}
	cmd.Flags().BoolVar(&p.RequireProvenance, "require-provenance", false, "the image must have signed provenance")
	cmd.Flags().StringVar(&keyFile, "provenance-key", "", "a PEM public key file: the provenance must be signed with it (needs --require-provenance)")
	cmd.Flags().BoolVar(&p.RequireSBOM, "require-sbom", false, "the image must have an SBOM")
	cmd.Flags().StringArrayVar(&p.DenyPackages, "deny-package", nil, "a package the image's SBOM must not list: NAME, NAME@VERSION or NAME@<VERSION (repeatable)")
	cmd.Flags().Var(days{&p.MaxAge}, "max-age", "the image must be at most this old (90d, 2160h)")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		p.Environment = a[0]
		if keyFile != "" {
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return usageError{fmt.Errorf("--provenance-key: %w", err)}
			}
			p.ProvenanceKey = string(key)
		}
		p.By = startedBy()
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			got, err := cat.SetPolicy(cmd.Context(), p)
			var es contract.FieldErrors
			if errors.As(err, &es) {
				return usageError{errors.New(es[0].Msg)}
			}
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), got)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %s: %s; every rollout to %s checks its image against it before provisioning\n", got.Name(), policyText(got), got.Environment)
			return nil
		})
	}
	return cmd
}

// policyText is a policy's rules in words.
func policyText(p contract.Policy) string {
	var rules []string
	if p.RequireProvenance {
		s := "require signed provenance"
		if p.ProvenanceKey != "" {
			s += " (by its key)"
		}
		rules = append(rules, s)
	}
	if p.RequireSBOM {
		rules = append(rules, "require an SBOM")
	}
	if len(p.DenyPackages) > 0 {
		rules = append(rules, "deny "+strings.Join(p.DenyPackages, ", "))
	}
	if p.MaxAge > 0 {
		rules = append(rules, "max age "+contract.FormatAge(p.MaxAge))
	}
	return strings.Join(rules, "; ")
}

func newPolicyShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show [ENV]",
		Short:   "Show the policies (or one environment's)",
		Example: "  imago policy show\n  imago policy show prod -o json",
		Args:    args(cobra.MaximumNArgs(1)),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			if len(a) == 1 {
				p, err := cat.Policy(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				if out.json() {
					return writeJSON(cmd.OutOrStdout(), p)
				}
				return printPolicies(cmd, []contract.Policy{p})
			}
			ps, err := cat.Policies(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), ps)
			}
			if len(ps) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no policies; set one with: imago policy set ENV --require-sbom")
				return nil
			}
			return printPolicies(cmd, ps)
		})
	}
	return cmd
}

func printPolicies(cmd *cobra.Command, ps []contract.Policy) error {
	tw := table(cmd.OutOrStdout())
	fmt.Fprintln(tw, "ENVIRONMENT\tPROVENANCE\tSBOM\tDENY\tMAX AGE\tSET BY\tSET")
	for _, p := range ps {
		prov := "-"
		if p.RequireProvenance {
			prov = "required"
			if p.ProvenanceKey != "" {
				prov = "required, by key"
			}
		}
		sbom := "-"
		if p.RequireSBOM {
			sbom = "required"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Environment, prov, sbom, dash(strings.Join(p.DenyPackages, ",")),
			durOrDash(p.MaxAge), dash(p.By), p.Time.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func newPolicyDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete ENV",
		Short:   "Remove an environment's policy (the catalog keeps its history)",
		Example: "  imago policy delete staging",
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			got, err := cat.DeletePolicy(cmd.Context(), a[0], startedBy(), time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted the policy of %s (#%d); rollouts to %s are checked against none\n", got.Environment, got.Seq, got.Environment)
			return nil
		})
	}
	return cmd
}
