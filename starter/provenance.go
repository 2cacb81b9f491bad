package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/provenance"
	"github.com/imago/imago/internal/provenance/chain"
)

func newImageProvenanceCmd() *cobra.Command {
	var keyFile string
	var envelope bool
	cmd := &cobra.Command{
		Use:   "provenance ID",
		Short: "Show an image's chain: source → bake → image → channel moves → rollouts → live fleets",
		Long: `Show where an image came from and where it went: the sources and base image
its bake read (from its signed SLSA provenance), the bake's workflow and run,
the worker that built and signed it, the channel moves to and from it, the
rollouts of it (who started them, who approved, the analyses' verdicts) and the
fleets of it that are live now.

--key PUB.pem verifies the provenance's signature and subject with that public
key. --envelope prints the stored DSSE envelope instead, for other tools:
cosign verify-blob-attestation --key PUB.pem --type slsaprovenance1
--signature FILE ARCHIVE.`,
		Example: `  imago image provenance img-3f2a1c9d0b7e
  imago image provenance img-3f2a1c9d0b7e --key imago-signing.pub -o json
  imago image provenance img-3f2a1c9d0b7e --envelope > hello.intoto.json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeImageArg,
	}
	out := addOutputFlag(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "", "verify the provenance with this PEM public key")
	cmd.Flags().BoolVar(&envelope, "envelope", false, "print the stored DSSE envelope (JSON) and nothing else")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		var o chain.Options
		if keyFile != "" {
			pem, err := os.ReadFile(keyFile)
			if err != nil {
				return usageError{fmt.Errorf("--key: %w", err)}
			}
			if o.Verifier, err = provenance.LoadVerifier(pem); err != nil {
				return usageError{fmt.Errorf("--key %s: %w", keyFile, err)}
			}
		}
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			ctx := cmd.Context()
			if envelope {
				env, err := cat.Provenance(ctx, a[0])
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(append(env, '\n'))
				return err
			}
			// Approvals and verdicts come from Temporal; without it the
			// chain is the catalog's, and says so.
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, derr := app.ConfigFromEnv().Dial(dctx)
			cancel()
			if derr == nil {
				defer c.Close()
				o.Temporal = c
			}
			ch, err := chain.Build(ctx, cat, a[0], o)
			if err != nil {
				return err
			}
			if derr != nil {
				ch.Notes = append(ch.Notes, "Temporal: "+derr.Error())
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), ch)
			}
			printChain(cmd.OutOrStdout(), ch)
			return nil
		})
	}
	return cmd
}

// printChain writes the chain for people, one section per link.
func printChain(w io.Writer, ch *chain.Chain) {
	img := ch.Image
	fmt.Fprintf(w, "Image %s (service %s, builder %s, created %s)\n", img.ID, img.Service, img.Builder, when(img.Created))
	if img.Digest != "" {
		fmt.Fprintf(w, "  archive  %s\n", img.Digest)
	}
	if img.OCIDigest != "" {
		fmt.Fprintf(w, "  oci      %s\n", img.OCIDigest)
	}
	for _, s := range []struct {
		on   bool
		what string
	}{{img.Revoked != nil, "revoked"}, {img.Deprecated != nil, "deprecated"}, {img.Deleted != nil, "deleted"}} {
		if s.on {
			fmt.Fprintf(w, "  %s\n", s.what)
		}
	}
	if p := ch.Provenance; p != nil {
		fmt.Fprintln(w, "Source")
		for _, m := range p.Materials {
			fmt.Fprintf(w, "  %s  %s  %s\n", m.Name, dash(m.Digest), m.URI)
		}
		if len(p.VariableNames) > 0 {
			fmt.Fprintf(w, "  variables (names only): %s\n", strings.Join(p.VariableNames, ", "))
		}
		fmt.Fprintf(w, "Bake %s run %s", p.BakeWorkflowID, p.BakeRunID)
		if p.BakedBy != "" {
			fmt.Fprintf(w, " started by %s", p.BakedBy)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  builder  %s (imago %s)\n", p.Builder, dash(p.Version))
		if p.StartedOn != "" {
			fmt.Fprintf(w, "  built    %s → %s\n", p.StartedOn, p.FinishedOn)
		}
		fmt.Fprintf(w, "  provenance %s\n", signatureState(p))
	}
	fmt.Fprintln(w, "Channel moves")
	if len(ch.Channels) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, e := range ch.Channels {
		dir := "→ " + e.ImageID
		if e.ImageID != img.ID {
			dir = "away → " + e.ImageID
		}
		fmt.Fprintf(w, "  %s #%d %s by %s (%s) %s\n", e.Channel, e.Seq, dir, dash(e.By), dash(e.Reason), when(e.Time))
	}
	fmt.Fprintln(w, "Rollouts")
	if len(ch.Rollouts) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, r := range ch.Rollouts {
		fmt.Fprintf(w, "  %s #%d %s %s by %s, %s (%s run %s)\n", r.Environment, r.Seq, r.Action, r.Outcome, dash(r.StartedBy), when(r.Started), r.RolloutID, r.RunID)
		for _, ap := range r.Approvals {
			fmt.Fprintf(w, "    approved %s by %s %s\n", ap.Gate, ap.By, ap.Reason)
		}
		for _, an := range r.Analyses {
			fmt.Fprintf(w, "    analysis %s: %s %s\n", an.Name, an.Phase, an.Message)
		}
	}
	fmt.Fprintln(w, "Live now")
	if len(ch.Live) == 0 {
		fmt.Fprintln(w, "  nowhere")
	}
	for _, l := range ch.Live {
		fmt.Fprintf(w, "  %s fleet %s, %d instances, since %s\n", l.Environment, l.FleetID, l.Instances, when(l.Since))
	}
	for _, n := range ch.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}

func signatureState(p *chain.Provenance) string {
	switch {
	case !p.Signed:
		return "UNSIGNED (the bake's worker had no " + provenance.KeyEnv + ")"
	case p.Verified == nil:
		return "signed (not verified: pass --key PUB.pem)"
	case *p.Verified:
		return "signed, verified with --key"
	default:
		return "signed, NOT verified: " + p.VerifyError
	}
}
