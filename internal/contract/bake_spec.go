package contract

// The data of a bake spec, as the Bake workflow receives it (package spec
// decodes, defaults and validates it). The JSON and YAML names are in
// recorded histories and users' files: never rename one.

// ImageTest is what a freshly built local image must pass.
type ImageTest struct {
	Health Health  `yaml:"health" json:"health"`
	Checks []Check `yaml:"checks" json:"checks,omitempty"`
}

// Builders.
const (
	BuilderLocal  = "imago-local"
	BuilderPacker = "packer"
)
