package contract

// The data of a bake spec, as the Bake workflow receives it (package spec
// decodes, defaults and validates it). The JSON and YAML names are in
// recorded histories and users' files: never rename one.

// Bake describes how to build one image of a service.
type Bake struct {
	Service string `yaml:"service" json:"service"`
	// Builder is "imago-local" (the in-process Packer builder; a local image) or
	// "packer" (any HCL2 template run by the packer binary, e.g. amazon-ebs).
	Builder string `yaml:"builder" json:"builder"`

	// imago-local: Source is a directory copied into the staging directory, Files
	// single files copied into its root; Provision runs there, in order (shell
	// commands and Ansible playbooks, see ProvisionStep), with a
	// clean environment: Variables plus the names in PassEnv.
	Source     string            `yaml:"source" json:"source,omitempty"`
	Files      []string          `yaml:"files" json:"files,omitempty"`
	Provision  []ProvisionStep   `yaml:"provision" json:"provision,omitempty"`
	Variables  map[string]string `yaml:"variables" json:"variables,omitempty"`
	PassEnv    []string          `yaml:"passEnv" json:"passEnv,omitempty"`
	Include    []string          `yaml:"include" json:"include,omitempty"`
	Entrypoint []string          `yaml:"entrypoint" json:"entrypoint,omitempty"`

	// Format is what an imago-local bake makes besides its local image: "" or
	// "local" (the local image only), "vm" (also a bootable VM image, internal/vmimage) or "oci" (also an OCI image of the same files,
	// written to each of Destinations: oci-layout://DIR, docker-archive://FILE).
	Format       string   `yaml:"format" json:"format,omitempty"`
	Destinations []string `yaml:"destinations" json:"destinations,omitempty"`

	// packer: Template is an HCL2 file or directory; Vars are passed with -var.
	Template string            `yaml:"template" json:"template,omitempty"`
	Vars     map[string]string `yaml:"vars" json:"vars,omitempty"`

	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
	// Base is the image this one is built on (its parent in the catalog).
	Base *ImageRef `yaml:"base" json:"base,omitempty"`
	// Channel is moved to the new image once it passed its test; default latest.
	Channel string `yaml:"channel" json:"channel"`
	// Force builds even when the catalog has an image with the same input digest.
	Force bool `yaml:"force" json:"force,omitempty"`
	// Test boots one instance of a local image and checks it before publishing.
	Test ImageTest `yaml:"test" json:"test"`

	// Dir is the directory relative paths are resolved against (the bake file's).
	Dir string `yaml:"-" json:"dir,omitempty"`
}

// WorkflowID is the workflow ID of a bake: one bake per service and channel
// at a time.
func (b Bake) WorkflowID() string { return BakeWorkflowID(b.Service, b.Channel) }

// BakeWorkflowID is the workflow ID of the bake of service for channel.
func BakeWorkflowID(service, channel string) string { return "bake/" + service + "/" + channel }

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
