package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/imago/imago/internal/contract"
)

// EnvironmentsFile is the name of the file that declares the environments and
// their regions, looked up beside a campaign spec (LoadCampaign);
// $IMAGO_ENVIRONMENTS names another.
const EnvironmentsFile = "environments.yaml"

// EnvironmentsEnvVar names an environments file instead of the one beside the
// campaign spec.
const EnvironmentsEnvVar = "IMAGO_ENVIRONMENTS"

// ParseEnvironments decodes and validates an environments file: every problem
// names its field and line.
func ParseEnvironments(data []byte) (contract.Environments, error) {
	var e contract.Environments
	src := decodeYAML(data, &e, "the environments file is empty; see the README's Campaigns section")
	if src.broken {
		return e, src.problems
	}
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: field, Line: src.line(field), Msg: fmt.Sprintf(format, args...)})
	}
	if len(e.Environments) == 0 && len(src.problems) == 0 {
		add("environments", "list at least one environment, e.g. [{name: prod, regions: [eu-west-1, us-east-1]}]")
	}
	seen := map[string]int{}
	for i, d := range e.Environments {
		field := fmt.Sprintf("environments[%d]", i)
		if !nameRE.MatchString(d.Name) {
			add(field+".name", "%q is not an environment name: 1-40 lowercase letters, digits or '-'", d.Name)
		} else if j, dup := seen[d.Name]; dup {
			add(field+".name", "%q is already environments[%d]", d.Name, j)
		}
		seen[d.Name] = i
		for j, region := range d.Regions {
			f := fmt.Sprintf("%s.regions[%d]", field, j)
			if !regionRE.MatchString(region) {
				add(f, "%q is not a region: 1-40 lowercase letters, digits or '-', e.g. eu-west-1", region)
			} else if k := slices.Index(d.Regions, region); k < j {
				add(f, "%q is already regions[%d]", region, k)
			}
		}
	}
	if len(es) == 0 {
		return e, src.report(nil)
	}
	return e, src.report(es)
}

// LoadEnvironments reads and validates the environments file at path.
func LoadEnvironments(path string) (contract.Environments, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return contract.Environments{}, fmt.Errorf("read environments: %w", err)
	}
	e, err := ParseEnvironments(data)
	if err != nil {
		return e, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// environmentsFor is the environments file of the campaign spec at path:
// $IMAGO_ENVIRONMENTS, else environments.yaml beside it; "" when neither is.
func environmentsFor(path string) string {
	if p := os.Getenv(EnvironmentsEnvVar); p != "" {
		return p
	}
	p := filepath.Join(filepath.Dir(path), EnvironmentsFile)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return p
}

// CheckRegions refuses a ring region that none of the ring's environments
// declares in envs, naming the field and line.
func (c *Campaign) CheckRegions(envs contract.Environments) error {
	var es contract.FieldErrors
	for i, r := range c.Rings {
		for j, region := range r.Regions {
			declared := false
			for _, env := range r.Environments {
				declared = declared || slices.Contains(envs.Regions(env), region)
			}
			if !declared {
				f := fmt.Sprintf("rings[%d].regions[%d]", i, j)
				es = append(es, contract.FieldError{Field: f, Line: c.src.line(f),
					Msg: fmt.Sprintf("no environment of the ring (%v) declares region %q in the environments file", r.Environments, region)})
			}
		}
	}
	if len(es) > 0 {
		return es
	}
	return nil
}
