package contract

import (
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// ProvisionStep is one item of an imago-local bake's provision list: a shell
// command (written as a plain string, as before there were other kinds) or an
// Ansible playbook run against the staging directory:
//
//	provision:
//	  - go build -o hello .
//	  - {ansible: site.yml, extraVars: {greeting: hi}}
//
// A shell step is a JSON string too, so recorded histories and the input digests
// of bakes without playbooks are unchanged.
type ProvisionStep struct {
	Shell string `yaml:"-" json:"-"`
	// Ansible is the playbook (relative to the bake file), run with
	// ansible-playbook -c local -i localhost, in the staging directory.
	Ansible string `yaml:"ansible" json:"ansible"`
	// ExtraVars are passed to the playbook with --extra-vars.
	ExtraVars map[string]string `yaml:"extraVars" json:"extraVars,omitempty"`
}

// ShellSteps makes one shell step of each command.
func ShellSteps(commands ...string) []ProvisionStep {
	out := make([]ProvisionStep, len(commands))
	for i, c := range commands {
		out[i] = ProvisionStep{Shell: c}
	}
	return out
}

// String is the step as a log line shows it.
func (s ProvisionStep) String() string {
	if s.Ansible != "" {
		return "ansible " + s.Ansible
	}
	return s.Shell
}

type provisionStepFields ProvisionStep // without the methods

func (s *ProvisionStep) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = ProvisionStep{}
		return n.Decode(&s.Shell)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a provision step is a shell command or {ansible: PLAYBOOK, extraVars: {...}}", n.Line)
	}
	var f provisionStepFields
	if err := n.Decode(&f); err != nil {
		return err
	}
	*s = ProvisionStep(f)
	return nil
}

func (s ProvisionStep) MarshalJSON() ([]byte, error) {
	if s.Ansible == "" {
		return json.Marshal(s.Shell)
	}
	return json.Marshal(provisionStepFields(s))
}

func (s *ProvisionStep) UnmarshalJSON(data []byte) error {
	*s = ProvisionStep{}
	if len(data) > 0 && data[0] == '"' {
		return json.Unmarshal(data, &s.Shell)
	}
	var f provisionStepFields
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*s = ProvisionStep(f)
	return nil
}
