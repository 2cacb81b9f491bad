package awsfake

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (f *FakeAWS) autoscaling(action string, p url.Values, now time.Time) (*node, *apiError) {
	switch action {
	case "CreateAutoScalingGroup":
		return f.createGroup(p, now)
	case "DescribeAutoScalingGroups":
		return f.describeGroups(p, now)
	case "DetachLoadBalancerTargetGroups":
		return f.detachTargetGroups(p, now)
	case "DeleteAutoScalingGroup":
		return f.deleteGroup(p, now)
	}
	return nil, fail("InvalidAction", "Could not find operation %s for version %s (fake AWS)", action, versionASG)
}

func (f *FakeAWS) createGroup(p url.Values, now time.Time) (*node, *apiError) {
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
	lt, ok := f.templates[ltName]
	if !ok {
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
	subnets := strings.Split(p.Get("VPCZoneIdentifier"), ",")
	var zones []string
	for _, s := range subnets {
		zone, ok := f.subnets[s]
		if !ok {
			return nil, fail("ValidationError", "The subnet ID '%s' does not exist", s)
		}
		zones = append(zones, zone)
	}
	// What EC2 tells Auto Scaling about the launch template.
	if lt.profile != "" {
		if at, ok := f.profiles[lt.profile]; !ok || now.Before(at) {
			return nil, fail("ValidationError",
				"You must use a valid fully-formed launch template. Value (%s) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN", lt.profile)
		}
	}
	for _, z := range zones {
		if f.refused[z+"/"+lt.instanceType] {
			var offered []string
			for _, oz := range zones {
				if !f.refused[oz+"/"+lt.instanceType] {
					offered = append(offered, oz)
				}
			}
			return nil, fail("ValidationError",
				"You must use a valid fully-formed launch template. Your requested instance type (%s) is not supported in your requested Availability Zone (%s). Please retry your request by not specifying an Availability Zone or choosing %s.",
				lt.instanceType, z, strings.Join(offered, ", "))
		}
	}
	tgs := list(p, "TargetGroupARNs")
	for _, arn := range tgs {
		if _, ok := f.tgs[arn]; !ok {
			return nil, fail("ValidationError", "Provided Target Groups may not be valid. Please ensure they exist and try again.")
		}
	}
	g := &group{
		name: name, template: ltName, version: version, subnets: subnets,
		arn: fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s-%s-%s-%s-%s:autoScalingGroupName/%s", // a UUID, as AWS documents
			f.Region, Account, randHex(8), randHex(4), randHex(4), randHex(4), randHex(12), name),
		min: lo, max: hi, desired: desired, tgs: tgs, created: now.UTC(), visible: now.Add(f.secs(f.lags.Visibility)),
		healthType: p.Get("HealthCheckType"), grace: atoi(p.Get("HealthCheckGracePeriod")),
	}
	if g.healthType == "" {
		g.healthType = "EC2"
	}
	if !p.Has("HealthCheckGracePeriod") {
		g.grace = 300
	}
	for _, i := range indexes(p, "Tags") {
		g.tags = append(g.tags, groupTag{p.Get(i + ".Key"), p.Get(i + ".Value"), p.Get(i+".PropagateAtLaunch") == "true"})
	}
	f.groups[name] = g
	if !f.holdLaunches {
		f.launch(g, now)
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

func (f *FakeAWS) describeGroups(p url.Values, now time.Time) (*node, *apiError) {
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
		if now.Before(g.visible) || len(names) > 0 && !slices.Contains(names, g.name) {
			continue // eventual consistency: a new group is not described at once
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
	start, end, err := page(len(all), size, p.Get("NextToken"), "page-")
	if err != nil {
		return nil, err
	}
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
	var ins, tagNodes, tgNodes, zoneNodes []*node
	for _, id := range g.members {
		in := f.instances[id]
		ins = append(ins, el("",
			tx("InstanceId", in.id), tx("InstanceType", in.instanceType), tx("AvailabilityZone", in.zone),
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
	seen := map[string]bool{}
	for _, s := range g.subnets {
		if z := f.subnets[s]; !seen[z] {
			seen[z] = true
			zoneNodes = append(zoneNodes, tx("", z))
		}
	}
	return el("",
		tx("AutoScalingGroupName", g.name), tx("AutoScalingGroupARN", g.arn),
		el("LaunchTemplate", tx("LaunchTemplateName", g.template), tx("Version", g.version)),
		num("MinSize", g.min), num("MaxSize", g.max), num("DesiredCapacity", g.desired),
		num("DefaultCooldown", 300), members("AvailabilityZones", zoneNodes),
		members("TargetGroupARNs", tgNodes), tx("HealthCheckType", g.healthType), num("HealthCheckGracePeriod", g.grace),
		members("Instances", ins), ts("CreatedTime", g.created), tx("VPCZoneIdentifier", strings.Join(g.subnets, ",")),
		members("Tags", tagNodes), opt("Status", g.status),
	)
}

// detachTargetGroups answers at once; the group deregisters its instances
// after the detach lag, and they drain for the deregistration delay.
func (f *FakeAWS) detachTargetGroups(p url.Values, now time.Time) (*node, *apiError) {
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
		if tg, ok := f.tgs[arn]; ok {
			for _, id := range g.members {
				f.deregister(tg, id, now, f.lags.Detach)
			}
		}
	}
	return nil, nil
}

func (f *FakeAWS) deleteGroup(p url.Values, now time.Time) (*node, *apiError) {
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
		for _, id := range g.members {
			t, ok := tg.targets[id]
			if !ok {
				continue
			}
			// Terminating an instance that still has connections cuts them: a
			// target group that ever took traffic may have some until it drained.
			if tg.served {
				state := "registered"
				if t.draining(now) {
					state = "draining"
				}
				f.violations = append(f.violations, fmt.Sprintf(
					"DeleteAutoScalingGroup %s: instance %s was still %s in target group %s, which took traffic", name, id, state, tg.name))
			}
			delete(tg.targets, id)
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
