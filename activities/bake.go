package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/ansible"
	"github.com/imago/imago/internal/atomicfile"
	"github.com/imago/imago/internal/bake"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/netguard"
	"github.com/imago/imago/internal/ociimage"
	"github.com/imago/imago/internal/packerplugin"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/internal/vmimage"
)

// fence refuses a bake this worker must not run, whoever validated it: a passEnv
// naming imago's or a cloud's secrets, a path outside the worker's
// IMAGO_BAKE_ROOTS (when set), or an IMAGO_BAKE_USER the worker cannot switch to.
func (a *Activities) fence(b contract.Bake) error {
	if err := a.BakeUser.Check(); err != nil {
		return temporal.NewNonRetryableApplicationError("bake refused: "+err.Error(), contract.ErrBakeFenced, nil)
	}
	es := spec.PassEnvErrors(b.PassEnv)
	if !a.BakeRoots.IsZero() {
		es = append(es, a.BakeRoots.Check(&spec.Bake{Bake: b})...)
	}
	if len(es) == 0 {
		return nil
	}
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return temporal.NewNonRetryableApplicationError("bake refused by this worker's fence: "+strings.Join(msgs, "; "), contract.ErrBakeFenced, nil)
}

// BakeDigest computes the input digest of a bake: the spec's build-relevant fields,
// the content of what it reads (bakeRoots: source tree, template, files, Ansible
// playbook directories), and the resolved base image.
func (a *Activities) BakeDigest(ctx context.Context, b contract.Bake) (contract.BakeDigestResult, error) {
	var out contract.BakeDigestResult
	if err := a.fence(b); err != nil {
		return out, err
	}
	if b.Base != nil && b.Base.OCI != "" {
		_, h, err := ociBase(b.Base.OCI, "")
		if err != nil {
			return out, err
		}
		out.BaseOCIDigest = h.String()
	} else if b.Base != nil {
		base, err := a.resolveRef(ctx, b.Service, *b.Base)
		if err != nil {
			return out, err
		}
		if err := base.Usable(); err != nil {
			return out, temporal.NewNonRetryableApplicationError("base image: "+err.Error(), contract.ErrBaseRevoked, nil)
		}
		if vmimage.IsKernelBase(base) && b.Format != spec.FormatVM {
			return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("base: image %s is a kernel base (imago image import-kernel): it is the base of format: vm bakes only", base.ID), contract.ErrTemplate, nil)
		}
		out.BaseImageID = base.ID
	}
	h := sha256.New()
	inputs := struct {
		Builder    string                   `json:"builder"`
		Provision  []contract.ProvisionStep `json:"provision"` // a shell step is a string, as it was
		Variables  map[string]string        `json:"variables"` // encoding/json sorts map keys
		PassEnv    []string                 `json:"passEnv"`
		Include    []string                 `json:"include"`
		Entrypoint []string                 `json:"entrypoint"`
		Vars       map[string]string        `json:"vars"`
		Labels     map[string]string        `json:"labels"`
		Base       string                   `json:"base"`
		// Left out when empty, so the digests of bakes without them stay as they were.
		Format       string   `json:"format,omitempty"`
		Destinations []string `json:"destinations,omitempty"`
		BaseOCI      string   `json:"baseOci,omitempty"`  // the OCI base's manifest digest
		VMKernel     string   `json:"vmKernel,omitempty"` // format vm: vmimage.KernelIdentity
	}{b.Builder, b.Provision, b.Variables, b.PassEnv, b.Include, b.Entrypoint, b.Vars, b.Labels, out.BaseImageID, b.Format, b.Destinations, out.BaseOCIDigest, ""}
	if b.Format == spec.FormatVM {
		var err error
		if inputs.VMKernel, err = a.vmKernelIdentity(ctx, out.BaseImageID); err != nil {
			return out, err
		}
	}
	enc, _ := json.Marshal(inputs)
	h.Write(enc)
	for _, root := range bakeRoots(b) {
		if err := hashTree(h, root.path); err != nil {
			return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("read bake inputs: %v", err), contract.ErrTemplate, nil)
		}
	}
	out.InputDigest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// bakeRoot is a file or directory a bake reads: its input digest hashes it, and
// its provenance names it as the material "<kind>:<name>".
type bakeRoot struct {
	kind, name, path string
}

// bakeRoots are the files and directories bake b reads, in the order its input
// digest hashes them: its source tree, its template, its files and the directory
// of each Ansible playbook (the playbook, its roles and vars; named after the
// playbook).
func bakeRoots(b contract.Bake) []bakeRoot {
	var roots []bakeRoot
	add := func(kind, path, name string) {
		if path != "" {
			roots = append(roots, bakeRoot{kind: kind, name: name, path: path})
		}
	}
	add("source", b.Source, filepath.Base(b.Source))
	add("template", b.Template, filepath.Base(b.Template))
	for _, f := range b.Files {
		add("file", f, filepath.Base(f))
	}
	for _, st := range b.Provision {
		if st.Ansible != "" {
			add("ansible", filepath.Dir(st.Ansible), filepath.Base(st.Ansible))
		}
	}
	return roots
}

// hashTree feeds names, executable bits and contents under root into h, in order.
func hashTree(h io.Writer, root string) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%v\x00", filepath.ToSlash(rel), fi.Mode()&0o111 != 0)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// resolveRef finds the image an ImageRef names: by ID, or a channel's current image.
func (a *Activities) resolveRef(ctx context.Context, service string, ref contract.ImageRef) (contract.Image, error) {
	if ref.Service != "" {
		service = ref.Service
	}
	id := ref.ID
	if ref.Channel != "" {
		e, err := a.Catalog.Channel(ctx, service, ref.Channel)
		if err != nil {
			return contract.Image{}, notFoundIsPermanent(err)
		}
		id = e.ImageID
	}
	img, err := a.Catalog.Get(ctx, id)
	if err != nil {
		return img, notFoundIsPermanent(err)
	}
	return img, nil
}

// notFoundIsPermanent makes missing and revoked images non-retryable: no retry
// brings them back.
func notFoundIsPermanent(err error) error {
	switch {
	case errors.Is(err, contract.ErrRevoked):
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrImageRevoked, nil)
	case errors.Is(err, catalog.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrImageNotFound, nil)
	}
	return err
}

// FindCached returns the image already built from these inputs, if any and usable.
func (a *Activities) FindCached(ctx context.Context, in contract.FindCachedInput) (contract.FindCachedResult, error) {
	img, err := a.Catalog.FindByInputDigest(ctx, in.Service, in.InputDigest)
	if errors.Is(err, catalog.ErrNotFound) {
		return contract.FindCachedResult{}, nil
	}
	if err != nil {
		return contract.FindCachedResult{}, err
	}
	if img.Usable() != nil {
		return contract.FindCachedResult{}, nil // revoked: build again (with force the digest is the same, so the ID may be too)
	}
	return contract.FindCachedResult{Found: true, Image: img}, nil
}

// BakeBuild builds the image into a directory of the bake run. A retried
// attempt (say, after a worker crash) adopts a build that finished; two bakes
// of the same inputs never share a directory.
func (a *Activities) BakeBuild(ctx context.Context, in contract.BakeBuildInput) (contract.BakeBuildResult, error) {
	b := in.Spec
	if err := a.fence(b); err != nil {
		return contract.BakeBuildResult{}, err
	}
	outDir := buildDir(a.Home, b.Service, in.InputDigest, in.BuildID)
	done := filepath.Join(outDir, "done.json")
	var prev contract.BakeBuildResult
	if readJSON(done, &prev) == nil {
		prev.Adopted = true
		activity.RecordHeartbeat(ctx, "adopted finished build "+prev.Image.ID)
		return prev, nil
	}
	if err := os.RemoveAll(outDir); err != nil {
		return contract.BakeBuildResult{}, err
	}

	// Heartbeat with the latest output line, on a ticker, so a silent step (a long
	// compile) is not taken for a dead worker.
	hb := startHeartbeat(ctx, "starting")
	defer hb.Stop()
	say := func(l string) { hb.Set(l) }
	started := time.Now()

	img := contract.Image{
		Service: b.Service, InputDigest: in.InputDigest, Parent: in.BaseImageID,
		Builder: b.Builder, Entrypoint: b.Entrypoint, Labels: b.Labels,
	}
	if in.BaseOCIDigest != "" {
		// The OCI base the input digest read, by name and digest: the OCI
		// image's labels and the catalog record's (writeOCI reads it back).
		base, err := ociimage.ParseBase(b.Base.OCI, "")
		if err != nil {
			return contract.BakeBuildResult{}, temporal.NewNonRetryableApplicationError("base.oci: "+err.Error(), contract.ErrTemplate, nil)
		}
		img.Labels = maps.Clone(b.Labels)
		if img.Labels == nil {
			img.Labels = map[string]string{}
		}
		img.Labels[ociimage.LabelBaseName] = base.String()
		img.Labels[ociimage.LabelBaseDigest] = in.BaseOCIDigest
	}
	var res contract.BakeBuildResult
	switch b.Builder {
	case contract.BuilderLocal:
		cfg := localBuilderConfig(b, outDir, in.BaseImageID)
		var kernel vmimage.Kernel // zero: the host's (vmimage.FindKernel)
		if b.Format == spec.FormatVM {
			k, done, err := a.prepareVMKernel(ctx, cfg, in.BaseImageID)
			if err != nil {
				return res, err
			}
			defer done()
			kernel = k
		}
		art, err := packerplugin.BuildAs(ctx, cfg, packerplugin.NewLineUi(say), a.BakeUser)
		if err != nil {
			return res, ansibleError(b, buildError(err))
		}
		img.Digest = art.State("digest").(string)
		// The plugin names a plain local image (art.Id()); an OCI or VM image's ID
		// covers its format too, and an OCI image's inputs and base: the ID
		// catalog.Identity reads back from the record PublishImage makes.
		img.ID = catalog.IdentityAs(img, b.Format).ID()
		res.ArchivePath = art.State("archive").(string)
		img.Archive = res.ArchivePath
		if b.Format == spec.FormatOCI {
			// Its digest now, for the record; the image goes to its destinations
			// once it passed its test (PublishImage).
			if img.OCIDigest, err = writeOCI(ctx, img, res.ArchivePath, nil, nil); err != nil {
				return res, err
			}
			for _, d := range b.Destinations {
				dest, err := ociimage.ParseDestination(d, b.Dir)
				if err != nil {
					return res, temporal.NewNonRetryableApplicationError("destinations: "+err.Error(), contract.ErrTemplate, nil)
				}
				res.OCIDestinations = append(res.OCIDestinations, dest.String())
			}
		}
		if b.Format == spec.FormatVM {
			// The bootable disk, kernel and initrd beside the worker; the
			// record names them (vmimage.Artifact*).
			say("writing the VM image (mkfs.ext4, qemu-img)")
			arts, err := vmimage.Build(ctx, vmimage.BuildInput{Archive: res.ArchivePath, Digest: img.Digest,
				Entrypoint: b.Entrypoint, OutDir: filepath.Join(a.Home, "vm-images", img.ID), Kernel: kernel})
			if err != nil {
				return res, temporal.NewNonRetryableApplicationError("format vm: "+err.Error(), contract.ErrTemplate, nil)
			}
			img.Artifacts = arts
		}
	case contract.BuilderPacker:
		run := bake.PackerRun{
			Packer: a.Packer, Template: b.Template, Vars: b.Vars, PassEnv: b.PassEnv, Dir: outDir,
			OnEvent: func(e bake.Event) {
				if _, text, ok := e.UI(); ok {
					say(text)
				}
			},
		}
		if a.BakeUser != nil {
			// Packer runs as the bake user, in a directory (and HOME) of that user's.
			work, err := os.MkdirTemp("", "imago-packer-")
			if err != nil {
				return res, err
			}
			defer os.RemoveAll(work)
			if err := a.BakeUser.Own(work); err != nil {
				return res, err
			}
			run.Dir, run.Home, run.User = work, work, a.BakeUser
		} else if err := os.MkdirAll(outDir, 0o700); err != nil {
			return res, err
		}
		run.Manifest = filepath.Join(run.Dir, "packer-manifest.json")
		out, err := bake.RunPacker(ctx, run)
		if err != nil {
			return res, buildError(err)
		}
		img.Artifacts = map[string]string{}
		var ids []string
		for _, build := range out.Builds {
			for k, v := range build.Artifacts {
				key := build.Name
				if k != "" {
					key = k
				}
				img.Artifacts[key] = v
			}
			ids = append(ids, build.ArtifactID)
		}
		sort.Strings(ids)
		sum := sha256.Sum256([]byte(in.InputDigest + "\x00" + strings.Join(ids, ",")))
		img.ID = "img-" + hex.EncodeToString(sum[:])[:12]
	}
	res.Image = img
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return res, err
	}
	if err := a.writeProvenanceInputs(b, img.Labels, outDir, started); err != nil {
		return res, err
	}
	if err := atomicfile.Write(done, data); err != nil {
		return res, err
	}
	return res, nil
}

// writeOCI makes the OCI image of a local image's archive and writes it to each
// destination (absolute URLs; registries pushed to through rt); it returns the
// image's manifest digest. A destination that cannot be written is a permanent
// failure (a retry would write the same place); a push that failed may succeed
// on retry, unless the outbound guard refused it.
func writeOCI(ctx context.Context, img contract.Image, archivePath string, destinations []string, rt http.RoundTripper) (string, error) {
	var base v1.Image
	if name := img.Labels[ociimage.LabelBaseName]; name != "" {
		var err error
		if base, _, err = ociBase(name, img.Labels[ociimage.LabelBaseDigest]); err != nil {
			return "", err
		}
	}
	oci, err := ociimage.FromArchive(archivePath, ociimage.Config{ImageID: img.ID, Service: img.Service, Digest: img.Digest,
		InputDigest: img.InputDigest, Entrypoint: img.Entrypoint, Labels: img.Labels, Base: base})
	if err != nil {
		return "", err
	}
	digest, err := oci.Digest()
	if err != nil {
		return "", err
	}
	for _, d := range destinations {
		dest, err := ociimage.ParseDestination(d, "")
		switch {
		case err != nil:
		case dest.IsFile():
			err = ociimage.Write(oci, dest, img.Service, img.ID)
		default:
			activity.RecordHeartbeat(ctx, "pushing the OCI image to "+dest.String())
			if err = ociimage.Push(ctx, oci, dest, rt); err != nil && !errors.Is(err, netguard.ErrRefused) {
				return "", err
			}
		}
		if err != nil {
			return "", temporal.NewNonRetryableApplicationError("write OCI image: "+err.Error(), contract.ErrTemplate, nil)
		}
	}
	return digest.String(), nil
}

// ociBase reads the OCI base named by a bake's base.oci (an absolute
// oci-layout:// URL); with digest set, the image with that manifest digest (the
// one the input digest read). A base that cannot be read is a permanent failure.
func ociBase(name, digest string) (v1.Image, v1.Hash, error) {
	base, err := ociimage.ParseBase(name, "")
	if err == nil && digest != "" {
		base.Ref, base.Digest = "", digest
	}
	var img v1.Image
	var h v1.Hash
	if err == nil {
		img, h, err = base.Image()
	}
	if err != nil {
		return nil, h, temporal.NewNonRetryableApplicationError("base.oci: "+err.Error(), contract.ErrTemplate, nil)
	}
	return img, h, nil
}

// buildDir is Home/bakes/<service>/<inputs>-<run>: the digest's first 16 hex
// digits and, when the run is named, 12 of the run's hash.
func buildDir(home, service, inputDigest, buildID string) string {
	name := strings.TrimPrefix(inputDigest, "sha256:")[:16]
	if buildID != "" {
		sum := sha256.Sum256([]byte(buildID))
		name += "-" + hex.EncodeToString(sum[:])[:12]
	}
	return filepath.Join(home, "bakes", service, name)
}

// The provisioning commands see the base image's ID as $IMAGO_BASE_IMAGE, so an
// image can record (or fetch) what it was built on.
func localBuilderConfig(b contract.Bake, outDir, baseImageID string) map[string]any {
	cfg := map[string]any{
		"service":    b.Service,
		"entrypoint": b.Entrypoint,
		"output_dir": outDir,
	}
	if b.Source != "" {
		cfg["source_dir"] = b.Source
	}
	if len(b.Files) > 0 {
		cfg["files"] = b.Files
	}
	if len(b.Provision) > 0 {
		cmds := make([]string, len(b.Provision))
		for i, st := range b.Provision {
			cmds[i] = st.Shell
			if st.Ansible != "" {
				cmds[i] = ansible.Command(st.Ansible, st.ExtraVars)
			}
		}
		cfg["provision"] = cmds
	}
	env := map[string]string{}
	for k, v := range b.Variables {
		env[k] = v
	}
	if baseImageID != "" {
		env["IMAGO_BASE_IMAGE"] = baseImageID
	}
	if len(env) > 0 {
		cfg["env"] = env
	}
	if len(b.PassEnv) > 0 {
		cfg["pass_env"] = b.PassEnv
	}
	if len(b.Include) > 0 {
		cfg["include"] = b.Include
	}
	if len(b.Labels) > 0 {
		cfg["labels"] = b.Labels
	}
	return cfg
}

// buildError makes template and configuration errors non-retryable; a build that
// failed otherwise may succeed on retry.
func buildError(err error) error {
	var te *bake.TemplateError
	if errors.As(err, &te) {
		return temporal.NewNonRetryableApplicationError("packer template: "+te.Message, contract.ErrTemplate, nil)
	}
	var ce *packerplugin.ConfigError
	if errors.As(err, &ce) {
		return temporal.NewNonRetryableApplicationError(ce.Error(), contract.ErrTemplate, nil)
	}
	return err
}

// ansibleError names the task a failed playbook stopped at: a task that failed
// fails again, so the build is not retried.
func ansibleError(b contract.Bake, err error) error {
	for _, st := range b.Provision {
		if st.Ansible == "" || !strings.Contains(err.Error(), st.Ansible) { // the failed command names its playbook
			continue
		}
		if f, ok := ansible.FailedTask(err.Error()); ok {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("ansible playbook %s failed at task %q: %s", st.Ansible, f.Task, f.Fatal),
				contract.ErrProvisionFailed, err)
		}
	}
	return err
}

// TestImage provisions one instance of the image, waits until it is healthy, runs
// the checks against it and terminates it, whatever the outcome.
func (a *Activities) TestImage(ctx context.Context, in contract.TestImageInput) (err error) {
	p := a.Provider
	if a.Local != nil {
		p = a.Local // a local image boots locally, whatever the rollouts' provider
	}
	hb := startHeartbeat(ctx, "booting a test instance of "+in.Image.ID)
	defer hb.Stop()
	fleet, err := p.Provision(ctx, contract.ProvisionRequest{
		Token: in.Token, Service: in.Image.Service, Environment: "bake-test", ImageID: in.Image.ID, Size: 1,
		Labels: map[string]string{"purpose": "image-test"},
	})
	if err != nil {
		return providerError(err)
	}
	defer func() {
		tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if terr := p.Terminate(tctx, fleet.ID); terr != nil && err == nil {
			err = terr
		}
	}()
	hb.Set("waiting for " + in.Health.Path)
	problems, err := a.pollHealthy(ctx, fleet.ID, 0, 0, in.Health.Path, in.Health.Interval.D(), time.Now().Add(in.Health.Timeout.D()),
		func(contract.Fleet, int, int) {})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("image %s did not become healthy within %s: %s",
			in.Image.ID, in.Health.Timeout, strings.Join(problems, "; ")), contract.ErrImageTest, nil)
	}
	if err := a.runChecks(ctx, fleet.ID, 0, in.Checks); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			return temporal.NewNonRetryableApplicationError("image "+in.Image.ID+" failed its test: "+app.Message(), contract.ErrImageTest, nil)
		}
		return err
	}
	return nil
}

// publishImage records the image in the catalog. Two bakes of the same inputs end
// with one image: the catalog keeps the first and returns it to both. A local
// image gets its provenance (storeProvenance), signed with the worker's key.
func (a *Activities) publishImage(ctx context.Context, in contract.PublishImageInput) (contract.Image, error) {
	img := in.Image
	if in.ArchivePath == "" {
		return a.Catalog.Publish(ctx, img)
	}
	archive, err := os.ReadFile(in.ArchivePath)
	if err != nil {
		return img, temporal.NewNonRetryableApplicationError(fmt.Sprintf("read built archive: %v (bake again with --force)", err), contract.ErrTemplate, nil)
	}
	img.Archive = ""
	if len(in.OCIDestinations) > 0 {
		activity.RecordHeartbeat(ctx, "writing the OCI image to "+strings.Join(in.OCIDestinations, ", "))
		digest, err := writeOCI(ctx, img, in.ArchivePath, in.OCIDestinations, a.registryTransport())
		if err != nil {
			return img, err
		}
		if digest != img.OCIDigest {
			return img, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the OCI image of %s is %s, not the %s its build recorded (bake again with --force)",
				img.ID, digest, img.OCIDigest), contract.ErrTemplate, nil)
		}
	}
	pub, err := a.Catalog.PublishArchive(ctx, archive, img)
	if err != nil || pub.ID != in.Image.ID {
		return pub, err // another image of these inputs won: its own bake stated its provenance
	}
	activity.RecordHeartbeat(ctx, "provenance of "+pub.ID)
	return pub, a.storeProvenance(ctx, pub, in.ArchivePath)
}

// registryTransport is what pushes to a registry dial through: the outbound guard
// of the analysis client (IMAGO_ANALYSIS_ALLOW), or, without one, a guard that
// allows public addresses only.
func (a *Activities) registryTransport() http.RoundTripper {
	if a.Analysis != nil && a.Analysis.Transport != nil {
		return a.Analysis.Transport
	}
	return netguard.New(netguard.Allow{}).Client(0).Transport
}

// MoveChannel points a channel at an image; a retry that finds it moved already
// adds no second history entry.
func (a *Activities) MoveChannel(ctx context.Context, in contract.MoveChannelInput) (contract.ChannelEntry, error) {
	if cur, err := a.Catalog.Channel(ctx, in.Service, in.Channel); err == nil && cur.ImageID == in.ImageID {
		return cur, nil
	}
	e, err := a.Catalog.MoveChannel(ctx, in.Service, in.Channel, in.ImageID, catalog.MoveOptions{By: in.By, Reason: in.Reason})
	if err != nil {
		return e, notFoundIsPermanent(err)
	}
	return e, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
