package aws

import (
	"context"
	"net"
	"sort"
	"strconv"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/imago/imago/internal/provider"
)

// maxForward is how many target groups one ALB forward action can weigh.
const maxForward = 5

// SetRoute makes the default action of the listener of key forward to the
// target groups of the route's fleets with the route's weights (one
// ModifyListener call: the switch is atomic). An empty route makes the listener
// answer 503. Backend targets are not used: each fleet's Auto Scaling group
// keeps its target group's members.
func (d *Driver) SetRoute(ctx context.Context, key provider.RouteKey, route provider.Route) error {
	if err := provider.CheckName("service", key.Service); err != nil {
		return err
	}
	if err := provider.CheckName("environment", key.Environment); err != nil {
		return err
	}
	arn, ok := d.listener(key)
	if !ok {
		return provider.Errorf(provider.FailedPrecondition,
			"route %s: no ALB listener is configured for it: add its listener ARN to the aws provider's listeners under %q", key, key.String())
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
	if len(names) > 0 {
		out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: names})
		if apiCode(err) == "TargetGroupNotFound" {
			return &provider.Error{Code: provider.NotFound, Err: err,
				Msg: "route " + key.String() + ": a fleet of the route has no target group (was it terminated?)"}
		}
		if err != nil {
			return wrap(err, "route %s: describe the target groups of %v", key, names)
		}
		arns := map[string]string{}
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
	return d.modifyListener(ctx, key, arn, tuples)
}

// modifyListener sets the listener's default action: forward to tuples, or a
// 503 fixed response when there are none.
func (d *Driver) modifyListener(ctx context.Context, key provider.RouteKey, arn string, tuples []elbtypes.TargetGroupTuple) error {
	action := elbtypes.Action{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: tuples}}
	if len(tuples) == 0 {
		action = elbtypes.Action{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{
			StatusCode: awssdk.String("503"), ContentType: awssdk.String("text/plain"),
			MessageBody: awssdk.String("no fleet of " + key.String() + " receives traffic\n"),
		}}
	}
	_, err := d.elb.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: awssdk.String(arn), DefaultActions: []elbtypes.Action{action}})
	return wrap(err, "route %s: modify listener %s", key, arn)
}

func (d *Driver) describeListener(ctx context.Context, key provider.RouteKey, arn string) (elbtypes.Listener, error) {
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

// Route reads the listener of key: each forwarded target group is a backend
// (its name is the fleet ID) with its weight and the addresses of the targets
// registered in it (draining ones excluded). A key without a configured
// listener, or a listener that does not forward, has an empty route.
func (d *Driver) Route(ctx context.Context, key provider.RouteKey) (provider.Route, error) {
	if err := provider.CheckName("service", key.Service); err != nil {
		return provider.Route{}, err
	}
	if err := provider.CheckName("environment", key.Environment); err != nil {
		return provider.Route{}, err
	}
	arn, ok := d.listener(key)
	if !ok {
		return provider.Route{}, nil
	}
	l, err := d.describeListener(ctx, key, arn)
	if err != nil {
		return provider.Route{}, err
	}
	tuples := forwardTuples(l.DefaultActions)
	if len(tuples) == 0 {
		return provider.Route{}, nil
	}
	arns := make([]string, 0, len(tuples))
	for _, t := range tuples {
		arns = append(arns, awssdk.ToString(t.TargetGroupArn))
	}
	out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: arns})
	if err != nil {
		return provider.Route{}, wrap(err, "route %s: describe target groups %v", key, arns)
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
			return provider.Route{}, err
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
		return provider.Route{}, err
	}
	r := provider.Route{Backends: []provider.Backend{}}
	for _, t := range tuples {
		a := awssdk.ToString(t.TargetGroupArn)
		b := provider.Backend{FleetID: names[a], Weight: int(awssdk.ToInt32(t.Weight)), Targets: []string{}}
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
	return r, nil
}
