package aws

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
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

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// healthSettings are a target group's health check.
type healthSettings struct {
	path                                  string
	interval, timeout, healthy, unhealthy int32 // seconds, seconds, checks, checks
}

// healthCheck turns the request's health check into target group settings, in
// the ranges an HTTP target group of instances takes (ELB user guide, "Health
// check settings"): interval 5-300 s, timeout 2-120 s and shorter than the
// interval, thresholds 2-10. Zero fields get the load balancer's defaults
// (30 s, 5 s, 5, 2); the path defaults to Config.HealthCheckPath.
func (d *Driver) healthCheck(h *contract.HealthCheck) healthSettings {
	hs := healthSettings{path: d.cfg.HealthCheckPath, interval: 30, timeout: 5, healthy: 5, unhealthy: 2}
	if h == nil {
		return hs
	}
	secs := func(v time.Duration) int32 { return int32((v + time.Second - 1) / time.Second) }
	clamp := func(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }
	if h.Path != "" {
		hs.path = h.Path
	}
	if h.Interval > 0 {
		hs.interval = clamp(secs(h.Interval), 5, 300)
	}
	if h.Timeout > 0 {
		hs.timeout = clamp(secs(h.Timeout), 2, 120)
	}
	hs.timeout = max(2, min(hs.timeout, hs.interval-1))
	if h.HealthyThreshold > 0 {
		hs.healthy = clamp(int32(h.HealthyThreshold), 2, 10)
	}
	if h.UnhealthyThreshold > 0 {
		hs.unhealthy = clamp(int32(h.UnhealthyThreshold), 2, 10)
	}
	return hs
}

// permanent reports whether err is one no retry will cure.
func permanent(err error) bool {
	switch provider.ErrorCode(err) {
	case provider.InvalidArgument, provider.FailedPrecondition, provider.NotFound:
		return true
	}
	return false
}

// Provision creates the fleet of req.Token, or adopts the one an earlier call
// made: when the fleet's Auto Scaling group exists it is described and returned.
// Otherwise every step is idempotent by name, client token or tag, so a retry
// finishes what an interrupted attempt started: the launch template (client
// token = fleet ID; once EC2 forgot the token, the template whose imago:token
// tag is req.Token), the target group (same name and settings return the
// existing one) and the Auto Scaling group (AlreadyExists, from a concurrent
// attempt: it is described and returned). A retry with the same token and a
// different request is refused. The target group goes into the listener at
// weight 0, so the load balancer checks the instances before any traffic.
//
// A provision that fails for good (bad input, a missing permission, a limit,
// an instance type a subnet's zone does not offer) removes what it made; one
// that fails for a while (throttling, an instance profile IAM has not
// propagated yet, 5xx) leaves it for the retry to adopt.
//
// It returns without waiting for instances to launch: instances the group has
// not launched yet appear as stopped placeholders, so a health wait waits for them.
func (d *Driver) Provision(ctx context.Context, req contract.ProvisionRequest) (_ contract.Fleet, err error) {
	if req.Token == "" {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: a request token is required")
	}
	if req.Size < 1 {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument, "provision: fleet size must be at least 1, got %d", req.Size)
	}
	if err := provider.CheckName("service", req.Service); err != nil {
		return contract.Fleet{}, err
	}
	if err := provider.CheckName("environment", req.Environment); err != nil {
		return contract.Fleet{}, err
	}
	if err := noRegion("provision", req.Region); err != nil {
		return contract.Fleet{}, err
	}
	if len(req.Env) > 0 {
		// Only user-data could carry it, and anything on the instance reads that.
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument,
			"provision: the aws provider cannot give instances an environment (env: %s); bake the configuration into the image", strings.Join(slices.Sorted(maps.Keys(req.Env)), ", "))
	}
	id := FleetID(req.Token)
	key := contract.RouteKey{Service: req.Service, Environment: req.Environment}
	tags, err := fleetTags(id, req)
	if err != nil {
		return contract.Fleet{}, err
	}
	// A retry of a Provision that got as far as the group adopts it, creating nothing.
	g, err := d.group(ctx, id)
	if err != nil {
		return contract.Fleet{}, err
	}
	if g != nil {
		return d.adopt(ctx, g, key, &req)
	}
	ami, err := d.resolveAMI(ctx, req.ImageID)
	if err != nil {
		return contract.Fleet{}, err
	}
	imgs, err := d.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return contract.Fleet{}, wrap(err, "provision: image %s (AMI %s in %s)", req.ImageID, ami, d.cfg.Region)
	}
	if len(imgs.Images) == 0 {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "provision: image %s: AMI %s not found in %s", req.ImageID, ami, d.cfg.Region)
	}
	if st := imgs.Images[0].State; st != ec2types.ImageStateAvailable {
		return contract.Fleet{}, provider.Errorf(provider.FailedPrecondition,
			"provision: AMI %s of image %s is %s, not available: wait for it to become available or bake it again", ami, req.ImageID, st)
	}

	// 1. The launch template: what every instance of the fleet boots.
	made, err := d.launchTemplate(ctx, id, ami, tags, req)
	if err != nil {
		return contract.Fleet{}, err
	}
	// From here on this request owns the fleet's resources: a permanent failure removes them.
	defer func() {
		if err != nil && permanent(err) && apiCode(err) != "DuplicateTargetGroupName" {
			if cerr := d.discard(ctx, id, key); cerr != nil {
				err = fmt.Errorf("%w (removing what this provision made failed too: %v; the reaper will find what is left by its imago:token tag)", err, cerr)
			}
		}
	}()

	// 2. The target group the load balancer forwards the fleet's share to.
	var elbTags []elbtypes.Tag
	for _, t := range tags {
		elbTags = append(elbTags, elbtypes.Tag{Key: awssdk.String(t[0]), Value: awssdk.String(t[1])})
	}
	hs := d.healthCheck(req.Health)
	tgOut, err := d.elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{
		Name:                       awssdk.String(id),
		Protocol:                   elbtypes.ProtocolEnumHttp,
		Port:                       awssdk.Int32(int32(d.cfg.Port)),
		VpcId:                      awssdk.String(d.cfg.VPCID),
		TargetType:                 elbtypes.TargetTypeEnumInstance,
		HealthCheckEnabled:         awssdk.Bool(true),
		HealthCheckProtocol:        elbtypes.ProtocolEnumHttp,
		HealthCheckPath:            awssdk.String(hs.path),
		HealthCheckIntervalSeconds: awssdk.Int32(hs.interval),
		HealthCheckTimeoutSeconds:  awssdk.Int32(hs.timeout),
		HealthyThresholdCount:      awssdk.Int32(hs.healthy),
		UnhealthyThresholdCount:    awssdk.Int32(hs.unhealthy),
		Matcher:                    &elbtypes.Matcher{HttpCode: awssdk.String("200-299")},
		Tags:                       elbTags,
	})
	if apiCode(err) == "DuplicateTargetGroupName" {
		return contract.Fleet{}, &provider.Error{Code: provider.InvalidArgument, Err: err, Msg: fmt.Sprintf(
			"provision: token %q already made target group %s with other settings (a different health check?); a retry must repeat the same request",
			req.Token, id)}
	}
	if err != nil {
		return contract.Fleet{}, wrap(err, "provision fleet %s: create target group", id)
	}
	if len(tgOut.TargetGroups) == 0 || tgOut.TargetGroups[0].TargetGroupArn == nil {
		return contract.Fleet{}, fmt.Errorf("provision fleet %s: CreateTargetGroup returned no target group", id)
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
		return contract.Fleet{}, wrap(err, "provision fleet %s: set the deregistration delay of target group %s", id, tgARN)
	}

	// 3. The Auto Scaling group: launches the instances and registers them in the target group.
	if err := d.createGroup(ctx, id, tgARN, tags, req, made); err != nil {
		return contract.Fleet{}, err
	}
	ok, err := d.waitUntil(ctx, min(visibilityTimeout, untilDeadline(ctx)), func() (bool, string, error) {
		var err error
		g, err = d.group(ctx, id)
		return g != nil, "waiting for AWS to show Auto Scaling group " + id, err
	})
	if err != nil {
		return contract.Fleet{}, err
	}
	if !ok {
		return contract.Fleet{}, fmt.Errorf("provision: Auto Scaling group %s was created but AWS does not show it yet: retry", id)
	}
	return d.adopt(ctx, g, key, &req)
}

// untilDeadline is the time left before ctx's deadline, less a margin to
// answer in; an hour without a deadline.
func untilDeadline(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl)-5*time.Second, 0)
	}
	return time.Hour
}

// adopt returns the fleet of group g, made by this request or an earlier
// attempt of it: refused when another request made it, put in the listener at
// weight 0 if it is not there yet.
func (d *Driver) adopt(ctx context.Context, g *asgtypes.AutoScalingGroup, key contract.RouteKey, req *contract.ProvisionRequest) (contract.Fleet, error) {
	id := awssdk.ToString(g.AutoScalingGroupName)
	if deleting(g) {
		return contract.Fleet{}, fmt.Errorf(
			"provision: fleet %s of token %q is still being deleted (it was terminated); once AWS deleted it a retry makes it again", id, req.Token)
	}
	if f := groupFleet(g); f.Token != req.Token || f.Service != req.Service || f.Environment != req.Environment || f.ImageID != req.ImageID {
		return contract.Fleet{}, provider.Errorf(provider.InvalidArgument,
			"provision: token %q already made fleet %s (%s/%s, image %s); a retry must repeat the same request",
			req.Token, id, f.Environment, f.Service, f.ImageID)
	}
	for _, tga := range g.TargetGroupARNs {
		if err := d.attach(ctx, key, tga); err != nil {
			return contract.Fleet{}, err
		}
	}
	return d.describeGroup(ctx, g)
}

// launchTemplate creates the fleet's launch template, or finds the one an
// earlier attempt of the same request made, and returns when it was made.
func (d *Driver) launchTemplate(ctx context.Context, id, ami string, tags [][2]string, req contract.ProvisionRequest) (time.Time, error) {
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
	out, err := d.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: awssdk.String(id),
		ClientToken:        awssdk.String(id),
		VersionDescription: awssdk.String(fmt.Sprintf("imago fleet %s of %s/%s, image %s", id, req.Environment, req.Service, req.ImageID)),
		LaunchTemplateData: data,
		TagSpecifications:  []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: ec2Tags}},
	})
	switch apiCode(err) {
	case "":
		if out.LaunchTemplate != nil && out.LaunchTemplate.CreateTime != nil {
			return *out.LaunchTemplate.CreateTime, nil
		}
		return time.Now(), nil
	case "IdempotentParameterMismatch":
		return time.Time{}, &provider.Error{Code: provider.InvalidArgument, Err: err, Msg: fmt.Sprintf(
			"provision: token %q already made fleet %s with a different request (launch template %s); a retry must repeat the same request",
			req.Token, id, id)}
	case "InvalidLaunchTemplateName.AlreadyExistsException":
		// EC2 forgot the client token (a late retry): the template's tags say who made it.
		lt, lerr := d.findLaunchTemplate(ctx, id)
		if lerr != nil {
			return time.Time{}, lerr
		}
		if lt != nil {
			t := ec2TagMap(lt.Tags)
			if t[TagToken] == req.Token && t[TagImage] == req.ImageID && t[TagService] == req.Service && t[TagEnvironment] == req.Environment {
				return awssdk.ToTime(lt.CreateTime), nil
			}
			if t[TagToken] == req.Token {
				return time.Time{}, &provider.Error{Code: provider.InvalidArgument, Err: err, Msg: fmt.Sprintf(
					"provision: token %q already made launch template %s for %s/%s, image %s; a retry must repeat the same request",
					req.Token, id, t[TagEnvironment], t[TagService], t[TagImage])}
			}
		}
		return time.Time{}, &provider.Error{Code: provider.FailedPrecondition, Err: err, Msg: fmt.Sprintf(
			"provision: launch template %s exists but imago did not make it for token %q: delete it, or provision with another token", id, req.Token)}
	default:
		return time.Time{}, wrap(err, "provision fleet %s: create launch template", id)
	}
}

// createGroup creates the fleet's Auto Scaling group. A launch whose instance
// profile IAM has not propagated yet ("Invalid IAM Instance Profile", IAM is
// eventually consistent) is retried until IAMPropagationTimeout after the
// launch template was made (Terraform retries the same error); while the
// activity's deadline cuts the wait short, the error is retryable.
func (d *Driver) createGroup(ctx context.Context, id, tgARN string, tags [][2]string, req contract.ProvisionRequest, made time.Time) error {
	var asgTags []asgtypes.Tag
	for _, t := range append([][2]string{{"Name", id}}, tags...) {
		asgTags = append(asgTags, asgtypes.Tag{Key: awssdk.String(t[0]), Value: awssdk.String(t[1]), PropagateAtLaunch: awssdk.Bool(true)})
	}
	size := awssdk.Int32(int32(req.Size))
	in := &autoscaling.CreateAutoScalingGroupInput{
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
	}
	giveUp := made.Add(d.cfg.IAMPropagationTimeout)
	var err error
	propagated, werr := d.waitUntil(ctx, min(time.Until(giveUp), untilDeadline(ctx)), func() (bool, string, error) {
		_, err = d.asg.CreateAutoScalingGroup(ctx, in)
		if apiCode(err) == "ValidationError" && strings.Contains(err.Error(), "Invalid IAM Instance Profile") {
			return false, fmt.Sprintf("waiting for IAM to propagate instance profile %s (fleet %s)", d.cfg.IAMInstanceProfile, id), nil
		}
		return true, "", nil
	})
	switch {
	case werr != nil:
		return werr
	case !propagated && time.Now().Before(giveUp):
		return fmt.Errorf("provision fleet %s: IAM has not propagated instance profile %s yet: retry: %w", id, d.cfg.IAMInstanceProfile, err)
	case !propagated:
		return wrap(err, "provision fleet %s: instance profile %s is still invalid %s after the launch template was made: check it exists",
			id, d.cfg.IAMInstanceProfile, d.cfg.IAMPropagationTimeout)
	case err != nil && apiCode(err) != "AlreadyExists": // AlreadyExists: a concurrent retry made it
		return wrap(err, "provision fleet %s: create Auto Scaling group", id)
	}
	return nil
}

// discard removes what a provision that failed for good made. The fleet never
// took traffic (it is at most in the listener at weight 0), so there is
// nothing to drain: the group is deleted at once.
func (d *Driver) discard(ctx context.Context, id string, key contract.RouteKey) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	tg, err := d.targetGroup(ctx, id)
	if err != nil {
		return err
	}
	if tg != nil {
		if err := d.unroute(ctx, id, key, tg); err != nil {
			return err
		}
	}
	_, err = d.asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: awssdk.String(id), ForceDelete: awssdk.Bool(true)})
	if err != nil && !strings.Contains(strings.ToLower(err.Error()), "not found") {
		return wrap(err, "discard fleet %s: delete Auto Scaling group", id)
	}
	return d.deleteRest(ctx, id, tg)
}

// Describe returns the fleet with the live state of its instances.
func (d *Driver) Describe(ctx context.Context, fleetID string) (contract.Fleet, error) {
	if !fleetIDPattern.MatchString(fleetID) {
		return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %q not found: aws fleet IDs look like imago-<12 hex digits>", fleetID)
	}
	g, err := d.group(ctx, fleetID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if g != nil && !deleting(g) {
		return d.describeGroup(ctx, g)
	}
	// What a terminate or a provision did not finish: a target group or a
	// launch template without a group. Terminate must find it to finish the job.
	tg, err := d.targetGroup(ctx, fleetID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if tg != nil {
		tags, err := d.targetGroupTags(ctx, *tg.TargetGroupArn)
		if err != nil {
			return contract.Fleet{}, err
		}
		return fleetFromTags(fleetID, tags), nil
	}
	lt, err := d.findLaunchTemplate(ctx, fleetID)
	if err != nil {
		return contract.Fleet{}, err
	}
	if lt != nil {
		f := fleetFromTags(fleetID, ec2TagMap(lt.Tags))
		f.Created = awssdk.ToTime(lt.CreateTime).UTC()
		return f, nil
	}
	return contract.Fleet{}, provider.Errorf(provider.NotFound, "fleet %s not found in %s", fleetID, d.cfg.Region)
}

// describeGroup returns the fleet of group g with its instances' live state.
func (d *Driver) describeGroup(ctx context.Context, g *asgtypes.AutoScalingGroup) (contract.Fleet, error) {
	f := groupFleet(g)
	ec2s, err := d.instances(ctx, instanceIDs(g))
	if err != nil {
		return contract.Fleet{}, err
	}
	var health map[string]elbtypes.TargetHealthStateEnum
	if len(g.TargetGroupARNs) > 0 && len(g.Instances) > 0 {
		ths, err := d.targetHealth(ctx, g.TargetGroupARNs[0])
		if err != nil {
			return contract.Fleet{}, err
		}
		health = map[string]elbtypes.TargetHealthStateEnum{}
		for _, th := range ths {
			if th.Target != nil && th.Target.Id != nil {
				health[*th.Target.Id], _ = targetState(th)
			}
		}
	}
	_, balanced := d.listener(contract.RouteKey{Service: f.Service, Environment: f.Environment})
	f.Instances = d.fleetInstances(g, ec2s, health, balanced, true)
	return f, nil
}

// targetState returns the state of a target and its reason code.
func targetState(th elbtypes.TargetHealthDescription) (elbtypes.TargetHealthStateEnum, string) {
	if th.TargetHealth == nil {
		return "", ""
	}
	return th.TargetHealth.State, string(th.TargetHealth.Reason)
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

// findLaunchTemplate returns the launch template named name, nil when there is none.
func (d *Driver) findLaunchTemplate(ctx context.Context, name string) (*ec2types.LaunchTemplate, error) {
	out, err := d.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	switch apiCode(err) {
	case "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound":
		return nil, nil
	case "":
	default:
		return nil, wrap(err, "describe launch template %s", name)
	}
	if len(out.LaunchTemplates) == 0 {
		return nil, nil
	}
	return &out.LaunchTemplates[0], nil
}

func ec2TagMap(tags []ec2types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	return out
}

func (d *Driver) targetGroupTags(ctx context.Context, arn string) (map[string]string, error) {
	all, err := d.tagsOf(ctx, []string{arn})
	return all[arn], err
}

// tagsOf returns the tags of target groups by ARN (20 per DescribeTags call, its limit).
func (d *Driver) tagsOf(ctx context.Context, arns []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for len(arns) > 0 {
		n := min(len(arns), 20)
		res, err := d.elb.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: arns[:n]})
		if err != nil {
			return nil, wrap(err, "describe tags of target groups %v", arns[:n])
		}
		arns = arns[n:]
		for _, td := range res.TagDescriptions {
			tags := map[string]string{}
			for _, t := range td.Tags {
				tags[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
			}
			out[awssdk.ToString(td.ResourceArn)] = tags
		}
	}
	return out, nil
}

func (d *Driver) targetHealth(ctx context.Context, tgARN string) ([]elbtypes.TargetHealthDescription, error) {
	out, err := d.elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: awssdk.String(tgARN)})
	if err != nil {
		return nil, wrap(err, "describe target health of %s", tgARN)
	}
	return out.TargetHealthDescriptions, nil
}

func groupFleet(g *asgtypes.AutoScalingGroup) contract.Fleet {
	f := fleetFromTags(awssdk.ToString(g.AutoScalingGroupName), groupTags(g))
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

// instances returns the EC2 instances of ids by ID. It asks with the
// instance-id filter, not by ID: EC2 shows a just-launched instance a moment
// later (eventual consistency), and by ID that fails the whole call with
// InvalidInstanceID.NotFound, while a filter leaves it out (it then shows as
// stopped, without an address, until EC2 shows it).
func (d *Driver) instances(ctx context.Context, ids []string) (map[string]ec2types.Instance, error) {
	out := map[string]ec2types.Instance{}
	for len(ids) > 0 {
		n := min(len(ids), 200) // values per filter
		chunk := ids[:n]
		ids = ids[n:]
		var next *string
		for {
			res, err := d.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
				Filters: []ec2types.Filter{{Name: awssdk.String("instance-id"), Values: chunk}}, NextToken: next,
			})
			if err != nil {
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
// group has it InService, EC2 has it running and (withHealth) the load balancer
// has it healthy in the fleet's target group: a target in any other state
// (initial, unhealthy, unused, draining, unavailable) gets no traffic. A fleet
// whose service has no load balancer (balanced false) counts the group's own
// health status instead. Capacity the group has not launched yet appears as
// stopped placeholders "<fleet>-launching-<n>".
func (d *Driver) fleetInstances(g *asgtypes.AutoScalingGroup, ec2s map[string]ec2types.Instance,
	health map[string]elbtypes.TargetHealthStateEnum, balanced, withHealth bool) []contract.Instance {
	out := []contract.Instance{}
	live := 0
	members := append([]asgtypes.Instance(nil), g.Instances...)
	sort.Slice(members, func(i, j int) bool {
		return awssdk.ToString(members[i].InstanceId) < awssdk.ToString(members[j].InstanceId)
	})
	for _, m := range members {
		id := awssdk.ToString(m.InstanceId)
		in := contract.Instance{ID: id, State: contract.InstanceStopped}
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
			if balanced {
				up = health[id] == elbtypes.TargetHealthStateEnumHealthy
			} else {
				up = awssdk.ToString(m.HealthStatus) == "Healthy"
			}
		}
		if up {
			in.State = contract.InstanceRunning
		}
		out = append(out, in)
	}
	for n := live + 1; n <= int(awssdk.ToInt32(g.DesiredCapacity)); n++ {
		out = append(out, contract.Instance{ID: fmt.Sprintf("%s-launching-%d", awssdk.ToString(g.AutoScalingGroupName), n), State: contract.InstanceStopped})
	}
	return out
}

// ListFleets returns the fleets matching f, oldest first: the Auto Scaling
// groups tagged by imago, and what a provision that stopped before its group
// (or a terminate that stopped after deleting it) left, found by the same
// tags on launch templates and target groups; such a fleet has no instances,
// and its creation time is its launch template's (none without one).
// Instance states come from the groups and EC2 only (no target health):
// Describe a fleet for its health.
func (d *Driver) ListFleets(ctx context.Context, f provider.Filter) ([]contract.Fleet, error) {
	groupFilters := []asgtypes.Filter{{Name: awssdk.String("tag-key"), Values: []string{TagToken}}}
	ltFilters := []ec2types.Filter{{Name: awssdk.String("tag-key"), Values: []string{TagToken}}}
	for _, kv := range [][2]string{{TagService, f.Service}, {TagEnvironment, f.Environment}} {
		if kv[1] != "" {
			groupFilters = append(groupFilters, asgtypes.Filter{Name: awssdk.String("tag:" + kv[0]), Values: []string{kv[1]}})
			ltFilters = append(ltFilters, ec2types.Filter{Name: awssdk.String("tag:" + kv[0]), Values: []string{kv[1]}})
		}
	}
	var groups []*asgtypes.AutoScalingGroup
	var next *string
	for {
		out, err := d.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{
			Filters: groupFilters, NextToken: next, MaxRecords: awssdk.Int32(100),
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
	byID := map[string]contract.Fleet{}
	for _, g := range groups {
		fl := groupFleet(g)
		fl.Instances = d.fleetInstances(g, ec2s, nil, false, false)
		byID[fl.ID] = fl
	}

	// Launch templates tagged by imago without a live group.
	created := map[string]time.Time{}
	for next = nil; ; {
		out, err := d.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: ltFilters, NextToken: next, MaxResults: awssdk.Int32(200)})
		if err != nil {
			return nil, wrap(err, "list fleets: describe launch templates")
		}
		for _, lt := range out.LaunchTemplates {
			id := awssdk.ToString(lt.LaunchTemplateName)
			created[id] = awssdk.ToTime(lt.CreateTime).UTC()
			if _, ok := byID[id]; !ok && fleetIDPattern.MatchString(id) {
				fl := fleetFromTags(id, ec2TagMap(lt.Tags))
				fl.Created = created[id]
				byID[id] = fl
			}
		}
		if next = out.NextToken; next == nil || *next == "" {
			break
		}
	}

	// Target groups named like fleets, without a group or a launch template.
	var orphans []string
	names := map[string]string{} // target group ARN → name (the fleet ID)
	for marker := (*string)(nil); ; {
		out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Marker: marker, PageSize: awssdk.Int32(400)})
		if err != nil {
			return nil, wrap(err, "list fleets: describe target groups")
		}
		for _, tg := range out.TargetGroups {
			if name := awssdk.ToString(tg.TargetGroupName); fleetIDPattern.MatchString(name) {
				if _, ok := byID[name]; !ok {
					orphans = append(orphans, awssdk.ToString(tg.TargetGroupArn))
					names[awssdk.ToString(tg.TargetGroupArn)] = name
				}
			}
		}
		if marker = out.NextMarker; marker == nil || *marker == "" {
			break
		}
	}
	tags, err := d.tagsOf(ctx, orphans)
	if err != nil {
		return nil, err
	}
	for _, arn := range orphans {
		t := tags[arn]
		if t[TagToken] == "" || f.Service != "" && t[TagService] != f.Service || f.Environment != "" && t[TagEnvironment] != f.Environment {
			continue
		}
		fl := fleetFromTags(names[arn], t)
		fl.Created = created[fl.ID]
		byID[fl.ID] = fl
	}

	fleets := make([]contract.Fleet, 0, len(byID))
	for _, fl := range byID {
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
// listener (refusing, FailedPrecondition, while the listener sends it traffic)
// and waits until the load balancer lets go of it, detaches it from the Auto
// Scaling group, waits until the group's instances are gone from it (the
// detach is asynchronous; then they drain for the deregistration delay), then
// deletes the group (ForceDelete), the launch template and the target group
// (retrying ResourceInUse for a while, as AWS answers right after a listener
// change). It reports progress while it waits. Each step is idempotent, so a
// retry finishes what an interrupted call started; a fleet that is gone
// already is not an error.
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
		key := contract.RouteKey{Service: tags[TagService], Environment: tags[TagEnvironment]}
		if err := d.unroute(ctx, fleetID, key, tg); err != nil {
			return err
		}
	}
	if g != nil && !deleting(g) {
		if tg != nil && slices.Contains(g.TargetGroupARNs, *tg.TargetGroupArn) {
			_, err := d.asg.DetachLoadBalancerTargetGroups(ctx, &autoscaling.DetachLoadBalancerTargetGroupsInput{
				AutoScalingGroupName: awssdk.String(fleetID), TargetGroupARNs: []string{*tg.TargetGroupArn},
			})
			if err != nil {
				return wrap(err, "terminate fleet %s: detach target group", fleetID)
			}
		}
		if tg != nil {
			if err := d.waitDeregistered(ctx, fleetID, *tg.TargetGroupArn); err != nil {
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
	return d.deleteRest(ctx, fleetID, tg)
}

// deleteRest deletes the fleet's launch template and target group.
// DeleteTargetGroup answers ResourceInUse for a while after a listener let go
// of the target group: it is retried for releaseTimeout, as Terraform does.
func (d *Driver) deleteRest(ctx context.Context, id string, tg *elbtypes.TargetGroup) error {
	_, err := d.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: awssdk.String(id)})
	if err != nil && apiCode(err) != "InvalidLaunchTemplateName.NotFoundException" && apiCode(err) != "InvalidLaunchTemplateId.NotFound" {
		return wrap(err, "delete fleet %s: delete launch template", id)
	}
	if tg == nil {
		return nil
	}
	ok, werr := d.waitUntil(ctx, releaseTimeout, func() (bool, string, error) {
		_, err = d.elb.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn})
		switch apiCode(err) {
		case "ResourceInUse":
			return false, fmt.Sprintf("waiting for the load balancer to let go of target group %s of fleet %s", *tg.TargetGroupArn, id), nil
		case "", "TargetGroupNotFound":
			return true, "", nil
		}
		return false, "", wrap(err, "delete fleet %s: delete target group %s", id, *tg.TargetGroupArn)
	})
	if werr != nil {
		return werr
	}
	if !ok {
		return wrap(err, "delete fleet %s: target group %s is still in use %s after it left the listener imago manages: another rule or listener forwards to it; remove it there",
			id, *tg.TargetGroupArn, releaseTimeout)
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

// unroute takes the target group tg of fleet id out of the listener of key
// when it is there with weight 0, refuses while it has weight, and waits until
// no load balancer lists it any more: after a listener change the target group
// still names the load balancer (LoadBalancerArns) for a while. One that is
// still listed after releaseTimeout is used by a rule or listener imago does
// not manage, and is refused; so is one listed by another load balancer.
func (d *Driver) unroute(ctx context.Context, id string, key contract.RouteKey, tg *elbtypes.TargetGroup) error {
	lbs := tg.LoadBalancerArns
	ours := ""
	if arn, ok := d.listener(key); ok {
		l, err := d.describeListener(ctx, key, arn)
		if err != nil {
			return err
		}
		ours = awssdk.ToString(l.LoadBalancerArn)
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
			if err := d.modifyListener(ctx, key, arn, l.DefaultActions, keep, nil); err != nil {
				return err
			}
			lbs = []string{ours} // until AWS says otherwise
		}
	}
	if len(lbs) == 0 {
		return nil
	}
	refuse := func(lbs []string) error {
		return provider.Errorf(provider.FailedPrecondition,
			"refusing to terminate fleet %s: its target group is used by load balancer %v outside the %s listener imago manages; remove it there first",
			id, lbs, key)
	}
	for _, lb := range lbs {
		if lb != ours {
			return refuse(lbs)
		}
	}
	released, err := d.waitUntil(ctx, releaseTimeout, func() (bool, string, error) {
		out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{*tg.TargetGroupArn}})
		if apiCode(err) == "TargetGroupNotFound" {
			return true, "", nil
		}
		if err != nil {
			return false, "", wrap(err, "terminate fleet %s: describe target group %s", id, *tg.TargetGroupArn)
		}
		lbs = nil
		for _, t := range out.TargetGroups {
			lbs = append(lbs, t.LoadBalancerArns...)
		}
		return len(lbs) == 0, fmt.Sprintf("waiting for load balancer %v to let go of target group %s of fleet %s", lbs, *tg.TargetGroupArn, id), nil
	})
	if err != nil {
		return err
	}
	if !released {
		return refuse(lbs)
	}
	return nil
}

// waitDeregistered polls the target group until none of its targets is left
// (the group deregisters its instances some time after the detach; then each
// drains for the deregistration delay), reporting progress each round; at
// most the delay and releaseTimeout more.
func (d *Driver) waitDeregistered(ctx context.Context, id, tgARN string) error {
	limit := d.cfg.DeregistrationDelay + releaseTimeout
	left := 0
	done, err := d.waitUntil(ctx, limit, func() (bool, string, error) {
		ths, err := d.targetHealth(ctx, tgARN)
		if err != nil {
			return false, "", err
		}
		left = len(ths)
		draining := 0
		for _, th := range ths {
			if st, _ := targetState(th); st == elbtypes.TargetHealthStateEnumDraining {
				draining++
			}
		}
		return left == 0, fmt.Sprintf("terminate fleet %s: waiting for the load balancer to deregister %d instances (%d draining, deregistration delay %s)",
			id, left, draining, d.cfg.DeregistrationDelay), nil
	})
	if err != nil {
		return err
	}
	if !done {
		return fmt.Errorf("terminate fleet %s: %d targets of %s still registered after the deregistration delay (%s) and %s more",
			id, left, tgARN, d.cfg.DeregistrationDelay, releaseTimeout)
	}
	return nil
}
