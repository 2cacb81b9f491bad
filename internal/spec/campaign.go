package spec

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/imago/imago/internal/contract"
)

// Campaign is a campaign spec (contract.CampaignSpec) as read from YAML: it
// remembers the file's lines, so every problem names its field and line.
type Campaign struct {
	contract.CampaignSpec
	src *source
}

// DefaultCampaignParallel is a ring's parallel when it says none.
const DefaultCampaignParallel = 1

// ParseCampaign decodes a campaign spec from YAML (JSON is YAML too); unknown
// fields are errors. Normalize applies defaults and validates.
func ParseCampaign(data []byte) (Campaign, error) {
	var c Campaign
	c.src = decodeYAML(data, &c.CampaignSpec, "the campaign spec is empty; see the README's Campaigns section")
	if len(c.src.problems) > 0 {
		return c, c.src.problems
	}
	return c, nil
}

// LoadCampaign reads, decodes and normalizes the campaign spec in file path,
// reporting every problem with its field path and line.
func LoadCampaign(path string) (Campaign, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Campaign{}, fmt.Errorf("read campaign spec: %w", err)
	}
	c, _ := ParseCampaign(data)
	if err := c.Normalize(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Normalize applies defaults and validates; it returns Errors listing every
// problem, those of decoding included, sorted by line.
func (c *Campaign) Normalize() error {
	if c.src != nil && c.src.broken {
		return c.src.problems
	}
	return c.src.report(normalizeCampaign(&c.CampaignSpec, c.src))
}

// NormalizeCampaign applies defaults to a campaign spec built in code or sent
// as JSON and validates it (without lines).
func NormalizeCampaign(s *contract.CampaignSpec) error { return normalizeCampaign(s, nil) }

func normalizeCampaign(s *contract.CampaignSpec, src *source) error {
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: field, Line: src.line(field), Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.Name == "":
		add("name", "is required, e.g. base-2026-12")
	case !nameRE.MatchString(s.Name):
		add("name", "%q must be 1-40 lowercase letters, digits or '-'", s.Name)
	}
	switch sel := s.Select; {
	case sel == nil && len(s.Services) == 0:
		add("services", "list at least one service, e.g. [api, web], or select: {base: {service: base-os, channel: stable}}")
	case sel != nil && len(s.Services) > 0:
		add("select", "set services or select, not both")
	case sel != nil && sel.Base == nil && len(sel.Labels) == 0:
		add("select", "needs base (the base channel, e.g. {service: base-os, channel: stable}) or labels (e.g. {team: payments})")
	case sel != nil:
		for _, k := range slices.Sorted(maps.Keys(sel.Labels)) {
			if k == "" || sel.Labels[k] == "" {
				add("select.labels", "label %q: %q: keys and values must not be empty", k, sel.Labels[k])
			}
		}
		if sel.Base == nil {
			break
		}
		if !nameRE.MatchString(sel.Base.Service) {
			add("select.base.service", "%q is not a service name: 1-40 lowercase letters, digits or '-'", sel.Base.Service)
		}
		if !channelRE.MatchString(sel.Base.Channel) {
			add("select.base.channel", "%q is not a channel name: a lowercase letter, then letters, digits or '-'", sel.Base.Channel)
		}
		if sel.Base.ID != "" || sel.Base.Bake != "" || sel.Base.OCI != "" {
			add("select.base", "names a channel: {service, channel}")
		}
	}
	seen := map[string]int{}
	for i, svc := range s.Services {
		field := fmt.Sprintf("services[%d]", i)
		if !nameRE.MatchString(svc) {
			add(field, "%q is not a service name: 1-40 lowercase letters, digits or '-'", svc)
		} else if j, dup := seen[svc]; dup {
			add(field, "%q is already services[%d]", svc, j)
		}
		seen[svc] = i
	}
	switch {
	case s.Image.Channel == "" && s.Rebuilds():
		// each service is rebuilt on the selected base
	case s.Image.Channel == "":
		add("image.channel", "is required: the channel whose image each service rolls, e.g. stable (or select: {base: ...} without image, to rebuild each service on the base)")
	case !channelRE.MatchString(s.Image.Channel):
		add("image.channel", "%q is not a channel name: a lowercase letter, then letters, digits or '-'", s.Image.Channel)
	}
	if len(s.Rings) == 0 {
		add("rings", "list at least one ring, e.g. [{environments: [staging]}, {environments: [prod]}]")
	}
	envRing := map[string]int{}
	for i := range s.Rings {
		r := &s.Rings[i]
		field := fmt.Sprintf("rings[%d]", i)
		if len(r.Environments) == 0 {
			add(field+".environments", "list at least one environment")
		}
		for j, env := range r.Environments {
			f := fmt.Sprintf("%s.environments[%d]", field, j)
			if !nameRE.MatchString(env) {
				add(f, "%q is not an environment name: 1-40 lowercase letters, digits or '-'", env)
			} else if k, dup := envRing[env]; dup {
				add(f, "%q is already in rings[%d]: a campaign rolls each service to an environment once", env, k)
			}
			envRing[env] = i
		}
		if len(r.Regions) > 0 {
			add(field+".regions", "regions are not supported yet: address environments only")
		}
		switch {
		case r.Parallel < 0:
			add(field+".parallel", "must not be negative")
		case r.Parallel == 0:
			r.Parallel = DefaultCampaignParallel
		}
		if r.Approval.Timeout < 0 {
			add(field+".approval.timeout", "must not be negative")
		} else if r.Approval.Timeout == 0 {
			r.Approval.Timeout = DefaultApprovalTimeout
		}
		if r.BakeTime < 0 {
			add(field+".bakeTime", "must not be negative")
		}
	}
	if s.ErrorBudget.MaxFailed < 0 {
		add("errorBudget.maxFailed", "must not be negative")
	}
	if p := s.ErrorBudget.MaxFailedPercent; p < 0 || p > 100 {
		add("errorBudget.maxFailedPercent", "%d is not a percent from 0 to 100", p)
	}
	if o := s.Override; o != nil && o.Fleet != nil && o.Fleet.Size < 1 {
		add("override.fleet.size", "must be at least 1")
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// ApplyOverride replaces the fields of r that o gives (each whole) and sets
// the image; the caller normalizes the result.
func ApplyOverride(r *Rollout, o *contract.CampaignOverride) {
	if o == nil {
		return
	}
	if o.Fleet != nil {
		r.Fleet = contract.FleetSpec{Size: o.Fleet.Size}
	}
	if o.Health != nil {
		r.Health = *o.Health
	}
	if o.Checks != nil {
		r.Checks = o.Checks
	}
	if o.Strategy != nil {
		r.Strategy = *o.Strategy
	}
	if o.Approval != nil {
		r.Approval = *o.Approval
	}
	if o.BakeTime != nil {
		r.BakeTime = o.BakeTime
	}
	if o.Soak != nil {
		r.Soak = o.Soak
	}
	if o.Windows != nil {
		r.Windows = o.Windows
	}
	if o.Notify != nil {
		r.Notify = o.Notify
	}
}
