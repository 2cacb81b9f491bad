package awsfake

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (f *FakeAWS) autoscaling(action string, p url.Values) (*node, *apiError) {
	switch action {
	case "CreateAutoScalingGroup":
		return f.createGroup(p)
	case "DescribeAutoScalingGroups":
		return f.describeGroups(p)
	case "DetachLoadBalancerTargetGroups":
		return f.detachTargetGroups(p)
	case "DeleteAutoScalingGroup":
		return f.deleteGroup(p)
	}
	return nil, fail("InvalidAction", "Could not find operation %s for version %s (fake AWS)", action, versionASG)
}

func (f *FakeAWS) createGroup(p url.Values) (*node, *apiError) {
	name := p.Get("AutoScalingGroupName")
	if name == "" || len(name) > 255 {
		return nil, fail("ValidationError", "1 validation error detected: Value at 'autoScalingGroupName' failed to satisfy constraint")
	}
	if g, ok := f.groups[name]; ok {
		if g.status != "" {
			return nil, fail("AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name %s is being deleted.", name)
		}
		return nil, fail("AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name %s already exists", name)
	}
	ltName, version := p.Get("LaunchTemplate.LaunchTemplateName"), p.Get("LaunchTemplate.Version")
	if _, ok := f.templates[ltName]; !ok {
		return nil, fail("ValidationError", "You must use a valid fully-formed launch template. The specified launch template, with template name %s, does not exist.", ltName)
	}
	if version != "" && version != "1" && version != "$Latest" && version != "$Default" {
		return nil, fail("ValidationError", "You must use a valid fully-formed launch template. The specified launch template version %s does not exist.", version)
	}
	lo, hi := atoi(p.Get("MinSize")), atoi(p.Get("MaxSize"))
	desired := lo
	if p.Has("DesiredCapacity") {
		desired = atoi(p.Get("DesiredCapacity"))
	}
	if lo > hi || desired < lo || desired > hi {
		return nil, fail("ValidationError", "Desired capacity:%d must be between the specified min size:%d and max size:%d", desired, lo, hi)
	}
	if p.Get("VPCZoneIdentifier") == "" {
		return nil, fail("ValidationError", "At least one Availability Zone or VPC Subnet is required.")
	}
	tgs := list(p, "TargetGroupARNs")
	for _, arn := range tgs {
		if _, ok := f.tgs[arn]; !ok {
			return nil, fail("ValidationError", "Provided Target Groups may not be valid. Please ensure they exist and try again.")
		}
	}
	g := &group{
		name: name, template: ltName, version: version, subnets: p.Get("VPCZoneIdentifier"),
		arn: fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", f.Region, Account, randHex(8), name),
		min: lo, max: hi, desired: desired, tgs: tgs, created: time.Now().UTC(),
	}
	for _, i := range indexes(p, "Tags") {
		g.tags = append(g.tags, groupTag{p.Get(i + ".Key"), p.Get(i + ".Value"), p.Get(i+".PropagateAtLaunch") == "true"})
	}
	f.groups[name] = g
	if !f.holdLaunches {
		f.launch(g)
	}
	return nil, nil
}

// matches reports whether g passes the DescribeAutoScalingGroups filters.
func (g *group) matches(filters map[string][]string) bool {
	for name, values := range filters {
		ok := false
		for _, t := range g.tags {
			for _, v := range values {
				switch {
				case name == "tag-key" && t.key == v,
					name == "tag-value" && t.value == v,
					name == "tag:"+t.key && t.value == v:
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (f *FakeAWS) describeGroups(p url.Values) (*node, *apiError) {
	filters := map[string][]string{}
	for _, i := range indexes(p, "Filters") {
		name := p.Get(i + ".Name")
		if name != "tag-key" && name != "tag-value" && !strings.HasPrefix(name, "tag:") {
			return nil, fail("ValidationError", "Filter type %s is not supported (fake AWS supports tag-key, tag-value, tag:<key>)", name)
		}
		filters[name] = append(filters[name], list(p, i+".Values")...)
	}
	names := list(p, "AutoScalingGroupNames")
	var all []*group
	for _, g := range f.groups {
		if len(names) > 0 && !contains(names, g.name) {
			continue
		}
		if g.matches(filters) {
			all = append(all, g)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	size := f.pageSize
	if n := atoi(p.Get("MaxRecords")); n > 0 && n < size {
		size = n
	}
	start := 0
	if tok := p.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "page-"))
		if err != nil || n < 0 || n > len(all) {
			return nil, fail("InvalidNextToken", "The token %q is invalid.", tok)
		}
		start = n
	}
	end := min(start+size, len(all))
	var out []*node
	for _, g := range all[start:end] {
		out = append(out, f.groupNode(g))
	}
	res := el("", members("AutoScalingGroups", out))
	if end < len(all) {
		res.kids = append(res.kids, tx("NextToken", "page-"+strconv.Itoa(end)))
	}
	return res, nil
}

func (f *FakeAWS) groupNode(g *group) *node {
	var ins, tagNodes, tgNodes []*node
	for _, id := range g.members {
		in := f.instances[id]
		ins = append(ins, el("",
			tx("InstanceId", in.id), tx("InstanceType", in.instanceType), tx("AvailabilityZone", f.Region+"a"),
			tx("LifecycleState", in.lifecycle), tx("HealthStatus", in.health), tx("ProtectedFromScaleIn", "false"),
			el("LaunchTemplate", tx("LaunchTemplateName", g.template), tx("Version", g.version)),
		))
	}
	for _, t := range g.tags {
		tagNodes = append(tagNodes, el("",
			tx("ResourceId", g.name), tx("ResourceType", "auto-scaling-group"),
			tx("Key", t.key), tx("Value", t.value), tx("PropagateAtLaunch", strconv.FormatBool(t.propagate))))
	}
	for _, arn := range g.tgs {
		tgNodes = append(tgNodes, tx("", arn))
	}
	return el("",
		tx("AutoScalingGroupName", g.name), tx("AutoScalingGroupARN", g.arn),
		el("LaunchTemplate", tx("LaunchTemplateName", g.template), tx("Version", g.version)),
		num("MinSize", g.min), num("MaxSize", g.max), num("DesiredCapacity", g.desired),
		num("DefaultCooldown", 300), members("AvailabilityZones", []*node{tx("", f.Region+"a")}),
		members("TargetGroupARNs", tgNodes), tx("HealthCheckType", "ELB"), num("HealthCheckGracePeriod", 300),
		members("Instances", ins), ts("CreatedTime", g.created), tx("VPCZoneIdentifier", g.subnets),
		members("Tags", tagNodes), opt("Status", g.status),
	)
}

func (f *FakeAWS) detachTargetGroups(p url.Values) (*node, *apiError) {
	name := p.Get("AutoScalingGroupName")
	g, ok := f.groups[name]
	if !ok || g.status != "" {
		return nil, fail("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
	}
	for _, arn := range list(p, "TargetGroupARNs") {
		var keep []string
		for _, a := range g.tgs {
			if a != arn {
				keep = append(keep, a)
			}
		}
		g.tgs = keep
		// The group deregisters its instances: they drain for the delay.
		if tg, ok := f.tgs[arn]; ok {
			end := time.Now().Add(f.drainDelay(tg))
			for _, id := range g.members {
				if t, ok := tg.targets[id]; ok && t.drainEnd.IsZero() {
					t.drainEnd = end
				}
			}
			f.expire(tg)
		}
	}
	return nil, nil
}

func (f *FakeAWS) deleteGroup(p url.Values) (*node, *apiError) {
	name := p.Get("AutoScalingGroupName")
	g, ok := f.groups[name]
	if !ok {
		return nil, fail("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name)
	}
	if g.status != "" {
		return nil, nil // already being deleted
	}
	if len(g.members) > 0 && p.Get("ForceDelete") != "true" {
		return nil, fail("ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.")
	}
	for _, tg := range f.tgs {
		f.expire(tg)
		for _, id := range g.members {
			if t, ok := tg.targets[id]; ok {
				if !t.drainEnd.IsZero() {
					f.violations = append(f.violations, fmt.Sprintf(
						"DeleteAutoScalingGroup %s: instance %s was still draining in target group %s", name, id, tg.name))
				} else if len(f.inUse(tg.arn)) > 0 {
					f.violations = append(f.violations, fmt.Sprintf(
						"DeleteAutoScalingGroup %s: instance %s was still registered in target group %s, which a listener forwards to", name, id, tg.name))
				}
				delete(tg.targets, id)
			}
		}
	}
	for _, id := range g.members {
		in := f.instances[id]
		if f.deleteLinger {
			in.state, in.lifecycle = "shutting-down", "Terminating"
		} else {
			in.state, in.lifecycle = "terminated", "Terminated"
		}
	}
	if f.deleteLinger {
		g.status = "Delete in progress"
		return nil, nil
	}
	delete(f.groups, name)
	return nil, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
