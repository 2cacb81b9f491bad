package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	ep "github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/packerplugin"
	"github.com/imago/imago/internal/spec"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images in the catalog"}
	cmd.AddCommand(newImageImportCmd(), newImageImportKernelCmd(), newImageListCmd(), newImageShowCmd(), newImageChannelsCmd(), newImagePromoteCmd(), newImageRevokeCmd(), newImageSBOMCmd(), newImageProvenanceCmd(), newImageLifecycleCmd())
	return cmd
}

// withCatalog opens the catalog for one command.
func withCatalog(cmd *cobra.Command, fn func(*catalog.Catalog) error) error {
	cat, err := catalog.Open(cmd.Context(), app.ConfigFromEnv().CatalogURL)
	if err != nil {
		return err
	}
	defer cat.Close()
	return fn(cat)
}

// withClient dials Temporal for one command.
func withClient(cmd *cobra.Command, fn func(client.Client) error) error {
	c, err := app.ConfigFromEnv().Dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// checkSpecFlags checks that -f names the spec of a command that starts from one
// (kind bake or rollout; example a path to one).
func checkSpecFlags(file, kind, example string) error {
	if file == "" {
		return usageError{fmt.Errorf("-f FILE is required: the %s spec, e.g. %s", kind, example)}
	}
	return nil
}

// imageDetail is what `imago image show -o json` prints.
type imageDetail struct {
	Image    contract.Image `json:"image"`
	Channels []string       `json:"channels"` // the channels of its service that point at it
	Children []string       `json:"children"` // images built on it
}

func newImageShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an image: origin, channels, revocation, ancestry",
		Example: `  imago image show img-3f2a1c9d0b7e
  imago image show img-3f2a1c9d0b7e -o json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeImageArg,
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			ctx := cmd.Context()
			img, err := cat.Get(ctx, a[0])
			if err != nil {
				return err
			}
			chans, err := cat.Channels(ctx, img.Service)
			if err != nil {
				return err
			}
			var on []string
			for _, c := range chans {
				if c.ImageID == img.ID {
					on = append(on, c.Channel)
				}
			}
			children, err := cat.Children(ctx, img.ID)
			if err != nil {
				return err
			}
			var kids []string
			for _, k := range children {
				kids = append(kids, k.ID)
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), imageDetail{Image: img, Channels: nonNil(on), Children: nonNil(kids)})
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintf(tw, "ID:\t%s\n", img.ID)
			fmt.Fprintf(tw, "Service:\t%s\n", img.Service)
			fmt.Fprintf(tw, "Builder:\t%s\n", img.Builder)
			fmt.Fprintf(tw, "Created:\t%s\n", img.Created.Local().Format(time.DateTime))
			if img.Digest != "" {
				fmt.Fprintf(tw, "Digest:\t%s\n", img.Digest)
			}
			if img.InputDigest != "" {
				fmt.Fprintf(tw, "Input digest:\t%s\n", img.InputDigest)
			}
			if img.OCIDigest != "" {
				fmt.Fprintf(tw, "OCI digest:\t%s\n", img.OCIDigest)
			}
			if len(img.Entrypoint) > 0 {
				fmt.Fprintf(tw, "Entrypoint:\t%s\n", strings.Join(img.Entrypoint, " "))
			}
			if img.Parent != "" {
				fmt.Fprintf(tw, "Parent:\t%s\n", img.Parent)
			}
			if len(kids) > 0 {
				fmt.Fprintf(tw, "Children:\t%s\n", strings.Join(kids, ", "))
			}
			for _, k := range sortedKeys(img.Artifacts) {
				fmt.Fprintf(tw, "Artifact %s:\t%s\n", k, img.Artifacts[k])
			}
			for _, k := range sortedKeys(img.Labels) {
				fmt.Fprintf(tw, "Label %s:\t%s\n", k, img.Labels[k])
			}
			if len(on) > 0 {
				fmt.Fprintf(tw, "Channels:\t%s\n", strings.Join(on, ", "))
			}
			if img.Revoked != nil {
				fmt.Fprintf(tw, "Revoked:\t%s\n", img.Revoked.Reason)
			}
			if img.Outdated != nil {
				fmt.Fprintf(tw, "Outdated:\t%s\n", img.Outdated.Reason)
			}
			if d := img.Deprecated; d != nil {
				fmt.Fprintf(tw, "Deprecated:\tby %s at %s\n", d.Rule, d.Time.Local().Format(time.DateTime))
			}
			if d := img.Deleted; d != nil {
				fmt.Fprintf(tw, "Deleted:\tby %s at %s (archive and SBOM removed; this record stays for the audit)\n", d.Rule, d.Time.Local().Format(time.DateTime))
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newImagePromoteCmd() *cobra.Command {
	var channel, reason string
	cmd := &cobra.Command{
		Use:               "promote ID --channel C",
		Short:             "Point a channel of the image's service at the image",
		Example:           `  imago image promote img-3f2a1c9d0b7e --channel stable --reason "soaked a week in staging"`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeImageArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			if channel == "" {
				return usageError{fmt.Errorf("--channel is required, e.g. --channel stable")}
			}
			return withCatalog(cmd, func(cat *catalog.Catalog) error {
				img, err := cat.Get(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				e, err := cat.MoveChannel(cmd.Context(), img.Service, channel, img.ID, catalog.MoveOptions{By: startedBy(), Reason: reason})
				if err != nil {
					return err
				}
				from := e.Previous
				if from == "" {
					from = "(new channel)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s: %s → %s\n", img.Service, channel, from, img.ID)
				if len(e.Outdated) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "now outdated (built on %s): %s\n", from, strings.Join(e.Outdated, ", "))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "channel to move (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the channel's history")
	_ = cmd.RegisterFlagCompletionFunc("channel", completeImageChannels)
	return cmd
}

func newImageRevokeCmd() *cobra.Command {
	var reason, campaignFile, channel string
	var cascade bool
	cmd := &cobra.Command{
		Use:   "revoke ID --reason R [--cascade [--campaign FILE] [--channel CH]]",
		Short: "Revoke an image: rollouts and channel moves refuse it from now on",
		Long: `Revoke an image: rollouts and channel moves refuse it from now on.

With --cascade every image built on it is revoked too, and, when it is a base,
a rebuild campaign starts: every service built on the base channel that named
it is rebuilt on the channel's current image and rolled out ring by ring. The
rings (and error budget, override) come from --campaign FILE, or else from
$IMAGO_HOME/cascade.yaml: a campaign file without services, select or image.
Publish the fixed base on the channel before revoking.`,
		Example: `  imago image revoke img-3f2a1c9d0b7e --reason "CVE-2026-1234 in openssl"
  imago image revoke img-3f2a1c9d0b7e --reason "CVE-2026-1234 in openssl" --cascade --campaign rings.yaml`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeImageArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError{fmt.Errorf("--reason is required: it is shown to everyone whose rollout is refused")}
			}
			if !cascade && (campaignFile != "" || channel != "") {
				return usageError{fmt.Errorf("--campaign and --channel go with --cascade")}
			}
			var tmpl spec.Campaign
			var rebuild bool
			if cascade {
				var err error
				if tmpl, rebuild, err = campaigns.LoadCascade(campaignFile, app.ConfigFromEnv().Home); err != nil {
					return usageError{err}
				}
			}
			return withCatalog(cmd, func(cat *catalog.Catalog) error {
				w := cmd.OutOrStdout()
				ids, err := cat.Revoke(cmd.Context(), a[0], catalog.RevokeOptions{Reason: reason, By: startedBy(), Cascade: cascade})
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "revoked %s\n", strings.Join(ids, ", "))
				if !cascade {
					return nil
				}
				if !rebuild {
					fmt.Fprintf(w, "no rebuild campaign started: pass --campaign FILE or write %s\n", filepath.Join(app.ConfigFromEnv().Home, campaigns.CascadeFile))
					return nil
				}
				return withClient(cmd, func(c client.Client) error {
					_, s, err := campaigns.Cascade(cmd.Context(), c, cat, a[0], channel, tmpl.CampaignSpec, startedBy())
					if errors.Is(err, campaigns.ErrNothingToRebuild) {
						fmt.Fprintf(w, "no rebuild campaign started: %v\n", err)
						return nil
					}
					if err != nil {
						return fmt.Errorf("no rebuild campaign started: %w", err)
					}
					fmt.Fprintf(w, "started campaign %s: rebuilds every service built on %s/%s and rolls it out\nwatch it with: imago campaign status %s --watch\n",
						s.Name, s.Select.Base.Service, s.Select.Base.Channel, s.Name)
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also revoke every image built on this one and start a campaign that rebuilds them on the base's current image")
	cmd.Flags().StringVar(&campaignFile, "campaign", "", "with --cascade: the rebuild campaign's file (rings, errorBudget, override); default $IMAGO_HOME/"+campaigns.CascadeFile)
	cmd.Flags().StringVar(&channel, "channel", "", "with --cascade: the base channel to rebuild on (default: the one channel that named the image)")
	return cmd
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newImageImportCmd() *cobra.Command {
	var service, entrypoint string
	var labels map[string]string
	cmd := &cobra.Command{
		Use:   "import DIR --service S --entrypoint CMD [--label K=V]",
		Short: "Package a directory as a local image and print its ID",
		Long: `Packages DIR as a content-addressed local image in the catalog
(IMAGO_CATALOG_URL, default file://$IMAGO_HOME/catalog). The same tree, service
and entrypoint always give the same image ID.`,
		Example: `  go build -ldflags "-X main.version=v2" -o build/hello ./examples/hello
  imago image import build --service hello --entrypoint ./hello --label team=web`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: dirCompletion,
		RunE: func(cmd *cobra.Command, a []string) error {
			if service == "" || strings.TrimSpace(entrypoint) == "" {
				return usageError{fmt.Errorf("--service and --entrypoint are required, e.g. --service hello --entrypoint ./hello")}
			}
			return withCatalog(cmd, func(cat *catalog.Catalog) error {
				words, err := importEntrypoint(a[0], entrypoint)
				if err != nil {
					return usageError{err}
				}
				img, err := importDir(cmd.Context(), cat, a[0], service, words, labels)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), img.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "service the image belongs to (required)")
	cmd.Flags().StringVar(&entrypoint, "entrypoint", "", "command to start an instance, split by shell rules: ./app --port $PORT (a program in DIR), or /bin/sh -c '…' (one on the host); $PORT, $HOST and the rollout's env are expanded when an instance starts (required)")
	cmd.Flags().StringToStringVar(&labels, "label", nil, "a label recorded with the image, KEY=VALUE (repeatable), e.g. --label team=payments: campaigns select services by label")
	_ = cmd.RegisterFlagCompletionFunc("service", completeServices)
	return cmd
}

// importEntrypoint splits the --entrypoint command line into the words the
// image records and checks them against dir: the program must be in dir (./app,
// app) or on this host (/bin/sh), and every $ must be a variable. Which
// variables the rollout provides is checked when a rollout uses the image.
func importEntrypoint(dir, line string) ([]string, error) {
	words, err := ep.Split(line)
	if err != nil {
		return nil, fmt.Errorf("--entrypoint %v", err)
	}
	if _, err := ep.Vars(words); err != nil {
		return nil, fmt.Errorf("--entrypoint %q cannot be expanded when an instance starts: %v", line, err)
	}
	if _, err := ep.Program(dir, words[0]); err != nil {
		if errors.Is(err, ep.ErrNotFound) && !filepath.IsAbs(words[0]) && strings.ContainsRune(words[0], '/') {
			return nil, fmt.Errorf("--entrypoint %q: %v: %s holds no %s (the program's path is relative to %s)", line, err, dir, words[0], dir)
		}
		return nil, fmt.Errorf("--entrypoint %q: %v", line, err)
	}
	return words, nil
}

// importDir packages dir with the imago-local Packer builder, in process, and
// publishes the image: the same path a bake takes, without provisioning.
func importDir(ctx context.Context, cat *catalog.Catalog, dir, service string, entrypoint []string, labels map[string]string) (contract.Image, error) {
	out, err := os.MkdirTemp("", "imago-import-")
	if err != nil {
		return contract.Image{}, err
	}
	defer os.RemoveAll(out)
	art, err := packerplugin.Build(ctx, map[string]any{
		"service": service, "source_dir": dir, "entrypoint": entrypoint, "output_dir": out, "labels": labels,
	}, nil)
	if err != nil {
		return contract.Image{}, usageError{fmt.Errorf("import %s: %w", dir, err)}
	}
	archive, err := art.ReadArchive()
	if err != nil {
		return contract.Image{}, err
	}
	return cat.PublishArchive(ctx, archive, contract.Image{Service: service, Entrypoint: entrypoint, Builder: "import", Labels: labels})
}

func newImageListCmd() *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "list [--service S]",
		Short: "List images, newest first",
		Example: `  imago image list
  imago image list --service hello -o json`,
		Args: args(cobra.NoArgs),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			imgs, err := cat.List(cmd.Context(), service)
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), nonNil(imgs))
			}
			if len(imgs) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no images; make one with: imago image import DIR --service S --entrypoint CMD, or imago bake start -f FILE")
				return nil
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tSERVICE\tBUILDER\tENTRYPOINT\tCREATED\tSTATE")
			for _, img := range imgs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", img.ID, img.Service, img.Builder, dash(strings.Join(img.Entrypoint, " ")), img.Created.Local().Format(time.DateTime), imageState(img))
			}
			return tw.Flush()
		})
	}
	cmd.Flags().StringVar(&service, "service", "", "only images of this service")
	_ = cmd.RegisterFlagCompletionFunc("service", completeServices)
	return cmd
}

// imageState is usable, outdated, deprecated, revoked or deleted.
func imageState(img contract.Image) string {
	switch {
	case img.Deleted != nil:
		return "deleted"
	case img.Revoked != nil:
		return "revoked"
	case img.Deprecated != nil:
		return "deprecated"
	case img.Outdated != nil:
		return "outdated"
	}
	return "usable"
}

func newImageChannelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channels SERVICE",
		Short: "List a service's channels and the image each points at",
		Long: `Lists the channels of SERVICE (latest, stable, ...), the image each points at,
and who moved it last, when and why. Bakes move their spec's channel; image
promote moves any channel.`,
		Example: `  imago image channels hello
  imago image channels hello -o json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServiceArg,
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			chans, err := cat.Channels(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), nonNil(chans))
			}
			if len(chans) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s has no channels; move one with: imago image promote ID --channel stable\n", a[0])
				return nil
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "CHANNEL\tIMAGE\tPREVIOUS\tMOVED\tBY\tREASON")
			for _, c := range chans {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Channel, c.ImageID, dash(c.Previous), when(c.Time), dash(c.By), dash(c.Reason))
			}
			return tw.Flush()
		})
	}
	return cmd
}

// dirCompletion completes directories only.
func dirCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}
