package aws

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// maxForward is how many target groups one ALB forward action can weigh.
const maxForward = 5

// SetRoute makes the forward action of the listener of key send the route's
// weights to the target groups of the route's fleets (one ModifyListener call:
// the switch is atomic). An empty route makes the listener answer 503.
// Actions before the forward (authenticate-oidc, authenticate-cognito) stay.
//
// A fleet that takes traffic for the first time must have a target the load
// balancer reports healthy: with none, SetRoute refuses (FailedPrecondition),
// or, while the load balancer is still checking (initial), fails retryably.
// A fleet the load balancer did not check yet (not in the listener) is put
// in it at weight 0 first, and SetRoute fails retryably: the retry routes
// once it is healthy. Fleets that leave the route stay in the forward at
// weight 0 (checked, ready for a rollback) until they are terminated; Route
// does not report them. Backend targets are not used: each fleet's Auto
// Scaling group keeps its target group's members.
func (d *Driver) SetRoute(ctx context.Context, key contract.RouteKey, route contract.Route) error {
	if err := provider.CheckName("service", key.Service); err != nil {
		return err
	}
	if err := provider.CheckName("environment", key.Environment); err != nil {
		return err
	}
	if err := noRegion("route "+key.String(), key.Region); err != nil {
		return err
	}
	arn, ok := d.listener(key)
	if !ok {
		return provider.Errorf(provider.FailedPrecondition,
			"route %s: no ALB listener is configured for it: add its listener ARN to the aws provider's listeners under %q", key, key.String())
	}
	if err := checkRules(key, route.RouteRules); err != nil {
		return err
	}
	if len(route.Backends) > maxForward {
		return provider.Errorf(provider.InvalidArgument, "route %s: %d fleets, but an ALB listener forwards to at most %d target groups",
			key, len(route.Backends), maxForward)
	}
	names := make([]string, 0, len(route.Backends))
	seen := map[string]bool{}
	for _, b := range route.Backends {
		if b.Weight < 0 || b.Weight > 100 {
			return provider.Errorf(provider.InvalidArgument, "route %s: weight of fleet %s is %d, want 0..100", key, b.FleetID, b.Weight)
		}
		if seen[b.FleetID] {
			return provider.Errorf(provider.InvalidArgument, "route %s: fleet %s is listed twice", key, b.FleetID)
		}
		seen[b.FleetID] = true
		names = append(names, b.FleetID)
	}
	var tuples []elbtypes.TargetGroupTuple
	arns := map[string]string{} // fleet ID → target group ARN
	if len(names) > 0 {
		out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: names})
		if apiCode(err) == "TargetGroupNotFound" {
			return &provider.Error{Code: provider.NotFound, Err: err,
				Msg: "route " + key.String() + ": a fleet of the route has no target group (was it terminated?)"}
		}
		if err != nil {
			return wrap(err, "route %s: describe the target groups of %v", key, names)
		}
		for _, tg := range out.TargetGroups {
			arns[awssdk.ToString(tg.TargetGroupName)] = awssdk.ToString(tg.TargetGroupArn)
		}
		for _, b := range route.Backends {
			tga, ok := arns[b.FleetID]
			if !ok {
				return provider.Errorf(provider.NotFound, "route %s: fleet %s has no target group (was it terminated?)", key, b.FleetID)
			}
			tuples = append(tuples, elbtypes.TargetGroupTuple{TargetGroupArn: awssdk.String(tga), Weight: awssdk.Int32(int32(b.Weight))})
		}
	}
	l, err := d.describeListener(ctx, key, arn)
	if err != nil {
		return err
	}
	current := forwardTuples(l.DefaultActions)
	if len(tuples) == 0 {
		if err := d.setMatches(ctx, key, arn, nil, nil); err != nil {
			return err
		}
		return d.modifyListener(ctx, key, arn, l.DefaultActions, nil, nil)
	}
	if err := d.checkNewTraffic(ctx, key, arn, l.DefaultActions, route, tuples); err != nil {
		return err
	}
	// Fleets that leave the route stay checked at weight 0, as room allows.
	for _, t := range current {
		if len(tuples) < maxForward && !hasTuple(tuples, awssdk.ToString(t.TargetGroupArn)) {
			tuples = append(tuples, elbtypes.TargetGroupTuple{TargetGroupArn: t.TargetGroupArn, Weight: awssdk.Int32(0)})
		}
	}
	// The weights (and stickiness) first, then the header routes' rules (rules.go).
	if err := d.modifyListener(ctx, key, arn, l.DefaultActions, tuples, stickinessConfig(route.Stickiness)); err != nil {
		return err
	}
	return d.setMatches(ctx, key, arn, route.Matches, arns)
}

// checkNewTraffic refuses weight for a target group the listener gives none
// today unless the load balancer reports one of its targets healthy. A target
// group the listener does not name at all is put in it at weight 0, so the
// load balancer starts checking it, and the error is retryable.
func (d *Driver) checkNewTraffic(ctx context.Context, key contract.RouteKey, arn string, actions []elbtypes.Action,
	route contract.Route, tuples []elbtypes.TargetGroupTuple) error {
	current := forwardTuples(actions)
	weight := map[string]int32{}
	for _, t := range current {
		weight[awssdk.ToString(t.TargetGroupArn)] = awssdk.ToInt32(t.Weight)
	}
	var unchecked []string
	var uncheckedFleets []string
	for i, t := range tuples {
		tga := awssdk.ToString(t.TargetGroupArn)
		w, named := weight[tga]
		switch {
		case awssdk.ToInt32(t.Weight) == 0 || w > 0:
			continue
		case !named:
			unchecked = append(unchecked, tga)
			uncheckedFleets = append(uncheckedFleets, route.Backends[i].FleetID)
			continue
		}
		ths, err := d.targetHealth(ctx, tga)
		if err != nil {
			return err
		}
		healthy, checking := 0, 0
		var states []string
		for _, th := range ths {
			st, reason := targetState(th)
			switch st {
			case elbtypes.TargetHealthStateEnumHealthy:
				healthy++
			case elbtypes.TargetHealthStateEnumInitial:
				checking++
			}
			states = append(states, fmt.Sprintf("%s %s %s", awssdk.ToString(th.Target.Id), st, reason))
		}
		switch {
		case healthy > 0:
		case checking > 0:
			return fmt.Errorf("route %s: the load balancer is still checking fleet %s (%s); it takes traffic once a target is healthy: retry",
				key, route.Backends[i].FleetID, strings.Join(states, ", "))
		default:
			return provider.Errorf(provider.FailedPrecondition,
				"route %s: refusing to send %d%% to fleet %s: the load balancer reports none of its %d targets healthy (%s); the current route stays",
				key, route.Backends[i].Weight, route.Backends[i].FleetID, len(ths), strings.Join(states, ", "))
		}
	}
	if len(unchecked) == 0 {
		return nil
	}
	next := append([]elbtypes.TargetGroupTuple(nil), current...)
	for _, tga := range unchecked {
		next = append(next, elbtypes.TargetGroupTuple{TargetGroupArn: awssdk.String(tga), Weight: awssdk.Int32(0)})
	}
	if err := d.modifyListener(ctx, key, arn, actions, trimStandby(next), nil); err != nil {
		return err
	}
	return fmt.Errorf("route %s: the load balancer has not checked fleets %v yet: they are in the listener at weight 0 now, and take traffic once healthy: retry",
		key, uncheckedFleets)
}

// attach puts target group tga in the forward action of the listener of key
// at weight 0, unless it is there: the load balancer then health-checks it and
// sends it nothing. A listener without a forward action gets one whose every
// weight is 0.
func (d *Driver) attach(ctx context.Context, key contract.RouteKey, tga string) error {
	arn, ok := d.listener(key)
	if !ok {
		return nil // no load balancer: the group's own health checks count
	}
	l, err := d.describeListener(ctx, key, arn)
	if err != nil {
		return err
	}
	current := forwardTuples(l.DefaultActions)
	if hasTuple(current, tga) {
		return nil
	}
	next := append(append([]elbtypes.TargetGroupTuple(nil), current...), elbtypes.TargetGroupTuple{TargetGroupArn: awssdk.String(tga), Weight: awssdk.Int32(0)})
	next = trimStandby(next)
	if !hasTuple(next, tga) {
		return provider.Errorf(provider.FailedPrecondition,
			"route %s: listener %s already forwards traffic to %d target groups, the most an ALB forward action takes: move traffic off one of them first",
			key, arn, maxForward)
	}
	return d.modifyListener(ctx, key, arn, l.DefaultActions, next, nil)
}

// trimStandby drops weight-0 target groups, oldest first, until at most
// maxForward remain; the last tuple (the one being added) goes last.
func trimStandby(tuples []elbtypes.TargetGroupTuple) []elbtypes.TargetGroupTuple {
	for i := 0; len(tuples) > maxForward && i < len(tuples)-1; {
		if awssdk.ToInt32(tuples[i].Weight) == 0 {
			tuples = append(tuples[:i:i], tuples[i+1:]...)
			continue
		}
		i++
	}
	if len(tuples) > maxForward {
		tuples = tuples[:maxForward]
	}
	return tuples
}

func hasTuple(tuples []elbtypes.TargetGroupTuple, tga string) bool {
	for _, t := range tuples {
		if awssdk.ToString(t.TargetGroupArn) == tga {
			return true
		}
	}
	return false
}

// modifyListener replaces the listener's last (routing) default action with a
// forward to tuples, or a 503 fixed response when there are none, and keeps
// the actions before it (ModifyListener replaces every default action: what
// it is not given is gone). The OIDC client secret, which DescribeListeners
// does not return, is kept with UseExistingClientSecret. The forward's
// stickiness is sticky, or, when nil, the current forward's.
func (d *Driver) modifyListener(ctx context.Context, key contract.RouteKey, arn string, actions []elbtypes.Action, tuples []elbtypes.TargetGroupTuple,
	sticky *elbtypes.TargetGroupStickinessConfig) error {
	var out []elbtypes.Action
	var last *elbtypes.Action
	for _, a := range actions {
		switch a.Type {
		case elbtypes.ActionTypeEnumForward, elbtypes.ActionTypeEnumFixedResponse, elbtypes.ActionTypeEnumRedirect:
			a := a
			last = &a
			continue
		case elbtypes.ActionTypeEnumAuthenticateOidc:
			if a.AuthenticateOidcConfig != nil {
				cfg := *a.AuthenticateOidcConfig
				cfg.ClientSecret, cfg.UseExistingClientSecret = nil, awssdk.Bool(true)
				a.AuthenticateOidcConfig = &cfg
			}
		}
		out = append(out, a)
	}
	action := elbtypes.Action{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: tuples}}
	if last != nil && last.Type == elbtypes.ActionTypeEnumForward && last.ForwardConfig != nil {
		action.ForwardConfig.TargetGroupStickinessConfig = last.ForwardConfig.TargetGroupStickinessConfig
	}
	if sticky != nil {
		action.ForwardConfig.TargetGroupStickinessConfig = sticky
	}
	if len(tuples) == 0 {
		action = elbtypes.Action{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{
			StatusCode: awssdk.String("503"), ContentType: awssdk.String("text/plain"),
			MessageBody: awssdk.String("no fleet of " + key.String() + " receives traffic\n"),
		}}
	}
	switch {
	case last != nil && last.Order != nil:
		action.Order = last.Order
	case len(out) > 0:
		order := int32(0)
		for _, a := range out {
			order = max(order, awssdk.ToInt32(a.Order))
		}
		action.Order = awssdk.Int32(order + 1)
	}
	out = append(out, action)
	_, err := d.elb.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: awssdk.String(arn), DefaultActions: out})
	return wrap(err, "route %s: modify listener %s", key, arn)
}

func (d *Driver) describeListener(ctx context.Context, key contract.RouteKey, arn string) (elbtypes.Listener, error) {
	out, err := d.elb.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{arn}})
	if apiCode(err) == "ListenerNotFound" {
		return elbtypes.Listener{}, &provider.Error{Code: provider.FailedPrecondition, Err: err,
			Msg: "route " + key.String() + ": listener " + arn + " does not exist: fix the aws provider's listeners"}
	}
	if err != nil {
		return elbtypes.Listener{}, wrap(err, "route %s: describe listener %s", key, arn)
	}
	if len(out.Listeners) == 0 {
		return elbtypes.Listener{}, provider.Errorf(provider.FailedPrecondition,
			"route %s: listener %s does not exist: fix the aws provider's listeners", key, arn)
	}
	return out.Listeners[0], nil
}

// forwardTuples returns the weighted target groups of the forward action among
// actions (a plain TargetGroupArn forward is one tuple of weight 100).
func forwardTuples(actions []elbtypes.Action) []elbtypes.TargetGroupTuple {
	for _, a := range actions {
		if a.Type != elbtypes.ActionTypeEnumForward {
			continue
		}
		if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
			return a.ForwardConfig.TargetGroups
		}
		if a.TargetGroupArn != nil {
			return []elbtypes.TargetGroupTuple{{TargetGroupArn: a.TargetGroupArn, Weight: awssdk.Int32(100)}}
		}
	}
	return nil
}

// Route reads the listener of key: each target group the forward action
// gives weight is a backend (its name is the fleet ID) with its weight and the
// addresses of the targets registered in it (draining ones excluded). Target
// groups at weight 0 (checked, sent nothing) are not part of the route. A key
// without a configured listener, or a listener that does not forward, has an
// empty route.
func (d *Driver) Route(ctx context.Context, key contract.RouteKey) (contract.Route, error) {
	if err := provider.CheckName("service", key.Service); err != nil {
		return contract.Route{}, err
	}
	if err := provider.CheckName("environment", key.Environment); err != nil {
		return contract.Route{}, err
	}
	if err := noRegion("route "+key.String(), key.Region); err != nil {
		return contract.Route{}, err
	}
	arn, ok := d.listener(key)
	if !ok {
		return contract.Route{}, nil
	}
	l, err := d.describeListener(ctx, key, arn)
	if err != nil {
		return contract.Route{}, err
	}
	var tuples []elbtypes.TargetGroupTuple
	for _, t := range forwardTuples(l.DefaultActions) {
		if awssdk.ToInt32(t.Weight) > 0 {
			tuples = append(tuples, t)
		}
	}
	if len(tuples) == 0 {
		return contract.Route{}, nil
	}
	arns := make([]string, 0, len(tuples))
	for _, t := range tuples {
		arns = append(arns, awssdk.ToString(t.TargetGroupArn))
	}
	rules, _, err := d.listenerRules(ctx, key, arn)
	if err != nil {
		return contract.Route{}, err
	}
	described := slices.Clone(arns) // and the target groups of header routes (rules.go)
	for _, r := range rules {
		if r.tgARN != "" && !slices.Contains(described, r.tgARN) {
			described = append(described, r.tgARN)
		}
	}
	out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: described})
	if err != nil {
		return contract.Route{}, wrap(err, "route %s: describe target groups %v", key, described)
	}
	names := map[string]string{}
	for _, tg := range out.TargetGroups {
		names[awssdk.ToString(tg.TargetGroupArn)] = awssdk.ToString(tg.TargetGroupName)
	}
	type member struct {
		id   string
		port int32
	}
	members := map[string][]member{}
	var ids []string
	for _, a := range arns {
		ths, err := d.targetHealth(ctx, a)
		if err != nil {
			return contract.Route{}, err
		}
		for _, th := range ths {
			if th.Target == nil || th.Target.Id == nil ||
				(th.TargetHealth != nil && th.TargetHealth.State == elbtypes.TargetHealthStateEnumDraining) {
				continue
			}
			members[a] = append(members[a], member{*th.Target.Id, awssdk.ToInt32(th.Target.Port)})
			ids = append(ids, *th.Target.Id)
		}
	}
	ec2s, err := d.instances(ctx, ids)
	if err != nil {
		return contract.Route{}, err
	}
	r := contract.Route{Backends: []contract.Backend{}}
	for _, t := range tuples {
		a := awssdk.ToString(t.TargetGroupArn)
		b := contract.Backend{FleetID: names[a], Weight: int(awssdk.ToInt32(t.Weight)), Targets: []string{}}
		if b.FleetID == "" {
			b.FleetID = a
		}
		for _, m := range members[a] {
			if e, ok := ec2s[m.id]; ok && e.PrivateIpAddress != nil {
				port := int(m.port)
				if port == 0 {
					port = d.cfg.Port
				}
				b.Targets = append(b.Targets, net.JoinHostPort(*e.PrivateIpAddress, strconv.Itoa(port)))
			}
		}
		sort.Strings(b.Targets)
		r.Backends = append(r.Backends, b)
	}
	r.Matches, r.Stickiness = matchesOf(rules, names), stickinessOf(l.DefaultActions)
	return r, nil
}
