package packerplugin

import (
	"context"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
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
	if ui == nil {
		ui = NewLineUi(nil)
	}
	var b Builder
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
