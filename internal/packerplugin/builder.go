// Package packerplugin is imago's "imago-local" Packer builder, written with the
// Packer plugin SDK. It stages a directory tree, provisions it with inline shell
// commands, and packs the result into a local imago image (see internal/image):
// <output_dir>/<image-id>.tar.gz plus a catalog.Image-shaped <image-id>.json.
//
// The same builder runs inside packer (cmd/packer-plugin-imago registers it as
// "local" in the plugin set, so templates name it "imago-local") and in process
// through Build, without a packer binary.
//
// A build is a list of steps, each undoing in Cleanup what its Run made, so a
// failed or cancelled build leaves neither a staging directory nor output files:
//
//	StepStage                  temporary staging directory with source_dir and files
//	StepProvision              the provision commands, in the staging directory
//	StepTemplateProvisioners   the template's provisioners (only under packer)
//	StepPack                   the image archive and record in output_dir
package packerplugin

import (
	"context"
	"errors"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/imago/imago/internal/bake/runas"
)

const (
	// BuilderID is the artifact's BuilderId.
	BuilderID = "imago.local"
	// BuilderName is the builder recorded in image records (catalog.Image.Builder)
	// and the name templates use for it (plugin "imago" + component "local").
	BuilderName = "imago-local"
)

// Names of the builder's generated data, usable as ${build.<name>} in the
// template's provisioners (StagingDir) and post-processors (all of them).
var generatedDataNames = []string{"StagingDir", "ImageID", "ImageDigest", "ImageArchive"}

// Builder is the imago-local builder; it implements packersdk.Builder.
type Builder struct {
	// RunAs runs the provision commands as another user (BuildAs; nil: as this
	// process). Under packer it is nil: the plugin runs as packer does.
	RunAs *runas.User

	config Config
	runner multistep.Runner
}

var _ packersdk.Builder = (*Builder)(nil)

// ConfigSpec returns the HCL2 spec of Config.
func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

// Prepare decodes and validates the configuration, reporting every problem at
// once. It returns the names of the generated data the build provides.
func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	if err != nil {
		return nil, warnings, err
	}
	return generatedDataNames, warnings, nil
}

// Run builds the image. hook may be nil (in process): the template provisioner
// step is then left out.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	state := new(multistep.BasicStateBag)
	state.Put("config", &b.config)
	state.Put("ui", ui)
	if hook != nil {
		state.Put("hook", hook)
	}
	generated := &packerbuilderdata.GeneratedData{State: state}

	pack := &StepPack{
		Service:       b.config.Service,
		Entrypoint:    b.config.Entrypoint,
		Include:       b.config.Include,
		Labels:        b.config.Labels,
		OutputDir:     b.config.OutputDir,
		Force:         b.config.PackerForce,
		GeneratedData: generated,
	}
	steps := []multistep.Step{
		&StepStage{
			SourceDir:     b.config.SourceDir,
			Files:         b.config.Files,
			Owner:         b.RunAs,
			GeneratedData: generated,
		},
		&StepProvision{
			Commands: b.config.Provision,
			Env:      b.config.Env,
			PassEnv:  b.config.PassEnv,
			User:     b.RunAs,
		},
	}
	if hook != nil {
		steps = append(steps, new(StepTemplateProvisioners))
	}
	steps = append(steps, pack)

	b.runner = newRunner(steps, b.config.PackerConfig, ui)
	b.runner.Run(ctx, state)

	if err, ok := state.GetOk("error"); ok {
		return nil, err.(error)
	}
	// The pack step's Cleanup decides: it keeps the files only when the build
	// was neither halted nor cancelled by then.
	if !pack.kept {
		if _, ok := state.GetOk(multistep.StateCancelled); ok {
			return nil, errors.New("build was cancelled")
		}
		return nil, errors.New("build halted")
	}
	return state.Get("artifact").(*Artifact), nil
}
