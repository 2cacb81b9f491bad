package api

// Pipeline validation: a pipeline sent inline (a schedule's, or POST
// /v1/pipelines) is checked like a pipeline file, with field paths in the request
// body.

import (
	"errors"
	"fmt"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// inlineBakeLabel stands for the bake file a pipeline sent to the API has none of
// (the pipeline's progress says "baking hello from …").
const inlineBakeLabel = "an inline bake spec (REST API)"

func stages(in []PipelineStage) []contract.Stage {
	out := make([]contract.Stage, len(in))
	for i, st := range in {
		out[i] = contract.Stage{Rollout: st.Rollout, Approval: st.Approval}
	}
	return out
}

// validatePipeline normalizes p's inline bake (field paths under bakePrefix) and
// validates the pipeline, whose field paths where maps into the request body.
func validatePipeline(p *spec.Pipeline, bakePrefix string, roots spec.BakeRoots, where func(field string) string) contract.FieldErrors {
	var es contract.FieldErrors
	if p.Bake != nil {
		p.BakeFile = inlineBakeLabel
		b := spec.Bake{Bake: *p.Bake}
		es = append(es, normalizeBake(bakePrefix, &b, roots)...)
		*p.Bake = b.Bake
	}
	for i := range p.Stages {
		if r := &p.Stages[i].Rollout; r.Image != (contract.ImageRef{}) {
			es = append(es, contract.FieldError{Field: where(fmt.Sprintf("stages[%d].rollout.image", i)),
				Msg: "is set by the pipeline from its bake or image; leave it out"})
			r.Image = contract.ImageRef{} // and check the rest of the stage
		}
	}
	if err := p.Validate(); err != nil {
		var pes contract.FieldErrors
		if !errors.As(err, &pes) {
			return append(es, contract.FieldError{Field: where(""), Msg: err.Error()})
		}
		for _, e := range pes {
			if e.Field == "bake" && p.Bake == nil && p.Image == nil { // the spec's wording is about files
				e.Msg = "set bake (the bake spec, inline as JSON) or image (an existing image: id or channel)"
			}
			es = append(es, contract.FieldError{Field: where(e.Field), Msg: e.Msg})
		}
	}
	return es
}
