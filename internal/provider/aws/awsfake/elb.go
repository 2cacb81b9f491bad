package awsfake

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var tgNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

func (f *FakeAWS) elb(action string, p url.Values, now time.Time) (*node, *apiError) {
	switch action {
	case "CreateTargetGroup":
		return f.createTargetGroup(p, now)
	case "ModifyTargetGroupAttributes":
		return f.modifyTargetGroupAttributes(p)
	case "DescribeTargetGroups":
		return f.describeTargetGroups(p, now)
	case "DescribeTargetHealth":
		return f.describeTargetHealth(p, now)
	case "DescribeTags":
		return f.describeTags(p)
	case "DescribeListeners":
		return f.describeListeners(p)
	case "DescribeLoadBalancers":
		return f.describeLoadBalancers(p)
	case "ModifyListener":
		return f.modifyListener(p, now)
	case "DeleteTargetGroup":
		return f.deleteTargetGroup(p, now)
	case "CreateRule":
		return f.createRule(p)
	case "DescribeRules":
		return f.describeRules(p)
	case "DeleteRule":
		return f.deleteRule(p, now)
	}
	return nil, fail("InvalidAction", "Could not find operation %s for version %s (fake AWS)", action, versionELB)
}

func (f *FakeAWS) tgNode(tg *targetGroup, now time.Time) *node {
	var lbs []*node
	for _, lb := range f.lbArns(tg, now) {
		lbs = append(lbs, tx("", lb))
	}
	return el("",
		tx("TargetGroupArn", tg.arn), tx("TargetGroupName", tg.name), tx("Protocol", tg.protocol),
		num("Port", tg.port), tx("VpcId", tg.vpc), tx("TargetType", tg.targetType),
		tx("HealthCheckProtocol", "HTTP"), tx("HealthCheckPort", "traffic-port"), tx("HealthCheckPath", tg.healthPath),
		tx("HealthCheckEnabled", strconv.FormatBool(tg.healthEnabled)), num("HealthCheckIntervalSeconds", tg.interval),
		num("HealthCheckTimeoutSeconds", tg.timeout), num("HealthyThresholdCount", tg.healthy),
		num("UnhealthyThresholdCount", tg.unhealthy), el("Matcher", tx("HttpCode", "200-299")),
		members("LoadBalancerArns", lbs),
	)
}

// intParam returns the integer parameter name, def when absent, and an error
// naming it when it is outside lo..hi (the ranges of the API reference).
func intParam(p url.Values, name string, def, lo, hi int) (int, *apiError) {
	if !p.Has(name) {
		return def, nil
	}
	n, err := strconv.Atoi(p.Get(name))
	if err != nil || n < lo || n > hi {
		return 0, fail("ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have value between %d and %d",
			p.Get(name), strings.ToLower(name[:1])+name[1:], lo, hi)
	}
	return n, nil
}

func (f *FakeAWS) createTargetGroup(p url.Values, now time.Time) (*node, *apiError) {
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
		targetType: targetType, healthPath: p.Get("HealthCheckPath"), healthEnabled: p.Get("HealthCheckEnabled") != "false",
	}
	if want.healthPath == "" {
		want.healthPath = "/"
	}
	// The defaults and ranges of an HTTP target group of instances.
	var err *apiError
	if want.interval, err = intParam(p, "HealthCheckIntervalSeconds", 30, 5, 300); err != nil {
		return nil, err
	}
	if want.timeout, err = intParam(p, "HealthCheckTimeoutSeconds", 5, 2, 120); err != nil {
		return nil, err
	}
	if want.healthy, err = intParam(p, "HealthyThresholdCount", 5, 2, 10); err != nil {
		return nil, err
	}
	if want.unhealthy, err = intParam(p, "UnhealthyThresholdCount", 2, 2, 10); err != nil {
		return nil, err
	}
	if want.timeout >= want.interval {
		return nil, fail("ValidationError", "Health check timeout '%d' must be smaller than the interval '%d'", want.timeout, want.interval)
	}
	for _, tg := range f.tgs {
		if tg.name != name {
			continue
		}
		if tg.protocol != want.protocol || tg.port != want.port || tg.vpc != want.vpc || tg.targetType != want.targetType ||
			tg.healthPath != want.healthPath || tg.interval != want.interval || tg.timeout != want.timeout ||
			tg.healthy != want.healthy || tg.unhealthy != want.unhealthy || tg.healthEnabled != want.healthEnabled {
			return nil, fail("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
		}
		return el("", members("TargetGroups", []*node{f.tgNode(tg, now)})), nil // same settings: the existing one
	}
	want.arn = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%s", f.Region, Account, name, randHex(16))
	want.attrs = map[string]string{"deregistration_delay.timeout_seconds": "300"}
	want.tags = tags(p, "Tags")
	want.targets = map[string]*target{}
	want.released = map[string]time.Time{}
	f.tgs[want.arn] = want
	return el("", members("TargetGroups", []*node{f.tgNode(want, now)})), nil
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
	var out []*node
	for _, k := range slices.Sorted(maps.Keys(tg.attrs)) {
		out = append(out, el("", tx("Key", k), tx("Value", tg.attrs[k])))
	}
	return el("", members("Attributes", out)), nil
}

func (f *FakeAWS) describeTargetGroups(p url.Values, now time.Time) (*node, *apiError) {
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
	size := 400
	if n := atoi(p.Get("PageSize")); n > 0 && n < size {
		size = n
	}
	start, end, err := page(len(found), size, p.Get("Marker"), "tg-page-")
	if err != nil {
		return nil, err
	}
	var out []*node
	for _, tg := range found[start:end] {
		out = append(out, f.tgNode(tg, now))
	}
	res := el("", members("TargetGroups", out))
	if end < len(found) {
		res.kids = append(res.kids, tx("NextMarker", "tg-page-"+strconv.Itoa(end)))
	}
	return res, nil
}

func (f *FakeAWS) describeTargetHealth(p url.Values, now time.Time) (*node, *apiError) {
	tg, err := f.targetGroupByARN(p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(tg.targets))
	for id := range tg.targets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []*node
	for _, id := range ids {
		t := tg.targets[id]
		state, reason, desc := f.targetState(tg, t, now)
		out = append(out, el("",
			el("Target", tx("Id", t.id), num("Port", t.port)),
			tx("HealthCheckPort", strconv.Itoa(t.port)),
			el("TargetHealth", tx("State", state), opt("Reason", reason), opt("Description", desc)),
		))
	}
	return el("", members("TargetHealthDescriptions", out)), nil
}

func (f *FakeAWS) describeTags(p url.Values) (*node, *apiError) {
	arns := list(p, "ResourceArns")
	if len(arns) > 20 {
		return nil, fail("ValidationError", "1 validation error detected: Value at 'resourceArns' failed to satisfy constraint: Member must have length less than or equal to 20")
	}
	var out []*node
	for _, arn := range arns {
		if rt, ok := f.ruleTags(arn); ok {
			out = append(out, el("", tx("ResourceArn", arn), members("Tags", sortedTags(rt))))
			continue
		}
		tg, ok := f.tgs[arn]
		if !ok {
			return nil, fail("TargetGroupNotFound", "Target groups '%s' not found", arn)
		}
		out = append(out, el("", tx("ResourceArn", arn), members("Tags", sortedTags(tg.tags))))
	}
	return el("", members("TagDescriptions", out)), nil
}

func (f *FakeAWS) actionNode(a *action) *node {
	n := el("", tx("Type", a.typ), num("Order", a.order))
	cfg := func(name string, m map[string]string) *node {
		var kids []*node
		for _, k := range slices.Sorted(maps.Keys(m)) {
			kids = append(kids, tx(k, m[k]))
		}
		return el(name, kids...)
	}
	switch a.typ {
	case "forward":
		var tuples []*node
		for _, fw := range a.forwards {
			tuples = append(tuples, el("", tx("TargetGroupArn", fw.arn), num("Weight", fw.weight)))
		}
		fc := el("ForwardConfig", members("TargetGroups", tuples))
		if len(a.sticky) > 0 {
			fc.kids = append(fc.kids, cfg("TargetGroupStickinessConfig", a.sticky))
		}
		if len(a.forwards) == 1 {
			n.kids = append(n.kids, tx("TargetGroupArn", a.forwards[0].arn))
		}
		n.kids = append(n.kids, fc)
	case "fixed-response":
		n.kids = append(n.kids, cfg("FixedResponseConfig", a.fixed))
	case "authenticate-oidc":
		n.kids = append(n.kids, cfg("AuthenticateOidcConfig", a.auth)) // never the client secret
	case "authenticate-cognito":
		n.kids = append(n.kids, cfg("AuthenticateCognitoConfig", a.auth))
	}
	return n
}

func (f *FakeAWS) listenerNode(l *listener) *node {
	var acts []*node
	for _, a := range l.actions {
		acts = append(acts, f.actionNode(a))
	}
	return el("",
		tx("ListenerArn", l.arn), tx("LoadBalancerArn", l.lb), num("Port", l.port), tx("Protocol", "HTTP"),
		members("DefaultActions", acts),
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

func (f *FakeAWS) describeLoadBalancers(p url.Values) (*node, *apiError) {
	var out []*node
	for _, arn := range list(p, "LoadBalancerArns") {
		lb, ok := f.lbs[arn]
		if !ok {
			return nil, fail("LoadBalancerNotFound", "One or more load balancers not found")
		}
		var zones []*node
		for _, z := range lb.zones {
			zones = append(zones, el("", tx("ZoneName", z)))
		}
		out = append(out, el("", tx("LoadBalancerArn", lb.arn), tx("LoadBalancerName", lb.name), tx("Type", "application"),
			members("AvailabilityZones", zones)))
	}
	return el("", members("LoadBalancers", out)), nil
}

// parseAction reads DefaultActions.member.N (prefix a) of a ModifyListener.
func (f *FakeAWS) parseAction(p url.Values, a string, l *listener) (*action, *apiError) {
	act := &action{typ: p.Get(a + ".Type"), order: atoi(p.Get(a + ".Order"))}
	switch act.typ {
	case "forward":
		if arn := p.Get(a + ".TargetGroupArn"); arn != "" {
			act.forwards = append(act.forwards, forward{arn, 1})
		}
		var tuples []forward
		for _, t := range indexes(p, a+".ForwardConfig.TargetGroups") {
			w := 1
			if p.Has(t + ".Weight") {
				w = atoi(p.Get(t + ".Weight"))
			}
			tuples = append(tuples, forward{p.Get(t + ".TargetGroupArn"), w})
		}
		if len(tuples) > 0 {
			if len(act.forwards) == 1 && (len(tuples) != 1 || tuples[0].arn != act.forwards[0].arn) {
				return nil, fail("ValidationError", "You cannot specify both a target group ARN and a forward config with other target groups")
			}
			act.forwards = tuples
		}
		act.sticky = fields(p, a+".ForwardConfig.TargetGroupStickinessConfig")
		if act.sticky["Enabled"] == "true" {
			if d, err := strconv.Atoi(act.sticky["DurationSeconds"]); err != nil || d < 1 || d > 604800 {
				return nil, fail("ValidationError", "The target group stickiness duration must be between 1 and 604800 seconds, got '%s'", act.sticky["DurationSeconds"])
			}
		}
		if len(act.forwards) == 0 {
			return nil, fail("ValidationError", "A forward action must name at least one target group")
		}
		if len(act.forwards) > 5 {
			return nil, fail("TooManyTargetGroups", "You have reached the maximum number of target groups (5) per forward action")
		}
		for _, fw := range act.forwards {
			if _, ok := f.tgs[fw.arn]; !ok {
				return nil, fail("TargetGroupNotFound", "Target groups '%s' not found", fw.arn)
			}
			if fw.weight < 0 || fw.weight > 999 {
				return nil, fail("ValidationError", "Target group weight %d must be between 0 and 999", fw.weight)
			}
			for _, lb := range f.users(fw.arn) {
				if lb != l.lb {
					return nil, fail("TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: %s", fw.arn)
				}
			}
		}
	case "fixed-response":
		act.fixed = fields(p, a+".FixedResponseConfig")
		code := act.fixed["StatusCode"]
		if len(code) != 3 || !strings.ContainsAny(code[:1], "2345") {
			return nil, fail("ValidationError", "Fixed response status code %q must be 2XX, 4XX or 5XX", code)
		}
	case "authenticate-oidc":
		act.auth = fields(p, a+".AuthenticateOidcConfig")
		secret := act.auth["ClientSecret"]
		reuse := act.auth["UseExistingClientSecret"] == "true"
		delete(act.auth, "ClientSecret")
		delete(act.auth, "UseExistingClientSecret")
		var old *action
		for _, o := range l.actions {
			if o.typ == act.typ {
				old = o
			}
		}
		switch {
		case secret != "":
			act.secret = secret
		case reuse && old != nil:
			act.secret = old.secret
		default:
			return nil, fail("ValidationError", "A client secret must be specified for an authenticate-oidc action, or UseExistingClientSecret set to true when modifying one")
		}
		for _, k := range []string{"Issuer", "AuthorizationEndpoint", "TokenEndpoint", "UserInfoEndpoint", "ClientId"} {
			if act.auth[k] == "" {
				return nil, fail("ValidationError", "An authenticate-oidc action needs %s", k)
			}
		}
	case "authenticate-cognito":
		act.auth = fields(p, a+".AuthenticateCognitoConfig")
		for _, k := range []string{"UserPoolArn", "UserPoolClientId", "UserPoolDomain"} {
			if act.auth[k] == "" {
				return nil, fail("ValidationError", "An authenticate-cognito action needs %s", k)
			}
		}
	default:
		return nil, fail("ValidationError", "Action type %q is not supported by the fake (forward, fixed-response, authenticate-oidc, authenticate-cognito)", act.typ)
	}
	return act, nil
}

// modifyListener replaces the listener's default actions with the request's,
// as AWS does: whatever the request leaves out is gone.
func (f *FakeAWS) modifyListener(p url.Values, now time.Time) (*node, *apiError) {
	l, ok := f.listeners[p.Get("ListenerArn")]
	if !ok {
		return nil, fail("ListenerNotFound", "One or more listeners not found")
	}
	prefixes := indexes(p, "DefaultActions")
	if len(prefixes) == 0 {
		return nil, fail("ValidationError", "A listener must have at least one default action")
	}
	var acts []*action
	orders := map[int]bool{}
	for _, a := range prefixes {
		act, err := f.parseAction(p, a, l)
		if err != nil {
			return nil, err
		}
		if len(prefixes) > 1 && act.order == 0 {
			return nil, fail("ValidationError", "An action order must be specified when a listener has more than one default action")
		}
		if orders[act.order] {
			return nil, fail("ValidationError", "Action order '%d' is used more than once", act.order)
		}
		orders[act.order] = true
		acts = append(acts, act)
	}
	sort.Slice(acts, func(i, j int) bool { return acts[i].order < acts[j].order })
	for i, a := range acts {
		final := a.typ == "forward" || a.typ == "fixed-response"
		if final != (i == len(acts)-1) {
			return nil, fail("InvalidLoadBalancerAction", "The last action must be forward, redirect or fixed-response, and only the last one")
		}
	}
	before := f.forwardedBy(l)
	l.actions = acts
	f.listenerChanged(l, before, now)
	return el("", members("Listeners", []*node{f.listenerNode(l)})), nil
}

func (f *FakeAWS) deleteTargetGroup(p url.Values, now time.Time) (*node, *apiError) {
	arn := p.Get("TargetGroupArn")
	tg, ok := f.tgs[arn]
	if !ok {
		return nil, nil // AWS: deleting a deleted target group succeeds
	}
	if lbs := f.lbArns(tg, now); len(lbs) > 0 {
		// Also for a while after the listener let go of it.
		return nil, &apiError{400, "ResourceInUse", fmt.Sprintf("Target group '%s' is currently in use by a listener or a rule", arn)}
	}
	for _, g := range f.groups {
		if slices.Contains(g.tgs, arn) {
			f.violations = append(f.violations, fmt.Sprintf("DeleteTargetGroup %s: Auto Scaling group %s still had it attached", tg.name, g.name))
		}
	}
	delete(f.tgs, arn)
	return nil, nil
}
