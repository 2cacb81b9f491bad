package packerplugin

import (
	"context"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/imago/imago/internal/bake/runas"
)

// ConfigError is Build's error for a configuration Prepare rejected: retrying
// the same build cannot help. Err is Prepare's error, usually a
// *packersdk.MultiError listing every problem.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "imago-local configuration: " + e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }

// Build runs the imago-local builder in process, without a packer binary:
// Prepare with cfg (the HCL2/mapstructure names: "service", "source_dir",
// "provision", "packer_force", ...), then Run. Warnings go to ui (nil discards
// output). A configuration error is a *ConfigError. Cancelling ctx stops the
// build and removes what it made.
func Build(ctx context.Context, cfg map[string]any, ui packersdk.Ui) (*Artifact, error) {
	return BuildAs(ctx, cfg, ui, nil)
}

// BuildAs is Build with the provision commands run as user (nil: as this
// process), who then owns the staging directory. A process that cannot run
// commands as user gets a *ConfigError saying so, before anything is staged.
func BuildAs(ctx context.Context, cfg map[string]any, ui packersdk.Ui, user *runas.User) (*Artifact, error) {
	if ui == nil {
		ui = NewLineUi(nil)
	}
	if err := user.Check(); err != nil {
		return nil, &ConfigError{Err: err}
	}
	b := Builder{RunAs: user}
	_, warnings, err := b.Prepare(cfg)
	for _, w := range warnings {
		ui.Say("Warning: " + w)
	}
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	a, err := b.Run(ctx, ui, nil)
	if err != nil {
		return nil, err
	}
	return a.(*Artifact), nil
}
