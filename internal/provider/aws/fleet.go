package aws

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/imago/imago/internal/provider"
)

// Provision creates the fleet of req.Token, or adopts the one an earlier call
// made: when the fleet's Auto Scaling group exists it is described and returned.
// Otherwise every step is idempotent by name or client token, so a retry
// finishes what an interrupted attempt started: the launch template (client
// token = fleet ID), the target group (same name and settings return the
// existing one) and the Auto Scaling group (AlreadyExists, from a concurrent
// attempt: it is described and returned). A retry with the same token and a
// different request is refused.
//
// It returns without waiting for instances to launch: instances the group has
// not launched yet appear as stopped placeholders, so a health wait waits for them.
func (d *Driver) Provision(ctx context.Context, req provider.ProvisionRequest) (provider.Fleet, error) {
	if req.Token == "" {
		return provider.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: a request token is required")
	}
	if req.Size < 1 {
		return provider.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: fleet size must be at least 1, got %d", req.Size)
	}
	if err := provider.CheckName("service", req.Service); err != nil {
		return provider.Fleet{}, err
	}
	if err := provider.CheckName("environment", req.Environment); err != nil {
		return provider.Fleet{}, err
	}
	id := FleetID(req.Token)
	tags, err := fleetTags(id, req)
	if err != nil {
		return provider.Fleet{}, err
	}
	// A retry of a Provision that got as far as the group adopts it, creating nothing.
	g, err := d.group(ctx, id)
	if err != nil {
		return provider.Fleet{}, err
	}
	if g != nil {
		if deleting(g) {
			return provider.Fleet{}, fmt.Errorf(
				"provision: fleet %s of token %q is still being deleted (it was terminated); once AWS deleted it a retry makes it again", id, req.Token)
		}
		return d.describeGroup(ctx, g, &req)
	}
	ami, err := d.resolveAMI(ctx, req.ImageID)
	if err != nil {
		return provider.Fleet{}, err
	}
	imgs, err := d.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return provider.Fleet{}, wrap(err, "provision: image %s (AMI %s in %s)", req.ImageID, ami, d.cfg.Region)
	}
	if len(imgs.Images) == 0 {
		return provider.Fleet{}, provider.Errorf(provider.NotFound, "provision: image %s: AMI %s not found in %s", req.ImageID, ami, d.cfg.Region)
	}
	if st := imgs.Images[0].State; st != ec2types.ImageStateAvailable {
		return provider.Fleet{}, provider.Errorf(provider.FailedPrecondition,
			"provision: AMI %s of image %s is %s, not available: wait for it to become available or bake it again", ami, req.ImageID, st)
	}

	// 1. The launch template: what every instance of the fleet boots.
	var ec2Tags []ec2types.Tag
	for _, t := range tags {
		ec2Tags = append(ec2Tags, ec2types.Tag{Key: awssdk.String(t[0]), Value: awssdk.String(t[1])})
	}
	data := &ec2types.RequestLaunchTemplateData{
		ImageId:      awssdk.String(ami),
		InstanceType: ec2types.InstanceType(d.cfg.InstanceType),
		TagSpecifications: []ec2types.LaunchTemplateTagSpecificationRequest{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: append([]ec2types.Tag{{Key: awssdk.String("Name"), Value: awssdk.String(id)}}, ec2Tags...)},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: ec2Tags},
		},
	}
	if len(d.cfg.SecurityGroups) > 0 {
		data.SecurityGroupIds = d.cfg.SecurityGroups
	}
	if d.cfg.KeyName != "" {
		data.KeyName = awssdk.String(d.cfg.KeyName)
	}
	if d.cfg.UserData != "" {
		data.UserData = awssdk.String(d.cfg.UserData)
	}
	if d.cfg.IAMInstanceProfile != "" {
		data.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: awssdk.String(d.cfg.IAMInstanceProfile)}
	}
	_, err = d.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: awssdk.String(id),
		ClientToken:        awssdk.String(id),
		VersionDescription: awssdk.String(fmt.Sprintf("imago fleet %s of %s/%s, image %s", id, req.Environment, req.Service, req.ImageID)),
		LaunchTemplateData: data,
		TagSpecifications:  []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: ec2Tags}},
	})
	switch apiCode(err) {
	case "":
	case "IdempotentParameterMismatch":
		return provider.Fleet{}, &provider.Error{Code: provider.InvalidArgument, Err: err, Msg: fmt.Sprintf(
			"provision: token %q already made fleet %s with a different request (launch template %s); a retry must repeat the same request",
			req.Token, id, id)}
	case "InvalidLaunchTemplateName.AlreadyExistsException":
		return provider.Fleet{}, &provider.Error{Code: provider.FailedPrecondition, Err: err, Msg: fmt.Sprintf(
			"provision: launch template %s exists but imago did not make it for token %q: delete it, or provision with another token", id, req.Token)}
	default:
		return provider.Fleet{}, wrap(err, "provision fleet %s: create launch template", id)
	}

	// 2. The target group the load balancer forwards the fleet's share to.
	var elbTags []elbtypes.Tag
	for _, t := range tags {
		elbTags = append(elbTags, elbtypes.Tag{Key: awssdk.String(t[0]), Value: awssdk.String(t[1])})
	}
	tgOut, err := d.elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{
		Name:                awssdk.String(id),
		Protocol:            elbtypes.ProtocolEnumHttp,
		Port:                awssdk.Int32(int32(d.cfg.Port)),
		VpcId:               awssdk.String(d.cfg.VPCID),
		TargetType:          elbtypes.TargetTypeEnumInstance,
		HealthCheckProtocol: elbtypes.ProtocolEnumHttp,
		HealthCheckPath:     awssdk.String(d.cfg.HealthCheckPath),
		Matcher:             &elbtypes.Matcher{HttpCode: awssdk.String("200-299")},
		Tags:                elbTags,
	})
	if err != nil {
		return provider.Fleet{}, wrap(err, "provision fleet %s: create target group", id)
	}
	if len(tgOut.TargetGroups) == 0 || tgOut.TargetGroups[0].TargetGroupArn == nil {
		return provider.Fleet{}, fmt.Errorf("provision fleet %s: CreateTargetGroup returned no target group", id)
	}
	tgARN := *tgOut.TargetGroups[0].TargetGroupArn
	_, err = d.elb.ModifyTargetGroupAttributes(ctx, &elbv2.ModifyTargetGroupAttributesInput{
		TargetGroupArn: awssdk.String(tgARN),
		Attributes: []elbtypes.TargetGroupAttribute{{
			Key:   awssdk.String("deregistration_delay.timeout_seconds"),
			Value: awssdk.String(strconv.Itoa(int(d.cfg.DeregistrationDelay / time.Second))),
		}},
	})
	if err != nil {
		return provider.Fleet{}, wrap(err, "provision fleet %s: set the deregistration delay of target group %s", id, tgARN)
	}

	// 3. The Auto Scaling group: launches the instances and registers them in the target group.
	var asgTags []asgtypes.Tag
	for _, t := range append([][2]string{{"Name", id}}, tags...) {
		asgTags = append(asgTags, asgtypes.Tag{Key: awssdk.String(t[0]), Value: awssdk.String(t[1]), PropagateAtLaunch: awssdk.Bool(true)})
	}
	size := awssdk.Int32(int32(req.Size))
	_, err = d.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName:   awssdk.String(id),
		LaunchTemplate:         &asgtypes.LaunchTemplateSpecification{LaunchTemplateName: awssdk.String(id), Version: awssdk.String("1")},
		MinSize:                size,
		MaxSize:                size,
		DesiredCapacity:        size,
		VPCZoneIdentifier:      awssdk.String(strings.Join(d.cfg.Subnets, ",")),
		TargetGroupARNs:        []string{tgARN},
		HealthCheckType:        awssdk.String("ELB"),
		HealthCheckGracePeriod: awssdk.Int32(int32(d.cfg.HealthCheckGracePeriod / time.Second)),
		Tags:                   asgTags,
	})
	if err != nil && apiCode(err) != "AlreadyExists" { // AlreadyExists: a concurrent retry made it
		return provider.Fleet{}, wrap(err, "provision fleet %s: create Auto Scaling group", id)
	}
	if g, err = d.group(ctx, id); err != nil {
		return provider.Fleet{}, err
	}
	if g == nil || deleting(g) {
		return provider.Fleet{}, fmt.Errorf("provision: Auto Scaling group %s was created but is not visible (yet): retry", id)
	}
	return d.describeGroup(ctx, g, &req)
}

// Describe returns the fleet with the live state of its instances.
func (d *Driver) Describe(ctx context.Context, fleetID string) (provider.Fleet, error) {
	return d.describe(ctx, fleetID)
}

// describe describes fleet id.
func (d *Driver) describe(ctx context.Context, id string) (provider.Fleet, error) {
	if !fleetIDPattern.MatchString(id) {
		return provider.Fleet{}, provider.Errorf(provider.NotFound, "fleet %q not found: aws fleet IDs look like imago-<12 hex digits>", id)
	}
	g, err := d.group(ctx, id)
	if err != nil {
		return provider.Fleet{}, err
	}
	if g == nil || deleting(g) {
		// A fleet whose Terminate did not finish: its target group outlives the
		// group, and Terminate must be able to find it to finish the job.
		tg, err := d.targetGroup(ctx, id)
		if err != nil || tg == nil {
			if err == nil {
				err = provider.Errorf(provider.NotFound, "fleet %s not found in %s", id, d.cfg.Region)
			}
			return provider.Fleet{}, err
		}
		tags, err := d.targetGroupTags(ctx, *tg.TargetGroupArn)
		if err != nil {
			return provider.Fleet{}, err
		}
		return fleetFromTags(id, tags), nil
	}
	return d.describeGroup(ctx, g, nil)
}

// describeGroup returns the fleet of group g with its instances' live state;
// with want set (a Provision) it refuses a fleet that a different request made.
func (d *Driver) describeGroup(ctx context.Context, g *asgtypes.AutoScalingGroup, want *provider.ProvisionRequest) (provider.Fleet, error) {
	f := groupFleet(g)
	id := f.ID
	if want != nil && (f.Token != want.Token || f.Service != want.Service || f.Environment != want.Environment || f.ImageID != want.ImageID) {
		return provider.Fleet{}, provider.Errorf(provider.InvalidArgument,
			"provision: token %q already made fleet %s (%s/%s, image %s); a retry must repeat the same request",
			want.Token, id, f.Environment, f.Service, f.ImageID)
	}
	ec2s, err := d.instances(ctx, instanceIDs(g))
	if err != nil {
		return provider.Fleet{}, err
	}
	var health map[string]elbtypes.TargetHealthStateEnum
	if len(g.TargetGroupARNs) > 0 && len(g.Instances) > 0 {
		ths, err := d.targetHealth(ctx, g.TargetGroupARNs[0])
		if err != nil {
			return provider.Fleet{}, err
		}
		health = map[string]elbtypes.TargetHealthStateEnum{}
		for _, th := range ths {
			if th.Target != nil && th.Target.Id != nil && th.TargetHealth != nil {
				health[*th.Target.Id] = th.TargetHealth.State
			}
		}
	}
	f.Instances = d.fleetInstances(g, ec2s, health, true)
	return f, nil
}

// group returns the Auto Scaling group named name, nil when there is none.
func (d *Driver) group(ctx context.Context, name string) (*asgtypes.AutoScalingGroup, error) {
	out, err := d.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return nil, wrap(err, "describe Auto Scaling group %s", name)
	}
	for i := range out.AutoScalingGroups {
		if awssdk.ToString(out.AutoScalingGroups[i].AutoScalingGroupName) == name {
			return &out.AutoScalingGroups[i], nil
		}
	}
	return nil, nil
}

// deleting reports whether g is being deleted (after a Terminate).
func deleting(g *asgtypes.AutoScalingGroup) bool {
	return strings.HasPrefix(awssdk.ToString(g.Status), "Delete")
}

// targetGroup returns the target group named name, nil when there is none.
func (d *Driver) targetGroup(ctx context.Context, name string) (*elbtypes.TargetGroup, error) {
	out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{name}})
	if apiCode(err) == "TargetGroupNotFound" {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(err, "describe target group %s", name)
	}
	if len(out.TargetGroups) == 0 {
		return nil, nil
	}
	return &out.TargetGroups[0], nil
}

func (d *Driver) targetGroupTags(ctx context.Context, arn string) (map[string]string, error) {
	out, err := d.elb.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil {
		return nil, wrap(err, "describe tags of target group %s", arn)
	}
	tags := map[string]string{}
	for _, td := range out.TagDescriptions {
		for _, t := range td.Tags {
			tags[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
		}
	}
	return tags, nil
}

func (d *Driver) targetHealth(ctx context.Context, tgARN string) ([]elbtypes.TargetHealthDescription, error) {
	out, err := d.elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: awssdk.String(tgARN)})
	if err != nil {
		return nil, wrap(err, "describe target health of %s", tgARN)
	}
	return out.TargetHealthDescriptions, nil
}

func groupFleet(g *asgtypes.AutoScalingGroup) provider.Fleet {
	tags := map[string]string{}
	for _, t := range g.Tags {
		tags[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	f := fleetFromTags(awssdk.ToString(g.AutoScalingGroupName), tags)
	if g.CreatedTime != nil {
		f.Created = g.CreatedTime.UTC()
	}
	return f
}

func instanceIDs(groups ...*asgtypes.AutoScalingGroup) []string {
	var ids []string
	for _, g := range groups {
		for _, in := range g.Instances {
			ids = append(ids, awssdk.ToString(in.InstanceId))
		}
	}
	return ids
}

// instances returns the EC2 instances of ids by ID (one DescribeInstances call
// per 500 IDs; none for no IDs).
func (d *Driver) instances(ctx context.Context, ids []string) (map[string]ec2types.Instance, error) {
	out := map[string]ec2types.Instance{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		var next *string
		for {
			res, err := d.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: chunk, NextToken: next})
			if err != nil {
				if apiCode(err) == "InvalidInstanceID.NotFound" {
					// Just launched and not visible yet (EC2 is eventually consistent): retry.
					return nil, fmt.Errorf("describe instances %v: %w", chunk, err)
				}
				return nil, wrap(err, "describe instances %v", chunk)
			}
			for _, r := range res.Reservations {
				for _, in := range r.Instances {
					out[awssdk.ToString(in.InstanceId)] = in
				}
			}
			if next = res.NextToken; next == nil || *next == "" {
				break
			}
		}
	}
	return out, nil
}

// fleetInstances lists the instances of g. An instance is running when the
// group has it InService, EC2 has it running and (withHealth) its target group
// has it healthy, or, while the load balancer does not route to the target
// group yet ("unused"), the group's health check passes. Capacity the group has
// not launched yet appears as stopped placeholders "<fleet>-launching-<n>".
func (d *Driver) fleetInstances(g *asgtypes.AutoScalingGroup, ec2s map[string]ec2types.Instance,
	health map[string]elbtypes.TargetHealthStateEnum, withHealth bool) []provider.Instance {
	attached := len(g.TargetGroupARNs) > 0
	out := []provider.Instance{}
	live := 0
	members := append([]asgtypes.Instance(nil), g.Instances...)
	sort.Slice(members, func(i, j int) bool {
		return awssdk.ToString(members[i].InstanceId) < awssdk.ToString(members[j].InstanceId)
	})
	for _, m := range members {
		id := awssdk.ToString(m.InstanceId)
		in := provider.Instance{ID: id, State: provider.InstanceStopped}
		lc := string(m.LifecycleState)
		if !strings.HasPrefix(lc, "Terminat") && !strings.HasPrefix(lc, "Detach") {
			live++
		}
		e, ok := ec2s[id]
		if ok && e.PrivateIpAddress != nil {
			in.Address = net.JoinHostPort(*e.PrivateIpAddress, strconv.Itoa(d.cfg.Port))
		}
		up := m.LifecycleState == asgtypes.LifecycleStateInService && ok && e.State != nil && e.State.Name == ec2types.InstanceStateNameRunning
		if up && withHealth {
			switch health[id] {
			case elbtypes.TargetHealthStateEnumHealthy:
			case elbtypes.TargetHealthStateEnumUnused:
				up = attached && awssdk.ToString(m.HealthStatus) == "Healthy"
			default:
				up = false
			}
		}
		if up {
			in.State = provider.InstanceRunning
		}
		out = append(out, in)
	}
	for n := live + 1; n <= int(awssdk.ToInt32(g.DesiredCapacity)); n++ {
		out = append(out, provider.Instance{ID: fmt.Sprintf("%s-launching-%d", awssdk.ToString(g.AutoScalingGroupName), n), State: provider.InstanceStopped})
	}
	return out
}

// ListFleets returns the fleets (Auto Scaling groups tagged by imago) matching
// f, oldest first. Instance states come from the groups and EC2 only (no target
// health): Describe a fleet for its health.
func (d *Driver) ListFleets(ctx context.Context, f provider.Filter) ([]provider.Fleet, error) {
	filters := []asgtypes.Filter{{Name: awssdk.String("tag-key"), Values: []string{TagToken}}}
	if f.Service != "" {
		filters = append(filters, asgtypes.Filter{Name: awssdk.String("tag:" + TagService), Values: []string{f.Service}})
	}
	if f.Environment != "" {
		filters = append(filters, asgtypes.Filter{Name: awssdk.String("tag:" + TagEnvironment), Values: []string{f.Environment}})
	}
	var groups []*asgtypes.AutoScalingGroup
	var next *string
	for {
		out, err := d.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{
			Filters: filters, NextToken: next, MaxRecords: awssdk.Int32(100),
		})
		if err != nil {
			return nil, wrap(err, "list fleets: describe Auto Scaling groups")
		}
		for i := range out.AutoScalingGroups {
			if g := &out.AutoScalingGroups[i]; !deleting(g) {
				groups = append(groups, g)
			}
		}
		if next = out.NextToken; next == nil || *next == "" {
			break
		}
	}
	ec2s, err := d.instances(ctx, instanceIDs(groups...))
	if err != nil {
		return nil, err
	}
	fleets := make([]provider.Fleet, 0, len(groups))
	for _, g := range groups {
		fl := groupFleet(g)
		fl.Instances = d.fleetInstances(g, ec2s, nil, false)
		fleets = append(fleets, fl)
	}
	sort.Slice(fleets, func(i, j int) bool {
		if !fleets[i].Created.Equal(fleets[j].Created) {
			return fleets[i].Created.Before(fleets[j].Created)
		}
		return fleets[i].ID < fleets[j].ID
	})
	return fleets, nil
}

// Terminate removes the fleet: it takes its target group out of the router's
// listener (refusing, FailedPrecondition, while the listener sends it traffic),
// detaches it from the Auto Scaling group so the load balancer drains the
// instances, waits until no target is draining, then deletes the group
// (ForceDelete), the launch template and the target group. Each step is
// idempotent, so a retry finishes what an interrupted call started; a fleet
// that is gone already is not an error.
func (d *Driver) Terminate(ctx context.Context, fleetID string) error {
	if !fleetIDPattern.MatchString(fleetID) {
		return nil // no such fleet can exist
	}
	g, err := d.group(ctx, fleetID)
	if err != nil {
		return err
	}
	tg, err := d.targetGroup(ctx, fleetID)
	if err != nil {
		return err
	}
	if tg != nil {
		var tags map[string]string
		if g != nil {
			tags = groupTags(g)
		} else if tags, err = d.targetGroupTags(ctx, *tg.TargetGroupArn); err != nil {
			return err
		}
		key := provider.RouteKey{Service: tags[TagService], Environment: tags[TagEnvironment]}
		if err := d.unroute(ctx, fleetID, key, tg); err != nil {
			return err
		}
	}
	if g != nil && !deleting(g) {
		if tg != nil && contains(g.TargetGroupARNs, *tg.TargetGroupArn) {
			_, err := d.asg.DetachLoadBalancerTargetGroups(ctx, &autoscaling.DetachLoadBalancerTargetGroupsInput{
				AutoScalingGroupName: awssdk.String(fleetID), TargetGroupARNs: []string{*tg.TargetGroupArn},
			})
			if err != nil {
				return wrap(err, "terminate fleet %s: detach target group", fleetID)
			}
		}
		if tg != nil {
			if err := d.waitDrained(ctx, fleetID, *tg.TargetGroupArn); err != nil {
				return err
			}
		}
		_, err := d.asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{
			AutoScalingGroupName: awssdk.String(fleetID), ForceDelete: awssdk.Bool(true),
		})
		if err != nil && !strings.Contains(strings.ToLower(err.Error()), "not found") {
			return wrap(err, "terminate fleet %s: delete Auto Scaling group", fleetID)
		}
	}
	_, err = d.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: awssdk.String(fleetID)})
	if err != nil && apiCode(err) != "InvalidLaunchTemplateName.NotFoundException" && apiCode(err) != "InvalidLaunchTemplateId.NotFound" {
		return wrap(err, "terminate fleet %s: delete launch template", fleetID)
	}
	if tg != nil {
		_, err := d.elb.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn})
		if err != nil && apiCode(err) != "TargetGroupNotFound" {
			return wrap(err, "terminate fleet %s: delete target group %s", fleetID, *tg.TargetGroupArn)
		}
	}
	return nil
}

func groupTags(g *asgtypes.AutoScalingGroup) map[string]string {
	tags := map[string]string{}
	for _, t := range g.Tags {
		tags[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	return tags
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// unroute takes the target group tg of fleet id out of the listener of key
// when it is there with weight 0, and refuses while any load balancer could
// still send it traffic.
func (d *Driver) unroute(ctx context.Context, id string, key provider.RouteKey, tg *elbtypes.TargetGroup) error {
	inUse := len(tg.LoadBalancerArns) > 0
	if arn, ok := d.listener(key); ok {
		l, err := d.describeListener(ctx, key, arn)
		if err != nil {
			return err
		}
		tuples := forwardTuples(l.DefaultActions)
		found := false
		var keep []elbtypes.TargetGroupTuple
		for _, t := range tuples {
			if awssdk.ToString(t.TargetGroupArn) != *tg.TargetGroupArn {
				keep = append(keep, t)
				continue
			}
			found = true
			if w := awssdk.ToInt32(t.Weight); w > 0 {
				return provider.Errorf(provider.FailedPrecondition,
					"refusing to terminate fleet %s: the %s listener %s still forwards it weight %d; move its traffic away first",
					id, key, arn, w)
			}
		}
		if found {
			if err := d.modifyListener(ctx, key, arn, keep); err != nil {
				return err
			}
			inUse = false
		}
	}
	if inUse {
		return provider.Errorf(provider.FailedPrecondition,
			"refusing to terminate fleet %s: its target group is used by load balancer %v outside the %s listener imago manages; remove it there first",
			id, tg.LoadBalancerArns, key)
	}
	return nil
}

// waitDrained polls the target group until none of its targets is draining or
// registered (the load balancer finished the deregistration delay).
func (d *Driver) waitDrained(ctx context.Context, id, tgARN string) error {
	deadline := time.Now().Add(d.cfg.DeregistrationDelay + 2*time.Minute)
	for {
		ths, err := d.targetHealth(ctx, tgARN)
		if err != nil {
			return err
		}
		draining := 0
		for _, th := range ths {
			if th.TargetHealth != nil && th.TargetHealth.State == elbtypes.TargetHealthStateEnumDraining {
				draining++
			}
		}
		if draining == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("terminate fleet %s: %d targets of %s still draining after the deregistration delay (%s) and 2 minutes more",
				id, draining, tgARN, d.cfg.DeregistrationDelay)
		}
		if err := sleep(ctx, min(d.cfg.PollInterval, time.Until(deadline)+time.Millisecond)); err != nil {
			return fmt.Errorf("terminate fleet %s: waiting for target group %s to drain: %w", id, tgARN, err)
		}
	}
}
