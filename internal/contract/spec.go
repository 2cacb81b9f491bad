package contract

// ImageRef says which image to roll out: exactly one of ID, Channel, Bake.
type ImageRef struct {
	// Service owns the channel when it is another service's (a base image's); default: the spec's service.
	Service string `yaml:"service" json:"service,omitempty"`
	ID      string `yaml:"id" json:"id,omitempty"`
	Channel string `yaml:"channel" json:"channel,omitempty"`
	Bake    string `yaml:"bake" json:"bake,omitempty"`
	// OCI is a bake's base only (format: oci): an OCI image in a layout,
	// oci-layout://DIR[:REF] or oci-layout://DIR@sha256:…, whose layers the image reuses.
	OCI string `yaml:"oci" json:"oci,omitempty"`
	// AllowDeprecated lets a rollout ship an image a lifecycle rule deprecated
	// (imago rollout start --allow-deprecated); without it the resolve step refuses one.
	AllowDeprecated bool `yaml:"allowDeprecated" json:"allowDeprecated,omitempty"`
}

// Health is the probe every instance must pass before the fleet counts as up.
type Health struct {
	Path     string   `yaml:"path" json:"path"`
	Interval Duration `yaml:"interval" json:"interval"`
	Timeout  Duration `yaml:"timeout" json:"timeout"`
}

// Check is a smoke check run against every instance of the new fleet before it
// takes traffic.
type Check struct {
	Path         string `yaml:"path" json:"path"`
	ExpectStatus int    `yaml:"expectStatus" json:"expectStatus"`
	ExpectBody   string `yaml:"expectBody" json:"expectBody,omitempty"` // substring
}
