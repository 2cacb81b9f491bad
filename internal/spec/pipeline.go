package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imago/imago/internal/contract"
)

// Pipeline is a pipeline spec (its data is contract.Pipeline, which the
// Pipeline workflow receives) and what it remembers of the files it was read
// from, so that its problems name their lines.
type Pipeline struct {
	contract.Pipeline `yaml:",inline"`

	src     *source     // the file's lines and decoding problems; nil for a spec sent as JSON
	bakeSrc *source     // Load: the bake file's lines
	files   []stageFile // Load: what each stage's rollout file left (none for a spec sent as JSON)
}

// BakeSpec is the loaded bake spec (nil when there is none) with the lines of
// its file, which its problems name (BakeRoots.Check).
func (p *Pipeline) BakeSpec() *Bake {
	if p.Bake == nil {
		return nil
	}
	return &Bake{Bake: *p.Bake, src: p.bakeSrc}
}

// stageFile is what Load keeps of a stage's rollout file beside the stage.
type stageFile struct {
	src     *source // its lines, for Validate's problems
	missing bool    // Load could not read it (and said why)
}

// ParsePipeline decodes a pipeline spec; unknown fields are errors.
func ParsePipeline(data []byte) (Pipeline, error) {
	var p Pipeline
	p.src = decodeYAML(data, &p.Pipeline, "the pipeline spec is empty; see examples/hello/pipeline.yaml")
	if len(p.src.problems) > 0 {
		return p, p.src.problems
	}
	return p, nil
}

// LoadPipeline reads a pipeline file and the bake and rollout files it names,
// applies defaults and validates all of them, reporting every problem with its
// field path (stages[1].rollout.fleet.size).
func LoadPipeline(path string) (Pipeline, error) {
	p, err := ReadPipeline(path)
	if err != nil && !IsInvalid(err) {
		return p, err
	}
	if err := p.Load(); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ReadPipeline decodes a pipeline file without reading the files it names; its
// relative paths are resolved against the file's directory by Load.
func ReadPipeline(path string) (Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Pipeline{}, fmt.Errorf("read pipeline spec: %w", err)
	}
	p, perr := ParsePipeline(data)
	p.Dir, err = filepath.Abs(filepath.Dir(path))
	if err != nil {
		return p, err
	}
	if perr != nil {
		return p, fmt.Errorf("%s: %w", path, perr)
	}
	return p, nil
}

func (p *Pipeline) rel(f string) string {
	if f == "" || filepath.IsAbs(f) {
		return f
	}
	return filepath.Join(p.Dir, f)
}

// Load reads the bake and rollout files and validates the whole pipeline; the
// problems of decoding the pipeline file come first, by line, then the others.
func (p *Pipeline) Load() error {
	if p.src != nil && p.src.broken {
		return p.src.problems
	}
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: field, Line: p.src.line(field), Msg: fmt.Sprintf(format, args...)})
	}
	prefix := func(field, file string, err error) {
		var sub contract.FieldErrors
		if !errors.As(err, &sub) {
			add(field, "%v", err)
			return
		}
		es = append(es, inFile(file, sub).Under(field)...)
	}
	if p.BakeFile != "" {
		b, err := LoadBake(p.rel(p.BakeFile))
		if err == nil || IsInvalid(err) {
			err = b.Normalize() // every problem of the file: decoding's and validation's
		}
		if err != nil {
			prefix("bake", p.BakeFile, unwrapSpec(err))
		} else {
			p.Bake, p.bakeSrc = &b.Bake, b.src
		}
	}
	p.files = make([]stageFile, len(p.Stages))
	for i := range p.Stages {
		st := &p.Stages[i]
		field := fmt.Sprintf("stages[%d].rollout", i)
		p.files[i].missing = true
		if st.RolloutFile == "" {
			add(field, "is required: a rollout spec file for this stage")
			continue
		}
		r, err := LoadRollout(p.rel(st.RolloutFile))
		if err != nil && !IsInvalid(err) {
			prefix(field, st.RolloutFile, unwrapSpec(err))
			continue
		}
		// A file that did not decode whole is reported by Validate's Normalize,
		// with its validation problems.
		st.Rollout, p.files[i] = r.Rollout, stageFile{src: r.src}
	}
	if err := p.Validate(); err != nil {
		var sub contract.FieldErrors
		errors.As(err, &sub)
		es = append(es, sub...)
	}
	if len(es) == 0 {
		return p.src.report(nil)
	}
	return p.src.report(es)
}

// inFile names file beside each problem's line: the lines of a stage's rollout
// spec or of the bake spec are not the pipeline file's.
func inFile(file string, es contract.FieldErrors) contract.FieldErrors {
	out := make(contract.FieldErrors, len(es))
	for i, e := range es {
		if e.Line > 0 {
			e.Msg = fmt.Sprintf("%s line %d: %s", file, e.Line, e.Msg)
			e.Line = 0
		}
		out[i] = e
	}
	return out
}

// unwrapSpec drops the "file: " wrapping of a spec error so its field paths can
// be prefixed; other errors (a missing file) stay whole.
func unwrapSpec(err error) error {
	var es contract.FieldErrors
	if errors.As(err, &es) {
		return es
	}
	return err
}

// Validate checks a loaded pipeline: a name, exactly one image source, stages of
// the bake's service in distinct environments, and valid rollout specs (whose
// image the pipeline sets).
func (p *Pipeline) Validate() error {
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: field, Line: p.src.line(field), Msg: fmt.Sprintf(format, args...)})
	}
	if p.Name == "" {
		add("name", "is required, e.g. hello-nightly")
	} else if !nameRE.MatchString(p.Name) {
		add("name", "%q must be 1-40 lowercase letters, digits or '-'", p.Name)
	}
	switch {
	case p.BakeFile == "" && p.Image == nil:
		add("bake", "set bake (a bake spec file) or image (an existing image: id or channel)")
	case p.BakeFile != "" && p.Image != nil:
		add("image", "set bake or image, not both")
	case p.Image != nil && p.Image.OCI != "":
		add("image.oci", "an OCI image is a bake's base only; a pipeline rolls out an imago image: set image.id or image.channel")
	case p.Image != nil && (p.Image.ID == "") == (p.Image.Channel == ""):
		add("image", "set exactly one of id or channel")
	}
	if p.OnBaseChange && p.BakeFile != "" && p.Bake != nil {
		switch base := p.Bake.Base; {
		case base == nil || base.Channel == "":
			add("onBaseChange", "needs a bake whose base is a channel (base: {service: S, channel: C})")
		case (base.Service == "" || base.Service == p.Bake.Service) && base.Channel == p.Bake.Channel:
			add("onBaseChange", "the bake's base is the channel it moves (%s); it would rebuild itself forever", base.Channel)
		}
	} else if p.OnBaseChange && p.BakeFile == "" {
		add("onBaseChange", "needs a bake whose base is a channel (base: {service: S, channel: C})")
	}
	if len(p.Stages) == 0 && p.BakeFile == "" {
		add("stages", "a pipeline without a bake needs at least one stage")
	}
	seen := map[string]int{}
	for i := range p.Stages {
		st := &p.Stages[i]
		field := fmt.Sprintf("stages[%d]", i)
		if st.Approval.Timeout < 0 {
			add(field+".approval.timeout", "must not be negative")
		}
		if st.Approval.Timeout == 0 {
			st.Approval.Timeout = DefaultApprovalTimeout
		}
		r := Rollout{Rollout: st.Rollout}
		if i < len(p.files) {
			if p.files[i].missing {
				continue // Load reported why
			}
			r.src = p.files[i].src
		}
		imageSet := r.Image != (contract.ImageRef{})
		if imageSet {
			add(field+".rollout.image", "is set by the pipeline from its bake or image; remove it from %s", st.RolloutFile)
		}
		// Validate with a stand-in image: the real one is known only when the bake ran.
		r.Image = contract.ImageRef{ID: "img-pipeline"}
		if err := r.Normalize(); err != nil {
			var sub contract.FieldErrors
			errors.As(err, &sub)
			es = append(es, inFile(st.RolloutFile, sub).Under(field+".rollout")...)
			continue
		}
		if imageSet {
			continue
		}
		r.Image = contract.ImageRef{}
		st.Rollout = r.Rollout
		if p.Bake != nil && r.Service != p.Bake.Service {
			add(field+".rollout.service", "%q differs from the bake's service %q", r.Service, p.Bake.Service)
		}
		if j, dup := seen[r.Environment]; dup {
			add(field+".rollout.environment", "%q is already stage %d", r.Environment, j)
		}
		seen[r.Environment] = i
	}
	if len(es) > 0 {
		return es
	}
	return nil
}
