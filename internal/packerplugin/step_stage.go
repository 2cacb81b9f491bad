package packerplugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/imago/imago/internal/bake/runas"
)

// StepStage makes a fresh temporary staging directory (under $TMPDIR) and copies
// SourceDir's contents and then each of Files into it. With an Owner, the
// directory and its copies then belong to that user, who runs the provision
// commands.
//
// Produces:
//
//	staging_dir string - the staging directory
//
// Cleanup removes the staging directory, whatever the build's outcome: the image
// is in the output directory by then.
type StepStage struct {
	SourceDir     string
	Files         []string
	Owner         *runas.User
	GeneratedData *packerbuilderdata.GeneratedData

	dir string
}

func (s *StepStage) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)

	dir, err := os.MkdirTemp("", "imago-stage-")
	if err != nil {
		return halt(state, ui, fmt.Errorf("create staging directory: %w", err))
	}
	s.dir = dir
	state.Put("staging_dir", dir)
	if s.GeneratedData != nil {
		s.GeneratedData.Put("StagingDir", dir)
	}
	ui.Say(fmt.Sprintf("Staging in %s", dir))

	if s.SourceDir != "" {
		ui.Say(fmt.Sprintf("Copying %s", s.SourceDir))
		if err := copyTree(ctx, s.SourceDir, dir, true); err != nil {
			return halt(state, ui, fmt.Errorf("copy source_dir: %w", err))
		}
	}
	for i, f := range s.Files {
		dst := filepath.Join(dir, filepath.Base(f))
		if _, err := os.Lstat(dst); err == nil {
			return halt(state, ui, fmt.Errorf("files[%d] %s: %s already exists in the staging directory (copied from source_dir)", i, f, filepath.Base(f)))
		}
		ui.Say(fmt.Sprintf("Copying %s", f))
		if err := copyTree(ctx, f, dst, true); err != nil {
			return halt(state, ui, fmt.Errorf("copy files[%d]: %w", i, err))
		}
	}
	if err := s.Owner.Own(dir); err != nil {
		return halt(state, ui, fmt.Errorf("give the staging directory to %s: %w", s.Owner, err))
	}
	return multistep.ActionContinue
}

func (s *StepStage) Cleanup(state multistep.StateBag) {
	if s.dir == "" {
		return
	}
	if err := forceRemoveAll(s.dir); err != nil {
		ui := state.Get("ui").(packersdk.Ui)
		ui.Error(fmt.Sprintf("Error removing staging directory %s: %s", s.dir, err))
		return
	}
	s.dir = ""
}

// halt records err as the build's error, shows it and halts the build, as
// HashiCorp's builders do.
func halt(state multistep.StateBag, ui packersdk.Ui, err error) multistep.StepAction {
	state.Put("error", err)
	ui.Error(err.Error())
	return multistep.ActionHalt
}
