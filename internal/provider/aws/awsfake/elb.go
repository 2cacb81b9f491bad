package awsfake

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var tgNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

func (f *FakeAWS) elb(action string, p url.Values) (*node, *apiError) {
	switch action {
	case "CreateTargetGroup":
		return f.createTargetGroup(p)
	case "ModifyTargetGroupAttributes":
		return f.modifyTargetGroupAttributes(p)
	case "DescribeTargetGroups":
		return f.describeTargetGroups(p)
	case "DescribeTargetHealth":
		return f.describeTargetHealth(p)
	case "DescribeTags":
		return f.describeTags(p)
	case "DescribeListeners":
		return f.describeListeners(p)
	case "ModifyListener":
		return f.modifyListener(p)
	case "DeleteTargetGroup":
		return f.deleteTargetGroup(p)
	}
	return nil, fail("InvalidAction", "Could not find operation %s for version %s (fake AWS)", action, versionELB)
}

func (f *FakeAWS) tgNode(tg *targetGroup) *node {
	var lbs []*node
	for _, lb := range f.inUse(tg.arn) {
		lbs = append(lbs, tx("", lb))
	}
	return el("",
		tx("TargetGroupArn", tg.arn), tx("TargetGroupName", tg.name), tx("Protocol", tg.protocol),
		num("Port", tg.port), tx("VpcId", tg.vpc), tx("TargetType", tg.targetType),
		tx("HealthCheckProtocol", "HTTP"), tx("HealthCheckPort", "traffic-port"), tx("HealthCheckPath", tg.healthPath),
		tx("HealthCheckEnabled", "true"), num("HealthCheckIntervalSeconds", 30), num("HealthCheckTimeoutSeconds", 5),
		num("HealthyThresholdCount", 5), num("UnhealthyThresholdCount", 2), el("Matcher", tx("HttpCode", "200-299")),
		members("LoadBalancerArns", lbs),
	)
}

func (f *FakeAWS) createTargetGroup(p url.Values) (*node, *apiError) {
	name := p.Get("Name")
	if !tgNamePattern.MatchString(name) {
		return nil, fail("ValidationError", "Target group name '%s' can only contain characters that are alphanumeric characters or hyphens(-), must be at most 32 characters, and must not begin or end with a hyphen", name)
	}
	targetType := p.Get("TargetType")
	if targetType == "" {
		targetType = "instance"
	}
	if p.Get("VpcId") == "" || p.Get("Protocol") == "" || p.Get("Port") == "" {
		return nil, fail("ValidationError", "A VPC ID, protocol and port must be specified for target groups of type %s", targetType)
	}
	want := &targetGroup{
		name: name, protocol: p.Get("Protocol"), port: atoi(p.Get("Port")), vpc: p.Get("VpcId"),
		targetType: targetType, healthPath: p.Get("HealthCheckPath"),
	}
	for _, tg := range f.tgs {
		if tg.name != name {
			continue
		}
		if tg.protocol != want.protocol || tg.port != want.port || tg.vpc != want.vpc || tg.targetType != want.targetType || tg.healthPath != want.healthPath {
			return nil, fail("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
		}
		return el("", members("TargetGroups", []*node{f.tgNode(tg)})), nil // same settings: the existing one
	}
	if want.healthPath == "" {
		want.healthPath = "/"
	}
	want.arn = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%s", f.Region, Account, name, randHex(16))
	want.attrs = map[string]string{"deregistration_delay.timeout_seconds": "300"}
	want.tags = tags(p, "Tags")
	want.targets = map[string]*target{}
	f.tgs[want.arn] = want
	return el("", members("TargetGroups", []*node{f.tgNode(want)})), nil
}

func (f *FakeAWS) targetGroupByARN(arn string) (*targetGroup, *apiError) {
	tg, ok := f.tgs[arn]
	if !ok {
		return nil, fail("TargetGroupNotFound", "Target groups '%s' not found", arn)
	}
	return tg, nil
}

func (f *FakeAWS) modifyTargetGroupAttributes(p url.Values) (*node, *apiError) {
	tg, err := f.targetGroupByARN(p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	for _, i := range indexes(p, "Attributes") {
		k, v := p.Get(i+".Key"), p.Get(i+".Value")
		if k == "deregistration_delay.timeout_seconds" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 3600 {
				return nil, fail("ValidationError", "'%s' is not a valid value for deregistration_delay.timeout_seconds: it must be an integer from 0 to 3600", v)
			}
		}
		tg.attrs[k] = v
	}
	keys := make([]string, 0, len(tg.attrs))
	for k := range tg.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*node
	for _, k := range keys {
		out = append(out, el("", tx("Key", k), tx("Value", tg.attrs[k])))
	}
	return el("", members("Attributes", out)), nil
}

func (f *FakeAWS) describeTargetGroups(p url.Values) (*node, *apiError) {
	var found []*targetGroup
	names, arns := list(p, "Names"), list(p, "TargetGroupArns")
	switch {
	case len(names) > 0:
		for _, n := range names {
			var hit *targetGroup
			for _, tg := range f.tgs {
				if tg.name == n {
					hit = tg
				}
			}
			if hit == nil {
				return nil, fail("TargetGroupNotFound", "One or more target groups not found")
			}
			found = append(found, hit)
		}
	case len(arns) > 0:
		for _, a := range arns {
			tg, err := f.targetGroupByARN(a)
			if err != nil {
				return nil, fail("TargetGroupNotFound", "One or more target groups not found")
			}
			found = append(found, tg)
		}
	default:
		for _, tg := range f.tgs {
			found = append(found, tg)
		}
		sort.Slice(found, func(i, j int) bool { return found[i].name < found[j].name })
	}
	var out []*node
	for _, tg := range found {
		out = append(out, f.tgNode(tg))
	}
	return el("", members("TargetGroups", out)), nil
}

func (f *FakeAWS) describeTargetHealth(p url.Values) (*node, *apiError) {
	tg, err := f.targetGroupByARN(p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	f.expire(tg)
	used := len(f.inUse(tg.arn)) > 0
	ids := make([]string, 0, len(tg.targets))
	for id := range tg.targets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []*node
	for _, id := range ids {
		t := tg.targets[id]
		state, reason, desc := t.health, "", ""
		switch {
		case !t.drainEnd.IsZero():
			state, reason, desc = "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
		case !used:
			state, reason, desc = "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
		case state == "initial":
			reason, desc = "Elb.RegistrationInProgress", "Target registration is in progress"
		case state == "unhealthy":
			reason, desc = "Target.FailedHealthChecks", "Health checks failed"
		}
		out = append(out, el("",
			el("Target", tx("Id", t.id), num("Port", t.port)),
			tx("HealthCheckPort", strconv.Itoa(t.port)),
			el("TargetHealth", tx("State", state), opt("Reason", reason), opt("Description", desc)),
		))
	}
	return el("", members("TargetHealthDescriptions", out)), nil
}

func (f *FakeAWS) describeTags(p url.Values) (*node, *apiError) {
	var out []*node
	for _, arn := range list(p, "ResourceArns") {
		var tagMap map[string]string
		if tg, ok := f.tgs[arn]; ok {
			tagMap = tg.tags
		} else {
			return nil, fail("TargetGroupNotFound", "Target groups '%s' not found", arn)
		}
		keys := make([]string, 0, len(tagMap))
		for k := range tagMap {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ts []*node
		for _, k := range keys {
			ts = append(ts, el("", tx("Key", k), tx("Value", tagMap[k])))
		}
		out = append(out, el("", tx("ResourceArn", arn), members("Tags", ts)))
	}
	return el("", members("TagDescriptions", out)), nil
}

func (f *FakeAWS) listenerNode(l *listener) *node {
	var action *node
	if l.forwards == nil {
		action = el("", tx("Type", "fixed-response"),
			el("FixedResponseConfig", tx("StatusCode", l.fixed), tx("ContentType", "text/plain"), tx("MessageBody", l.fixedMsg)))
	} else {
		var tuples []*node
		for _, fw := range l.forwards {
			tuples = append(tuples, el("", tx("TargetGroupArn", fw.arn), num("Weight", fw.weight)))
		}
		action = el("", tx("Type", "forward"), el("ForwardConfig", members("TargetGroups", tuples)))
	}
	return el("",
		tx("ListenerArn", l.arn), tx("LoadBalancerArn", l.lb), num("Port", l.port), tx("Protocol", "HTTP"),
		members("DefaultActions", []*node{action}),
	)
}

func (f *FakeAWS) describeListeners(p url.Values) (*node, *apiError) {
	var out []*node
	for _, arn := range list(p, "ListenerArns") {
		l, ok := f.listeners[arn]
		if !ok {
			return nil, fail("ListenerNotFound", "One or more listeners not found")
		}
		out = append(out, f.listenerNode(l))
	}
	return el("", members("Listeners", out)), nil
}

func (f *FakeAWS) modifyListener(p url.Values) (*node, *apiError) {
	l, ok := f.listeners[p.Get("ListenerArn")]
	if !ok {
		return nil, fail("ListenerNotFound", "One or more listeners not found")
	}
	actions := indexes(p, "DefaultActions")
	if len(actions) != 1 {
		return nil, fail("ValidationError", "The listener's default actions must be exactly one forward or fixed-response action (fake AWS), got %d", len(actions))
	}
	a := actions[0]
	switch typ := p.Get(a + ".Type"); typ {
	case "forward":
		var fws []forward
		if arn := p.Get(a + ".TargetGroupArn"); arn != "" {
			fws = append(fws, forward{arn, 1})
		}
		for _, t := range indexes(p, a+".ForwardConfig.TargetGroups") {
			w := 1
			if p.Has(t + ".Weight") {
				w = atoi(p.Get(t + ".Weight"))
			}
			fws = append(fws, forward{p.Get(t + ".TargetGroupArn"), w})
		}
		if len(fws) == 0 {
			return nil, fail("ValidationError", "A forward action must name at least one target group")
		}
		if len(fws) > 5 {
			return nil, fail("TooManyTargetGroups", "You have reached the maximum number of target groups (5) per forward action")
		}
		for _, fw := range fws {
			tg, ok := f.tgs[fw.arn]
			if !ok {
				return nil, fail("TargetGroupNotFound", "Target groups '%s' not found", fw.arn)
			}
			if fw.weight < 0 || fw.weight > 999 {
				return nil, fail("ValidationError", "Target group weight %d must be between 0 and 999", fw.weight)
			}
			for _, lb := range f.inUse(fw.arn) {
				if lb != l.lb {
					return nil, fail("TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: %s", tg.arn)
				}
			}
		}
		l.forwards, l.fixed, l.fixedMsg = fws, "", ""
	case "fixed-response":
		code := p.Get(a + ".FixedResponseConfig.StatusCode")
		if len(code) != 3 || !strings.ContainsAny(code[:1], "2345") {
			return nil, fail("ValidationError", "Fixed response status code %q must be 2XX, 4XX or 5XX", code)
		}
		l.forwards, l.fixed, l.fixedMsg = nil, code, p.Get(a+".FixedResponseConfig.MessageBody")
	default:
		return nil, fail("ValidationError", "Action type %q is not supported by the fake (forward, fixed-response)", typ)
	}
	return el("", members("Listeners", []*node{f.listenerNode(l)})), nil
}

func (f *FakeAWS) deleteTargetGroup(p url.Values) (*node, *apiError) {
	arn := p.Get("TargetGroupArn")
	tg, ok := f.tgs[arn]
	if !ok {
		return nil, nil // AWS: deleting a deleted target group succeeds
	}
	if lbs := f.inUse(arn); len(lbs) > 0 {
		return nil, fail("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
	}
	for _, g := range f.groups {
		if contains(g.tgs, arn) {
			f.violations = append(f.violations, fmt.Sprintf("DeleteTargetGroup %s: Auto Scaling group %s still had it attached", tg.name, g.name))
		}
	}
	delete(f.tgs, arn)
	return nil, nil
}
