package contract

// The data of a pipeline spec, as the Pipeline workflow receives it (package
// spec decodes it, loads the files it names, defaults and validates it). The
// JSON and YAML names are in recorded histories and users' files: never
// rename one.

// Pipeline is a bake followed by rollouts of its image to environments in order,
// e.g. staging then prod. A stage starts only when the one before it succeeded.
//
//	name: hello
//	bake: bake.yaml
//	onBaseChange: true
//	stages:
//	  - rollout: rollout-staging.yaml
//	  - rollout: rollout-prod.yaml
//	    approval: {required: true, timeout: 24h}
type Pipeline struct {
	Name string `yaml:"name" json:"name"`
	// BakeFile is the bake spec file (relative to the pipeline file); the pipeline
	// rolls out the image it produces. Image instead rolls out an existing image.
	BakeFile string    `yaml:"bake" json:"bakeFile,omitempty"`
	Image    *ImageRef `yaml:"image" json:"image,omitempty"`
	// OnBaseChange starts the pipeline when the channel of its bake's base image
	// moves (a patched base OS), through its schedule.
	OnBaseChange bool    `yaml:"onBaseChange" json:"onBaseChange,omitempty"`
	Stages       []Stage `yaml:"stages" json:"stages"`

	// Bake is the loaded bake spec (filled from BakeFile by spec.LoadPipeline).
	Bake *Bake `yaml:"-" json:"bake,omitempty"`
	// Dir is the directory relative paths are resolved against (the pipeline file's).
	Dir string `yaml:"-" json:"dir,omitempty"`
}

// Stage is one environment of a pipeline.
type Stage struct {
	// RolloutFile is the rollout spec file of this stage; its image is left out,
	// since the pipeline sets it.
	RolloutFile string `yaml:"rollout" json:"rolloutFile,omitempty"`
	// Approval holds the pipeline before this stage starts until someone approves it
	// (imago pipeline approve NAME); a gate that times out stops the pipeline.
	Approval ApprovalSpec `yaml:"approval" json:"approval"`

	// Rollout is the loaded rollout spec (filled by spec.LoadPipeline).
	Rollout Rollout `yaml:"-" json:"rollout"`
}

// Service is the service the pipeline ships.
func (p Pipeline) Service() string {
	if p.Bake != nil {
		return p.Bake.Service
	}
	if len(p.Stages) > 0 {
		return p.Stages[0].Rollout.Service
	}
	return ""
}

// WorkflowID is the ID of the pipeline's workflow when started by hand.
func (p Pipeline) WorkflowID() string { return PipelineWorkflowID(p.Name) }

// PipelineWorkflowID is the workflow ID of pipeline name.
func PipelineWorkflowID(name string) string { return "pipeline/" + name }
