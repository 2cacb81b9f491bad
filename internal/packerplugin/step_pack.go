package packerplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/imago/imago/internal/atomicfile"
	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/image"
)

// StepPack packs the image (the staging directory, or only its Include paths)
// with image.Pack, and writes <OutputDir>/<image-id>.tar.gz and
// <OutputDir>/<image-id>.json, its Record (shaped as a catalog.Image).
//
// Artifacts of another build already in OutputDir are an error unless Force is
// set; they are then removed once the new artifact is written. The artifact of
// this very build (same image ID, e.g. a retried build) is rewritten in place.
//
// Uses:
//
//	staging_dir string
//
// Produces:
//
//	artifact *Artifact
//
// Cleanup removes the files this step wrote (and OutputDir, when it made it)
// if the build was halted or cancelled.
type StepPack struct {
	Service       string
	Entrypoint    []string
	Include       []string
	Labels        map[string]string
	OutputDir     string
	Force         bool
	GeneratedData *packerbuilderdata.GeneratedData

	createdDir bool     // OutputDir did not exist before this step
	written    []string // files this step created
	kept       bool     // Cleanup kept the artifact: the build succeeded
}

func (s *StepPack) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	staging := state.Get("staging_dir").(string)

	root := staging
	if includes := sortedIncludes(s.Include); len(includes) > 0 {
		tmp, err := os.MkdirTemp("", "imago-include-")
		if err != nil {
			return halt(state, ui, fmt.Errorf("pack image: %w", err))
		}
		defer forceRemoveAll(tmp)
		root = tmp
		// Ancestors sort before their descendants, so a path already in the
		// tree came with an include above it.
		for _, rel := range includes {
			src := filepath.Join(staging, rel)
			if _, err := os.Lstat(src); err != nil {
				return halt(state, ui, fmt.Errorf("include %q: %s in the staging directory", filepath.ToSlash(rel), statReason(err)))
			}
			if err := insideDir(staging, filepath.Dir(src)); err != nil {
				return halt(state, ui, fmt.Errorf("include %q: %w", filepath.ToSlash(rel), err))
			}
			dst := filepath.Join(tmp, rel)
			if _, err := os.Lstat(dst); err == nil {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return halt(state, ui, fmt.Errorf("pack image: %w", err))
			}
			if err := copyTree(ctx, src, dst, false); err != nil {
				return halt(state, ui, fmt.Errorf("include %q: %w", filepath.ToSlash(rel), err))
			}
		}
	}
	if err := checkEntrypoint(root, s.Entrypoint[0]); err != nil {
		return halt(state, ui, err)
	}

	ui.Say("Packing image...")
	archive, err := image.Pack(root)
	if err != nil {
		return halt(state, ui, err)
	}
	digest := image.Digest(archive)
	id := image.ID(digest, s.Service, s.Entrypoint)
	rec := Record{
		ID:         id,
		Service:    s.Service,
		Digest:     digest,
		Builder:    BuilderName,
		Entrypoint: s.Entrypoint,
		Labels:     s.Labels,
		Created:    time.Now().UTC(),
	}
	recData, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return halt(state, ui, err)
	}

	// Output directory, and what a previous build left in it.
	if _, err := os.Stat(s.OutputDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(s.OutputDir, 0o755); err != nil {
			return halt(state, ui, fmt.Errorf("create output_dir: %w", err))
		}
		s.createdDir = true
	}
	stale, err := otherArtifacts(s.OutputDir, id)
	if err != nil {
		return halt(state, ui, err)
	}
	if len(stale) > 0 && !s.Force {
		return halt(state, ui, fmt.Errorf("output_dir %s already holds the artifact of a different build (%s); remove it, set another output_dir, or use packer build -force",
			s.OutputDir, strings.Join(stale, ", ")))
	}

	archivePath := filepath.Join(s.OutputDir, id+".tar.gz")
	recordPath := filepath.Join(s.OutputDir, id+".json")
	for _, f := range []struct {
		path string
		data []byte
	}{{archivePath, archive}, {recordPath, append(recData, '\n')}} {
		created, err := writeFileAtomic(f.path, f.data)
		if created {
			s.written = append(s.written, f.path)
		}
		if err != nil {
			return halt(state, ui, fmt.Errorf("write artifact: %w", err))
		}
	}
	for _, name := range stale {
		ui.Say(fmt.Sprintf("Removing %s, the artifact of a previous build (forced)", name))
		if err := os.Remove(filepath.Join(s.OutputDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return halt(state, ui, fmt.Errorf("remove previous artifact: %w", err))
		}
	}

	if s.GeneratedData != nil {
		s.GeneratedData.Put("ImageID", id)
		s.GeneratedData.Put("ImageDigest", digest)
		s.GeneratedData.Put("ImageArchive", archivePath)
	}
	generated, _ := state.Get("generated_data").(map[string]interface{})
	state.Put("artifact", &Artifact{
		Image:         rec,
		ArchivePath:   archivePath,
		RecordPath:    recordPath,
		generatedData: generated,
	})
	ui.Say(fmt.Sprintf("Image %s (%s, %d bytes) written to %s", id, digest, len(archive), archivePath))
	return multistep.ActionContinue
}

func (s *StepPack) Cleanup(state multistep.StateBag) {
	if !failed(state) {
		s.kept = true
		return
	}
	ui := state.Get("ui").(packersdk.Ui)
	for _, f := range s.written {
		ui.Say(fmt.Sprintf("Removing %s", f))
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			ui.Error(fmt.Sprintf("Error removing %s: %s", f, err))
		}
	}
	s.written = nil
	if s.createdDir {
		_ = os.Remove(s.OutputDir) // only when empty
		s.createdDir = false
	}
}

// sortedIncludes returns the include paths cleaned and sorted, or nil when one
// of them is the whole staging directory.
func sortedIncludes(include []string) []string {
	out := make([]string, 0, len(include))
	for _, inc := range include {
		rel := filepath.Clean(filepath.FromSlash(inc))
		if rel == "." {
			return nil
		}
		out = append(out, rel)
	}
	sort.Strings(out)
	return out
}

// insideDir checks that dir, once symlinks are resolved, is root or below it:
// an include must not reach out of the staging directory through a link.
func insideDir(root, dir string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(realRoot, realDir); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("leads out of the staging directory (to %s) through a symlink", realDir)
	}
	return nil
}

// checkEntrypoint requires the entrypoint program to be an executable file in
// the image rooted at root, or on the host for an absolute path (/bin/sh), as
// the local provider finds it (entrypoint.Program).
func checkEntrypoint(root, prog string) error {
	_, err := entrypoint.Program(root, prog)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, entrypoint.ErrNotFound) && !filepath.IsAbs(prog):
		return fmt.Errorf("entrypoint: %w (check include and the provision commands)", err)
	}
	return fmt.Errorf("entrypoint: %w", err)
}

// otherArtifacts lists the artifact files in dir that do not belong to image id.
func otherArtifacts(dir, id string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read output_dir: %w", err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "img-") || !(strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".json")) {
			continue
		}
		if name == id+".tar.gz" || name == id+".json" {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// writeFileAtomic writes data to path atomically (internal/atomicfile), so
// readers never see a partial artifact. created reports that path did not exist
// before (and so is this build's to remove).
func writeFileAtomic(path string, data []byte) (created bool, err error) {
	_, statErr := os.Lstat(path)
	created = errors.Is(statErr, os.ErrNotExist)
	if err := atomicfile.Write(path, data); err != nil {
		return false, err
	}
	return created, nil
}
