package aws

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// A route's rules on an ALB (contract.RouteRules):
//
//   - each match rule of a header route is one listener rule: an http-header
//     condition (a cookie rule: header Cookie, value *NAME=VALUE*) forwarding
//     to the fleet's target group, tagged imago:route=<route name>; imago's
//     rules take free priorities from RulePriorityBase up, after the rules
//     people made (lower numbers) and before the default action;
//   - stickiness is the forward action's target-group stickiness (cookie
//     AWSALBTG, which cannot be renamed), enabled with its duration, and
//     disabled when the route has none: imago owns it, as the forward;
//   - mirroring: an ALB does not mirror requests; the driver does not claim
//     CapMirror, so the portable Provider refuses a route with a mirror.

// RulePriorityBase is the lowest priority imago gives its listener rules:
// people's rules usually have lower numbers, which the load balancer
// evaluates first.
const RulePriorityBase = 40000

// routeTag marks a listener rule imago made; its value is the header route's name.
const routeTag = "imago:route"

// StickyCookie is the cookie of an ALB's target-group stickiness.
const StickyCookie = "AWSALBTG"

// maxStickiness is the longest target-group stickiness (7 days).
const maxStickiness = 7 * 24 * time.Hour

// albRule is one of imago's listener rules: one match rule of a header route.
type albRule struct {
	arn      string
	priority int
	name     string // the header route's
	tgARN    string
	match    contract.MatchRule
}

// conditionOf is the ALB condition of a match rule.
func conditionOf(m contract.MatchRule) elbtypes.RuleCondition {
	name, value := m.Header, m.Exact
	if m.Cookie != "" {
		name, value = "Cookie", "*"+m.Cookie+"="+m.Exact+"*"
	}
	return elbtypes.RuleCondition{Field: awssdk.String("http-header"),
		HttpHeaderConfig: &elbtypes.HttpHeaderConditionConfig{HttpHeaderName: awssdk.String(name), Values: []string{value}}}
}

// matchOf reads a condition conditionOf wrote; ok is false for any other.
func matchOf(conds []elbtypes.RuleCondition) (contract.MatchRule, bool) {
	if len(conds) != 1 || awssdk.ToString(conds[0].Field) != "http-header" || conds[0].HttpHeaderConfig == nil ||
		len(conds[0].HttpHeaderConfig.Values) != 1 {
		return contract.MatchRule{}, false
	}
	name, value := awssdk.ToString(conds[0].HttpHeaderConfig.HttpHeaderName), conds[0].HttpHeaderConfig.Values[0]
	if !strings.EqualFold(name, "Cookie") {
		return contract.MatchRule{Header: name, Exact: value}, true
	}
	c, v, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(value, "*"), "*"), "=")
	if !ok || !strings.HasPrefix(value, "*") || !strings.HasSuffix(value, "*") {
		return contract.MatchRule{}, false
	}
	return contract.MatchRule{Cookie: c, Exact: v}, true
}

// checkRules refuses what an ALB cannot express: a stickiness cookie other
// than AWSALBTG or a duration outside 1 s to 7 days, a header name over 40
// characters, a value with the ALB's wildcards.
func checkRules(key contract.RouteKey, rr contract.RouteRules) error {
	if s := rr.Stickiness; s != nil {
		if s.Cookie != StickyCookie {
			return provider.Errorf(provider.InvalidArgument, "route %s: stickiness cookie %q: an ALB's target-group stickiness cookie is %s and cannot be renamed", key, s.Cookie, StickyCookie)
		}
		if s.TTL.D() < time.Second || s.TTL.D() > maxStickiness {
			return provider.Errorf(provider.InvalidArgument, "route %s: stickiness ttl %s: an ALB keeps a client on a target group for 1s to 7 days", key, s.TTL)
		}
	}
	for _, m := range rr.Matches {
		for _, r := range m.Match {
			if len(r.Header) > 40 || strings.ContainsAny(r.Exact, "*?") {
				return provider.Errorf(provider.InvalidArgument, "route %s: header route %s: an ALB header condition takes a name of at most 40 characters and a value without * or ?", key, m.Name)
			}
		}
	}
	return nil
}

// stickinessConfig is the forward action's stickiness for s (nil: off).
func stickinessConfig(s *contract.Stickiness) *elbtypes.TargetGroupStickinessConfig {
	if s == nil {
		return &elbtypes.TargetGroupStickinessConfig{Enabled: awssdk.Bool(false)}
	}
	secs := int32((s.TTL.D() + time.Second - 1) / time.Second)
	return &elbtypes.TargetGroupStickinessConfig{Enabled: awssdk.Bool(true), DurationSeconds: awssdk.Int32(secs)}
}

// stickinessOf reads the forward's stickiness back.
func stickinessOf(actions []elbtypes.Action) *contract.Stickiness {
	for _, a := range actions {
		if a.Type != elbtypes.ActionTypeEnumForward || a.ForwardConfig == nil || a.ForwardConfig.TargetGroupStickinessConfig == nil {
			continue
		}
		c := a.ForwardConfig.TargetGroupStickinessConfig
		if awssdk.ToBool(c.Enabled) {
			return &contract.Stickiness{Cookie: StickyCookie, TTL: contract.Duration(time.Duration(awssdk.ToInt32(c.DurationSeconds)) * time.Second)}
		}
	}
	return nil
}

// listenerRules returns imago's rules of the listener arn, by priority, and
// every priority in use on it.
func (d *Driver) listenerRules(ctx context.Context, key contract.RouteKey, arn string) ([]albRule, map[int]bool, error) {
	used := map[int]bool{}
	var rules []elbtypes.Rule
	p := elbv2.NewDescribeRulesPaginator(d.elb, &elbv2.DescribeRulesInput{ListenerArn: awssdk.String(arn)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, wrap(err, "route %s: describe the rules of listener %s", key, arn)
		}
		for _, r := range out.Rules {
			if awssdk.ToBool(r.IsDefault) {
				continue
			}
			n, _ := strconv.Atoi(awssdk.ToString(r.Priority))
			used[n] = true
			rules = append(rules, r)
		}
	}
	names := map[string]string{} // rule ARN → imago:route
	for chunk := range slices.Chunk(rules, 20) {
		arns := make([]string, 0, len(chunk))
		for _, r := range chunk {
			arns = append(arns, awssdk.ToString(r.RuleArn))
		}
		out, err := d.elb.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: arns})
		if err != nil {
			return nil, nil, wrap(err, "route %s: describe the tags of the rules of listener %s", key, arn)
		}
		for _, td := range out.TagDescriptions {
			for _, t := range td.Tags {
				if awssdk.ToString(t.Key) == routeTag {
					names[awssdk.ToString(td.ResourceArn)] = awssdk.ToString(t.Value)
				}
			}
		}
	}
	var out []albRule
	for _, r := range rules {
		name, ok := names[awssdk.ToString(r.RuleArn)]
		if !ok {
			continue // a person's rule: left alone
		}
		n, _ := strconv.Atoi(awssdk.ToString(r.Priority))
		ar := albRule{arn: awssdk.ToString(r.RuleArn), priority: n, name: name}
		ar.match, _ = matchOf(r.Conditions)
		if ts := forwardTuples(r.Actions); len(ts) > 0 {
			ar.tgARN = awssdk.ToString(ts[0].TargetGroupArn)
		}
		out = append(out, ar)
	}
	slices.SortFunc(out, func(a, b albRule) int { return a.priority - b.priority })
	return out, used, nil
}

// setMatches makes imago's rules of the listener arn those of matches (whose
// fleets' target groups tgs names): unchanged rules stay; otherwise the new
// rules are made first, at free priorities, and then the old ones deleted, so
// matched requests never fall through to the weights in between.
func (d *Driver) setMatches(ctx context.Context, key contract.RouteKey, arn string, matches []contract.MatchRoute, tgs map[string]string) error {
	current, used, err := d.listenerRules(ctx, key, arn)
	if err != nil {
		return err
	}
	var want []albRule
	for _, m := range matches {
		for _, r := range m.Match {
			want = append(want, albRule{name: m.Name, tgARN: tgs[m.FleetID], match: r})
		}
	}
	same := slices.EqualFunc(current, want, func(a, b albRule) bool {
		return a.name == b.name && a.tgARN == b.tgARN && a.match == b.match
	})
	if same {
		return nil
	}
	prio := RulePriorityBase
	for _, r := range want {
		for used[prio] {
			prio++
		}
		if prio > 50000 {
			return provider.Errorf(provider.FailedPrecondition, "route %s: listener %s has no free rule priority from %d to 50000 for header routes", key, arn, RulePriorityBase)
		}
		used[prio] = true
		_, err := d.elb.CreateRule(ctx, &elbv2.CreateRuleInput{
			ListenerArn: awssdk.String(arn), Priority: awssdk.Int32(int32(prio)),
			Conditions: []elbtypes.RuleCondition{conditionOf(r.match)},
			Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
				TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: awssdk.String(r.tgARN), Weight: awssdk.Int32(1)}}}}},
			Tags: []elbtypes.Tag{{Key: awssdk.String(routeTag), Value: awssdk.String(r.name)},
				{Key: awssdk.String(TagService), Value: awssdk.String(key.Service)}, {Key: awssdk.String(TagEnvironment), Value: awssdk.String(key.Environment)}},
		})
		if err != nil {
			return wrap(err, "route %s: create the listener rule of header route %s", key, r.name)
		}
	}
	for _, r := range current {
		_, err := d.elb.DeleteRule(ctx, &elbv2.DeleteRuleInput{RuleArn: awssdk.String(r.arn)})
		if err != nil && apiCode(err) != "RuleNotFound" {
			return wrap(err, "route %s: delete the listener rule %s of header route %s", key, r.arn, r.name)
		}
	}
	return nil
}

// matchesOf reads imago's rules back as header routes; names maps target
// group ARNs to fleet IDs.
func matchesOf(rules []albRule, names map[string]string) []contract.MatchRoute {
	var out []contract.MatchRoute
	for _, r := range rules {
		fleet := names[r.tgARN]
		if fleet == "" {
			fleet = r.tgARN
		}
		if n := len(out); n > 0 && out[n-1].Name == r.name && out[n-1].FleetID == fleet {
			out[n-1].Match = append(out[n-1].Match, r.match)
			continue
		}
		out = append(out, contract.MatchRoute{Name: r.name, FleetID: fleet, Match: []contract.MatchRule{r.match}})
	}
	return out
}
