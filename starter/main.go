// Command imago is imago's CLI: import images, start and watch rollouts.
//
// Exit codes: 0 success, 1 failure (a rollout failed, a server refused), 2 usage
// error (bad flags, arguments or spec; nothing was started), 130 Ctrl-C stopped
// watching (the rollout or bake goes on).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/app"
	"github.com/imago/imago/internal/spec"
)

// usageError marks bad input: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func main() {
	app.OwnerOnly() // what imago writes (imports, keys, its embedded server's files) is its user's alone
	err := newRoot().Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imago:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode maps an outcome to the documented exit codes.
func exitCode(err error) int {
	var ue usageError
	var stopped interruptedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue) || spec.IsInvalid(err):
		return 2
	case errors.As(err, &stopped):
		return exitInterrupted
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "imago",
		Short: "Roll out immutable infrastructure as durable Temporal workflows",
		Long: `imago bakes images, provisions a fresh fleet from one, validates it, cuts traffic
over and decommissions the old fleet — each step a retryable Temporal activity.

It talks to Temporal at TEMPORAL_ADDRESS (default 127.0.0.1:7233, where
'make run' starts the embedded server) in TEMPORAL_NAMESPACE (default "default").`,
		Example: `  imago image import ./build --service hello --entrypoint ./hello
  imago rollout start -f examples/hello/rollout.yaml --image img-3f2a1c9d0b7e --watch
  imago rollout status hello -e dev -o json
  source <(imago completion bash)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(newImageCmd(), newRolloutCmd(), newBakeCmd())
	root.AddCommand(newStatusCmd(), newDriftCmd())
	root.AddCommand(newScheduleCmd(), newPipelineCmd(), newReaperCmd(), newFreezeCmd())
	root.AddCommand(newCampaignCmd())
	root.AddCommand(newServeCmd())
	root.AddCommand(newPlanCmd())
	root.AddCommand(newPolicyCmd())
	addCompletion(root)
	return root
}

// args wraps a cobra argument check so its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
		}
		return nil
	}
}
