package contract

// Environments declares, once, the environments and the regions of each
// (environments.yaml), so campaign rings can address regions:
//
//	environments:
//	  - {name: staging}
//	  - {name: prod, regions: [eu-west-1, us-east-1, ap-south-1]}
type Environments struct {
	Environments []EnvironmentDecl `yaml:"environments" json:"environments"`
}

// EnvironmentDecl is one environment and its regions (none: it has no region).
type EnvironmentDecl struct {
	Name    string   `yaml:"name" json:"name"`
	Regions []string `yaml:"regions" json:"regions,omitempty"`
}

// Regions are the regions environments declares for env (nil when it does
// not declare env).
func (e Environments) Regions(env string) []string {
	for _, d := range e.Environments {
		if d.Name == env {
			return d.Regions
		}
	}
	return nil
}
