package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/catalog"
)

// newCompletionCmd replaces cobra's default completion command with one whose
// help says how to install the script in each shell (and has examples).
func newCompletionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script for bash, zsh, fish or PowerShell",
		Long: `Prints a script that makes your shell complete imago's commands, flags and
values: -o formats, spec files for -f, service names, environments, image IDs and
channels from the image catalog (IMAGO_CATALOG_URL).

Install it once for every new shell:

  bash        imago completion bash > ~/.local/share/bash-completion/completions/imago
              (needs the bash-completion package; or add to ~/.bashrc:
               source <(imago completion bash))
  zsh         imago completion zsh > "${fpath[1]}/_imago"
              (completion must be on: autoload -U compinit; compinit in ~/.zshrc)
  fish        imago completion fish > ~/.config/fish/completions/imago.fish
  PowerShell  imago completion powershell >> $PROFILE

Then start a new shell. 'imago completion SHELL --help' shows the details for one shell.`,
		Example: `  source <(imago completion bash)
  imago completion zsh > "${fpath[1]}/_imago"
  imago completion fish > ~/.config/fish/completions/imago.fish`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return usageError{fmt.Errorf("name a shell: imago completion bash|zsh|fish|powershell")}
		},
	}
	var noDesc bool
	shells := []struct {
		name, install, example string
		gen                    func(root *cobra.Command, w io.Writer) error
	}{
		{"bash", `To load completions in the current shell:

  source <(imago completion bash)

To load them in every new shell (needs the bash-completion package):

  imago completion bash > ~/.local/share/bash-completion/completions/imago

or add the 'source' line above to ~/.bashrc.`,
			`  source <(imago completion bash)
  imago completion bash > ~/.local/share/bash-completion/completions/imago`,
			func(root *cobra.Command, w io.Writer) error { return root.GenBashCompletionV2(w, !noDesc) }},
		{"zsh", `If completion is not on in your zsh yet, add to ~/.zshrc once:

  autoload -U compinit; compinit

To load completions in the current shell:

  source <(imago completion zsh)

To load them in every new shell:

  imago completion zsh > "${fpath[1]}/_imago"

(on macOS with Homebrew: imago completion zsh > $(brew --prefix)/share/zsh/site-functions/_imago)`,
			`  source <(imago completion zsh)
  imago completion zsh > "${fpath[1]}/_imago"`,
			func(root *cobra.Command, w io.Writer) error {
				if noDesc {
					return root.GenZshCompletionNoDesc(w)
				}
				return root.GenZshCompletion(w)
			}},
		{"fish", `To load completions in the current shell:

  imago completion fish | source

To load them in every new shell:

  imago completion fish > ~/.config/fish/completions/imago.fish`,
			`  imago completion fish | source
  imago completion fish > ~/.config/fish/completions/imago.fish`,
			func(root *cobra.Command, w io.Writer) error { return root.GenFishCompletion(w, !noDesc) }},
		{"powershell", `To load completions in the current shell:

  imago completion powershell | Out-String | Invoke-Expression

To load them in every new shell, add the output to your profile:

  imago completion powershell >> $PROFILE`,
			`  imago completion powershell | Out-String | Invoke-Expression
  imago completion powershell >> $PROFILE`,
			func(root *cobra.Command, w io.Writer) error {
				if noDesc {
					return root.GenPowerShellCompletion(w)
				}
				return root.GenPowerShellCompletionWithDesc(w)
			}},
	}
	for _, s := range shells {
		sub := &cobra.Command{
			Use:               s.name,
			Short:             "Print the completion script for " + s.name,
			Long:              "Prints the completion script for " + s.name + ".\n\n" + s.install,
			Example:           s.example,
			Args:              args(cobra.NoArgs),
			ValidArgsFunction: cobra.NoFileCompletions,
			RunE: func(cmd *cobra.Command, a []string) error {
				return s.gen(cmd.Root(), cmd.OutOrStdout())
			},
		}
		sub.Flags().BoolVar(&noDesc, "no-descriptions", false, "complete values without their descriptions")
		cmd.AddCommand(sub)
	}
	return cmd
}

// completionTimeout bounds a catalog lookup made while the shell waits.
const completionTimeout = 2 * time.Second

// fromCatalog runs fn on the catalog for a completion and keeps the candidates
// that start with prefix; any failure completes nothing.
func fromCatalog(prefix string, fn func(context.Context, *catalog.Catalog) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	cat, err := catalog.Open(ctx, app.ConfigFromEnv().CatalogURL)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cat.Close()
	all, err := fn(ctx, cat)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, c := range all {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeServices completes service names: the services of the catalog's images.
func completeServices(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return fromCatalog(toComplete, func(ctx context.Context, cat *catalog.Catalog) ([]string, error) {
		imgs, err := cat.List(ctx, "")
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var out []string
		for _, img := range imgs {
			if !seen[img.Service] {
				seen[img.Service] = true
				out = append(out, img.Service)
			}
		}
		sort.Strings(out)
		return out, nil
	})
}

// completeServiceArg completes the SERVICE argument of a command taking one.
func completeServiceArg(cmd *cobra.Command, a []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeServices(cmd, a, toComplete)
}

// completeImageIDs completes image IDs, newest first, described by service and builder.
func completeImageIDs(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	out, dir := fromCatalog(toComplete, func(ctx context.Context, cat *catalog.Catalog) ([]string, error) {
		imgs, err := cat.List(ctx, "")
		if err != nil {
			return nil, err
		}
		var out []string
		for _, img := range imgs {
			desc := img.Service + ", " + img.Builder + ", " + img.Created.Local().Format(time.DateTime)
			if img.Revoked != nil {
				desc += ", revoked"
			}
			out = append(out, img.ID+"\t"+desc)
		}
		return out, nil
	})
	return out, dir | cobra.ShellCompDirectiveKeepOrder
}

// completeImageArg completes the ID argument of a command taking one image.
func completeImageArg(cmd *cobra.Command, a []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeImageIDs(cmd, a, toComplete)
}

// serviceOf is the service a command is about: --service, else its SERVICE argument.
func serviceOf(cmd *cobra.Command, a []string) string {
	if cmd.Flags().Lookup("service") != nil {
		if s, _ := cmd.Flags().GetString("service"); s != "" {
			return s
		}
	}
	if len(a) > 0 {
		return a[0]
	}
	return ""
}

// addEnvFlag adds -e/--environment, completed with the environments the service
// was deployed to (from the inventory).
func addEnvFlag(cmd *cobra.Command, env *string, def, usage string) {
	cmd.Flags().StringVarP(env, "environment", "e", def, usage)
	_ = cmd.RegisterFlagCompletionFunc("environment", func(cmd *cobra.Command, a []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		service := serviceOf(cmd, a)
		if service == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return fromCatalog(toComplete, func(ctx context.Context, cat *catalog.Catalog) ([]string, error) {
			return cat.Environments(ctx, service)
		})
	})
}

// completeChannels completes the channels of the service a command is about.
func completeChannels(cmd *cobra.Command, a []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return channelsOf(toComplete, func(context.Context, *catalog.Catalog) (string, error) { return serviceOf(cmd, a), nil })
}

// completeImageChannels completes the channels of the service of the image argument.
func completeImageChannels(cmd *cobra.Command, a []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(a) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return channelsOf(toComplete, func(ctx context.Context, cat *catalog.Catalog) (string, error) {
		img, err := cat.Get(ctx, a[0])
		return img.Service, err
	})
}

func channelsOf(prefix string, service func(context.Context, *catalog.Catalog) (string, error)) ([]string, cobra.ShellCompDirective) {
	return fromCatalog(prefix, func(ctx context.Context, cat *catalog.Catalog) ([]string, error) {
		svc, err := service(ctx, cat)
		if err != nil || svc == "" {
			return nil, err
		}
		chans, err := cat.Channels(ctx, svc)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, c := range chans {
			out = append(out, c.Channel+"\t→ "+c.ImageID)
		}
		return out, nil
	})
}

// completeSpecFile makes -f complete YAML files.
func completeSpecFile(cmd *cobra.Command) {
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
}

// addCompletion adds imago's completion command in place of cobra's default one,
// and gives cobra's help command an example like every other command. Call it
// after the other commands are added.
func addCompletion(root *cobra.Command) {
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newCompletionCmd())
	root.InitDefaultHelpCmd() // Execute keeps this help command
	for _, c := range root.Commands() {
		if c.Name() == "help" && c.Example == "" {
			c.Example = `  imago help rollout start
  imago rollout start --help`
		}
	}
}
