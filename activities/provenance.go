package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/imago/imago/internal/atomicfile"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/ociimage"
	"github.com/imago/imago/internal/provenance"
)

// provenanceInputsFile is what BakeBuild leaves beside the archive for the
// provenance PublishImage signs: the bake's materials, which the publish step
// is not handed (its input is the image and the archive's path).
const provenanceInputsFile = "provenance-inputs.json"

type provenanceInputs struct {
	Materials     []provenance.Material `json:"materials"`
	VariableNames []string              `json:"variableNames"`
	StartedOn     time.Time             `json:"startedOn"`
	FinishedOn    time.Time             `json:"finishedOn"`
	BuildWorker   string                `json:"buildWorker"`
}

// writeProvenanceInputs records the materials of bake b (built into outDir
// between started and now): the sha256 of each file and directory its input
// digest reads (bakeRoots: source tree, template, files, Ansible playbook
// directories), and the NAMES of its variables. An OCI base (its name and
// digest in the image's labels) is a material too.
func (a *Activities) writeProvenanceInputs(b contract.Bake, labels map[string]string, outDir string, started time.Time) error {
	in := provenanceInputs{StartedOn: started.UTC(), FinishedOn: time.Now().UTC(), BuildWorker: a.workerIdentity()}
	if name := labels[ociimage.LabelBaseName]; name != "" {
		in.Materials = append(in.Materials, provenance.Material{Name: "base:oci", URI: name, Digest: labels[ociimage.LabelBaseDigest]})
	}
	for _, root := range bakeRoots(b) {
		h := sha256.New()
		if err := hashTree(h, root.path); err != nil {
			return fmt.Errorf("provenance: %s %s: %w", root.kind, root.path, err)
		}
		abs, _ := filepath.Abs(root.path)
		m := provenance.Material{Name: root.kind + ":" + root.name, URI: "file://" + filepath.ToSlash(abs),
			Digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}
		if !slices.Contains(in.Materials, m) { // two steps of one playbook
			in.Materials = append(in.Materials, m)
		}
	}
	for k := range b.Variables {
		in.VariableNames = append(in.VariableNames, k)
	}
	for k := range b.Vars {
		in.VariableNames = append(in.VariableNames, k)
	}
	in.VariableNames = append(in.VariableNames, b.PassEnv...)
	slices.Sort(in.VariableNames)
	in.VariableNames = slices.Compact(in.VariableNames)
	data, _ := json.MarshalIndent(in, "", "  ")
	return atomicfile.Write(filepath.Join(outDir, provenanceInputsFile), data)
}

func (a *Activities) workerIdentity() string {
	if a.Worker != "" {
		return a.Worker
	}
	return provenance.WorkerIdentity()
}

// storeProvenance makes the provenance of img, just published from the archive
// at archivePath, signs it with the worker's key (unsigned without one) and
// stores it in the catalog. The key stays on this worker: only the envelope
// leaves it, for the catalog.
func (a *Activities) storeProvenance(ctx context.Context, img contract.Image, archivePath string) error {
	var in provenanceInputs
	err := readJSON(filepath.Join(filepath.Dir(archivePath), provenanceInputsFile), &in)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // a build from before provenance: what the record says
		return fmt.Errorf("provenance of %s: %w", img.ID, err)
	}
	info := activity.GetInfo(ctx)
	b := provenance.Build{
		ImageID: img.ID, Service: img.Service, ArchiveDigest: img.Digest, OCIDigest: img.OCIDigest, InputDigest: img.InputDigest,
		Builder: img.Builder, Entrypoint: img.Entrypoint, Labels: img.Labels, VariableNames: in.VariableNames, Materials: in.Materials,
		BaseImageID: img.Parent, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		Worker: a.workerIdentity(), Version: provenance.Version(), StartedOn: in.StartedOn, FinishedOn: in.FinishedOn,
	}
	if in.BuildWorker != "" && in.BuildWorker != b.Worker {
		b.Worker = in.BuildWorker + "+" + b.Worker // built on one worker, published (and signed) on another
	}
	if img.Parent != "" {
		if base, err := a.Catalog.Get(ctx, img.Parent); err == nil {
			b.BaseDigest = base.Digest
		}
	}
	st, err := provenance.NewStatement(b)
	if err != nil {
		return err
	}
	payload, err := provenance.Marshal(st)
	if err != nil {
		return err
	}
	env, err := a.Signer.Sign(ctx, payload)
	if err != nil {
		return err
	}
	return a.Catalog.PutProvenance(ctx, img.ID, env)
}
