package awsfake

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Listener rules (CreateRule, DescribeRules, DeleteRule), as the ELBv2 API
// reference and the ALB user guide ("Listener rules", "Condition types for
// listener rules", "Quotas") document them:
//
//   - a rule has a priority 1-50000, unique on its listener (PriorityInUse);
//     a listener has at most 100 rules besides the default one (TooManyRules);
//   - conditions: http-header (HttpHeaderConfig: a header name of at most 40
//     characters and values), path-pattern and host-header (their Config's
//     values); at most 3 values per condition, 5 per rule, 5 wildcards ('*',
//     '?') per rule, each value at most 128 characters;
//   - actions as a listener's default actions (the last one forwards or
//     answers);
//   - DescribeRules lists the listener's rules by priority, then its default
//     rule (Priority "default", IsDefault true, the default actions), which
//     DeleteRule refuses (OperationNotPermitted);
//   - a target group a rule forwards to is in use by the load balancer (its
//     targets are health-checked) as one the default action names.

// Rule quotas.
const (
	maxRules          = 100
	maxRuleValues     = 5
	maxConditionValue = 3
	maxRuleWildcards  = 5
)

// rule is one listener rule besides the default one.
type rule struct {
	arn, listener string
	priority      int
	conds         []condition
	actions       []*action
	tags          map[string]string
}

// condition is one rule condition: Field, and for http-header its header name.
type condition struct {
	field, header string
	values        []string
}

// ruleARN is the ARN of a rule of listener arn (listener/… → listener-rule/…).
func ruleARN(listener string) string {
	return strings.Replace(listener, ":listener/", ":listener-rule/", 1) + "/" + randHex(16)
}

// forwardedBy returns the target groups the listener's default actions and
// rules forward to. The caller holds f.mu.
func (f *FakeAWS) forwardedBy(l *listener) map[string]bool {
	out := map[string]bool{}
	for _, a := range l.actions {
		for _, fw := range a.forwards {
			out[fw.arn] = true
		}
	}
	for _, r := range f.rules {
		if r.listener == l.arn {
			for _, a := range r.actions {
				for _, fw := range a.forwards {
					out[fw.arn] = true
				}
			}
		}
	}
	return out
}

func (f *FakeAWS) parseConditions(p url.Values) ([]condition, *apiError) {
	var out []condition
	values, wildcards := 0, 0
	for _, c := range indexes(p, "Conditions") {
		cond := condition{field: p.Get(c + ".Field")}
		switch cond.field {
		case "http-header":
			cond.header = p.Get(c + ".HttpHeaderConfig.HttpHeaderName")
			cond.values = list(p, c+".HttpHeaderConfig.Values")
			if cond.header == "" || len(cond.header) > 40 {
				return nil, fail("ValidationError", "An http-header condition needs an HttpHeaderName of 1 to 40 characters")
			}
		case "path-pattern":
			cond.values = list(p, c+".PathPatternConfig.Values")
		case "host-header":
			cond.values = list(p, c+".HostHeaderConfig.Values")
		default:
			return nil, fail("ValidationError", "Condition field %q is not supported by the fake (http-header, path-pattern, host-header)", cond.field)
		}
		if len(cond.values) == 0 {
			return nil, fail("ValidationError", "A condition value cannot be empty")
		}
		if len(cond.values) > maxConditionValue {
			return nil, fail("ValidationError", "A condition can have a maximum of %d values", maxConditionValue)
		}
		for _, v := range cond.values {
			if v == "" || len(v) > 128 {
				return nil, fail("ValidationError", "Condition value '%s' must be 1 to 128 characters", v)
			}
			wildcards += strings.Count(v, "*") + strings.Count(v, "?")
		}
		values += len(cond.values)
		out = append(out, cond)
	}
	switch {
	case len(out) == 0:
		return nil, fail("ValidationError", "A rule must have at least one condition")
	case values > maxRuleValues:
		return nil, fail("ValidationError", "A rule can have a maximum of %d condition values", maxRuleValues)
	case wildcards > maxRuleWildcards:
		return nil, fail("ValidationError", "A rule can have a maximum of %d wildcards", maxRuleWildcards)
	}
	return out, nil
}

func (f *FakeAWS) createRule(p url.Values) (*node, *apiError) {
	l, ok := f.listeners[p.Get("ListenerArn")]
	if !ok {
		return nil, fail("ListenerNotFound", "One or more listeners not found")
	}
	prio, err := strconv.Atoi(p.Get("Priority"))
	if err != nil || prio < 1 || prio > 50000 {
		return nil, fail("ValidationError", "1 validation error detected: Value '%s' at 'priority' failed to satisfy constraint: Member must have value between 1 and 50000", p.Get("Priority"))
	}
	n := 0
	for _, r := range f.rules {
		if r.listener != l.arn {
			continue
		}
		n++
		if r.priority == prio {
			return nil, fail("PriorityInUse", "Priority '%d' is currently in use", prio)
		}
	}
	if n >= maxRules {
		return nil, fail("TooManyRules", "You've reached the limit on the number of rules per load balancer")
	}
	conds, aerr := f.parseConditions(p)
	if aerr != nil {
		return nil, aerr
	}
	var acts []*action
	for _, a := range indexes(p, "Actions") {
		act, err := f.parseAction(p, a, l)
		if err != nil {
			return nil, err
		}
		acts = append(acts, act)
	}
	if len(acts) == 0 {
		return nil, fail("ValidationError", "A rule must have at least one action")
	}
	sort.Slice(acts, func(i, j int) bool { return acts[i].order < acts[j].order })
	if last := acts[len(acts)-1].typ; last != "forward" && last != "fixed-response" {
		return nil, fail("InvalidLoadBalancerAction", "The last action must be forward, redirect or fixed-response")
	}
	r := &rule{arn: ruleARN(l.arn), listener: l.arn, priority: prio, conds: conds, actions: acts, tags: tags(p, "Tags")}
	f.rules[r.arn] = r
	f.listenerChanged(l, nil, time.Time{})
	return el("", members("Rules", []*node{f.ruleNode(r)})), nil
}

func (f *FakeAWS) ruleNode(r *rule) *node {
	var conds []*node
	for _, c := range r.conds {
		var vals []*node
		for _, v := range c.values {
			vals = append(vals, tx("", v))
		}
		n := el("", tx("Field", c.field))
		switch c.field {
		case "http-header":
			n.kids = append(n.kids, el("HttpHeaderConfig", tx("HttpHeaderName", c.header), members("Values", vals)))
		case "path-pattern":
			n.kids = append(n.kids, el("PathPatternConfig", members("Values", vals)))
		case "host-header":
			n.kids = append(n.kids, el("HostHeaderConfig", members("Values", vals)))
		}
		conds = append(conds, n)
	}
	var acts []*node
	for _, a := range r.actions {
		acts = append(acts, f.actionNode(a))
	}
	return el("", tx("RuleArn", r.arn), num("Priority", r.priority), members("Conditions", conds), members("Actions", acts), tx("IsDefault", "false"))
}

// listenerRules are the rules of l by priority. The caller holds f.mu.
func (f *FakeAWS) listenerRules(l *listener) []*rule {
	var out []*rule
	for _, r := range f.rules {
		if r.listener == l.arn {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].priority < out[j].priority })
	return out
}

func (f *FakeAWS) describeRules(p url.Values) (*node, *apiError) {
	var out []*node
	if arns := list(p, "RuleArns"); len(arns) > 0 {
		for _, a := range arns {
			r, ok := f.rules[a]
			if !ok {
				return nil, fail("RuleNotFound", "One or more rules not found")
			}
			out = append(out, f.ruleNode(r))
		}
		return el("", members("Rules", out)), nil
	}
	l, ok := f.listeners[p.Get("ListenerArn")]
	if !ok {
		return nil, fail("ListenerNotFound", "One or more listeners not found")
	}
	for _, r := range f.listenerRules(l) {
		out = append(out, f.ruleNode(r))
	}
	var acts []*node
	for _, a := range l.actions {
		acts = append(acts, f.actionNode(a))
	}
	out = append(out, el("", tx("RuleArn", l.defaultRule), tx("Priority", "default"), members("Conditions", nil), members("Actions", acts), tx("IsDefault", "true")))
	size := 400
	if n := atoi(p.Get("PageSize")); n > 0 && n < size {
		size = n
	}
	start, end, err := page(len(out), size, p.Get("Marker"), "rule-page-")
	if err != nil {
		return nil, err
	}
	res := el("", members("Rules", out[start:end]))
	if end < len(out) {
		res.kids = append(res.kids, tx("NextMarker", "rule-page-"+strconv.Itoa(end)))
	}
	return res, nil
}

func (f *FakeAWS) deleteRule(p url.Values, now time.Time) (*node, *apiError) {
	arn := p.Get("RuleArn")
	for _, l := range f.listeners {
		if l.defaultRule == arn {
			return nil, fail("OperationNotPermitted", "Default rule '%s' cannot be deleted", arn)
		}
	}
	r, ok := f.rules[arn]
	if !ok {
		return nil, fail("RuleNotFound", "One or more rules not found")
	}
	l := f.listeners[r.listener]
	before := f.forwardedBy(l)
	delete(f.rules, arn)
	f.listenerChanged(l, before, now)
	return el(""), nil
}

// ruleTags is DescribeTags of a rule ARN; ok is false when arn is no rule.
func (f *FakeAWS) ruleTags(arn string) (map[string]string, bool) {
	r, ok := f.rules[arn]
	if !ok {
		return nil, false
	}
	return r.tags, true
}

// AddRule gives the listener arn a rule a person made by hand: requests for
// path are answered 404. It has no tags.
func (f *FakeAWS) AddRule(arn string, priority int, path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &rule{arn: ruleARN(arn), listener: arn, priority: priority, conds: []condition{{field: "path-pattern", values: []string{path}}},
		actions: []*action{{order: 1, typ: "fixed-response", fixed: map[string]string{"StatusCode": "404", "ContentType": "text/plain"}}}}
	f.rules[r.arn] = r
}

// RuleState is one listener rule as tests see it.
type RuleState struct {
	Priority int
	// Conditions as "http-header X-Canary: 1" (values joined by " | ").
	Conditions []string
	// Forward is the name of the target group its forward action sends to.
	Forward string
	Tags    map[string]string
}

// Rules returns the rules of the listener arn besides its default one, by priority.
func (f *FakeAWS) Rules(arn string) []RuleState {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.listeners[arn]
	if !ok {
		return nil
	}
	var out []RuleState
	for _, r := range f.listenerRules(l) {
		st := RuleState{Priority: r.priority, Tags: maps.Clone(r.tags)}
		for _, c := range r.conds {
			st.Conditions = append(st.Conditions, fmt.Sprintf("%s %s: %s", c.field, c.header, strings.Join(c.values, " | ")))
		}
		for _, a := range r.actions {
			for _, fw := range a.forwards {
				if tg, ok := f.tgs[fw.arn]; ok {
					st.Forward = tg.name
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// sortedTags is tags as DescribeTags lists them.
func sortedTags(tags map[string]string) []*node {
	var ts []*node
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts = append(ts, el("", tx("Key", k), tx("Value", tags[k])))
	}
	return ts
}
