package awsfake_test

// The fake's own tests: what it answers is what AWS documents, as the SDK's
// clients (generated from the services' published API models) read it. For
// every call the aws driver makes, the response is decoded by the real
// aws-sdk-go-v2 client and checked three ways:
//
//   - every value in the XML the fake sent reaches the SDK's output type (an
//     element the model does not name, or names elsewhere, is dropped by the
//     SDK's deserializer without an error: the value would be missing);
//   - enum values are members of the SDK's enum (TargetHealthStateEnum,
//     LifecycleState, InstanceStateName, ...) and identifiers and ARNs have
//     the documented forms;
//   - errors carry the documented codes, which the SDK turns into its typed
//     errors (TargetGroupNotFoundException, AlreadyExistsFault, ...), and
//     pages are what the SDK's paginators follow.
//
// Requests are the other half: the fake reads the parameters the SDK's
// serializers write (LaunchTemplateData.ImageId,
// DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight, ...),
// which the round trips below show by reading each setting back.

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/provider/aws/awsfake"
)

// recorder is the SDK clients' HTTP client: it keeps each response body by
// action, so a test can compare what the fake sent with what the SDK decoded.
type recorder struct {
	mu     sync.Mutex
	bodies map[string][]byte
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	m := regexp.MustCompile(`(?:^|&)Action=([A-Za-z]+)`).FindSubmatch(body)
	if m != nil {
		r.mu.Lock()
		r.bodies[string(m[1])] = data
		r.mu.Unlock()
	}
	return resp, nil
}

func (r *recorder) body(action string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[action]
}

type clients struct {
	fake *awsfake.FakeAWS
	rec  *recorder
	ec2  *ec2.Client
	asg  *autoscaling.Client
	elb  *elbv2.Client
}

// newClients returns the SDK's clients on a new fake, with the SDK's standard
// retryer (maxAttempts 0: its default of 3).
func newClients(t *testing.T, maxAttempts int) *clients {
	fake := awsfake.New("eu-west-1")
	t.Cleanup(fake.Close)
	fake.SetTimeUnit(5 * time.Millisecond)
	rec := &recorder{bodies: map[string][]byte{}}
	cfg := awssdk.Config{
		Region: "eu-west-1", HTTPClient: rec, RetryMaxAttempts: maxAttempts,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKEFAKEFAKE", "fake-secret", ""),
	}
	base := awssdk.String(fake.URL())
	return &clients{
		fake: fake, rec: rec,
		ec2: ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = base }),
		asg: autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = base }),
		elb: elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = base }),
	}
}

// leaves returns the text of every leaf element of an XML document, with its
// path, leaving out request IDs (the SDK keeps them in its metadata).
func leaves(t *testing.T, doc []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var path []string
	var text string
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err, "the fake's answer is not XML: %s", doc)
		switch tok := tok.(type) {
		case xml.StartElement:
			path = append(path, tok.Name.Local)
			text = ""
		case xml.CharData:
			text += string(tok)
		case xml.EndElement:
			name := path[len(path)-1]
			if s := strings.TrimSpace(text); s != "" && name != "requestId" && name != "RequestId" {
				n++
				out[fmt.Sprintf("%s#%d", strings.Join(path, "/"), n)] = s
			}
			path, text = path[:len(path)-1], ""
		}
	}
}

// values returns every scalar in v (strings, numbers, booleans, times, in the
// forms the XML protocols write them), walking pointers, slices, maps and structs.
func values(v reflect.Value, into map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			values(v.Elem(), into)
		}
	case reflect.Struct:
		if tm, ok := v.Interface().(time.Time); ok {
			into[tm.UTC().Format("2006-01-02T15:04:05.000Z")] = true
			into[tm.UTC().Format(time.RFC3339)] = true
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				values(v.Field(i), into)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			values(v.Index(i), into)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			values(k, into)
			values(v.MapIndex(k), into)
		}
	case reflect.String:
		into[v.String()] = true
	case reflect.Bool:
		into[strconv.FormatBool(v.Bool())] = true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		into[strconv.FormatInt(v.Int(), 10)] = true
	case reflect.Float32, reflect.Float64:
		into[strconv.FormatFloat(v.Float(), 'f', -1, 64)] = true
	}
}

// decodedWhole checks that every value the fake answered action with is in
// out, the SDK's decoded output.
func (c *clients) decodedWhole(t *testing.T, action string, out any) {
	t.Helper()
	body := c.rec.body(action)
	require.NotEmpty(t, body, "no answer to %s recorded", action)
	got := map[string]bool{}
	values(reflect.ValueOf(out), got)
	for path, text := range leaves(t, body) {
		assert.True(t, got[text], "%s: %s = %q is not in the SDK's %T: the SDK's model has no such element there, so a client never sees it", action, path, text, out)
	}
}

func in[T ~string](t *testing.T, what string, v T, documented []T) {
	t.Helper()
	assert.True(t, slices.Contains(documented, v), "%s %q is not one of the SDK's documented values %v", what, v, documented)
}

var (
	amiRE      = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	instanceRE = regexp.MustCompile(`^i-[0-9a-f]{17}$`)
	ltRE       = regexp.MustCompile(`^lt-[0-9a-f]{17}$`)
	tgARN      = regexp.MustCompile(`^arn:aws:elasticloadbalancing:eu-west-1:[0-9]{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$`)
	lbARN      = regexp.MustCompile(`^arn:aws:elasticloadbalancing:eu-west-1:[0-9]{12}:loadbalancer/app/[A-Za-z0-9-]+/[0-9a-f]{16}$`)
	listARN    = regexp.MustCompile(`^arn:aws:elasticloadbalancing:eu-west-1:[0-9]{12}:listener/app/[A-Za-z0-9-]+/[0-9a-f]{16}/[0-9a-f]{16}$`)
	asgARN     = regexp.MustCompile(`^arn:aws:autoscaling:eu-west-1:[0-9]{12}:autoScalingGroup:[0-9a-f-]{36}:autoScalingGroupName/.+$`)
)

// poll retries cond until it holds, for at most 10 s (the fake's time runs
// 200 times faster than AWS's).
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A fleet's life as the aws driver lives it, call by call, through the SDK:
// every answer decodes whole into the SDK's types, with documented values,
// and every setting a request carries reads back.
func TestTheFakeAnswersInTheShapesTheSDKReads(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, 0)
	ami, subnet, listener := c.fake.AddImage(), c.fake.AddSubnet("eu-west-1a"), c.fake.AddListener()
	const name = "imago-0123456789ab"
	tags := []elbtypes.Tag{{Key: awssdk.String("imago:service"), Value: awssdk.String("web")}}

	imgs, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeImages", imgs)
	require.Len(t, imgs.Images, 1)
	assert.Regexp(t, amiRE, *imgs.Images[0].ImageId)
	in(t, "image state", imgs.Images[0].State, ec2types.ImageState("").Values())

	subs, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnet}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeSubnets", subs)
	require.Len(t, subs.Subnets, 1)
	assert.Equal(t, "eu-west-1a", *subs.Subnets[0].AvailabilityZone)

	lt, err := c.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: awssdk.String(name), ClientToken: awssdk.String("token-1"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: awssdk.String(ami), InstanceType: ec2types.InstanceTypeT3Small},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate,
			Tags: []ec2types.Tag{{Key: awssdk.String("imago:service"), Value: awssdk.String("web")}}}},
	})
	require.NoError(t, err)
	c.decodedWhole(t, "CreateLaunchTemplate", lt)
	assert.Regexp(t, ltRE, *lt.LaunchTemplate.LaunchTemplateId)
	assert.Equal(t, int64(1), *lt.LaunchTemplate.LatestVersionNumber)
	lts, err := c.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeLaunchTemplates", lts)
	require.Len(t, lts.LaunchTemplates, 1)
	assert.Equal(t, map[string]string{"imago:service": "web"}, ec2Tags(lts.LaunchTemplates[0].Tags), "the tag specification reads back")

	tg, err := c.elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{
		Name: awssdk.String(name), Protocol: elbtypes.ProtocolEnumHttp, Port: awssdk.Int32(8080), VpcId: awssdk.String("vpc-0abc12345678def01"),
		TargetType: elbtypes.TargetTypeEnumInstance, HealthCheckPath: awssdk.String("/healthz"), HealthCheckIntervalSeconds: awssdk.Int32(7),
		HealthCheckTimeoutSeconds: awssdk.Int32(4), HealthyThresholdCount: awssdk.Int32(3), UnhealthyThresholdCount: awssdk.Int32(4), Tags: tags,
	})
	require.NoError(t, err)
	c.decodedWhole(t, "CreateTargetGroup", tg)
	require.Len(t, tg.TargetGroups, 1)
	g := tg.TargetGroups[0]
	arn := *g.TargetGroupArn
	assert.Regexp(t, tgARN, arn)
	in(t, "protocol", g.Protocol, elbtypes.ProtocolEnum("").Values())
	in(t, "target type", g.TargetType, elbtypes.TargetTypeEnum("").Values())
	assert.Equal(t, []any{"/healthz", int32(7), int32(4), int32(3), int32(4), int32(8080)},
		[]any{*g.HealthCheckPath, *g.HealthCheckIntervalSeconds, *g.HealthCheckTimeoutSeconds, *g.HealthyThresholdCount, *g.UnhealthyThresholdCount, *g.Port},
		"the health check the request set reads back")

	attrs, err := c.elb.ModifyTargetGroupAttributes(ctx, &elbv2.ModifyTargetGroupAttributesInput{TargetGroupArn: &arn,
		Attributes: []elbtypes.TargetGroupAttribute{{Key: awssdk.String("deregistration_delay.timeout_seconds"), Value: awssdk.String("45")}}})
	require.NoError(t, err)
	c.decodedWhole(t, "ModifyTargetGroupAttributes", attrs)
	delay := ""
	for _, a := range attrs.Attributes {
		if *a.Key == "deregistration_delay.timeout_seconds" {
			delay = *a.Value
		}
	}
	assert.Equal(t, "45", delay)

	made, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: awssdk.String(name), LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateName: awssdk.String(name), Version: awssdk.String("1")},
		MinSize: awssdk.Int32(2), MaxSize: awssdk.Int32(2), DesiredCapacity: awssdk.Int32(2), VPCZoneIdentifier: awssdk.String(subnet),
		TargetGroupARNs: []string{arn}, HealthCheckType: awssdk.String("ELB"), HealthCheckGracePeriod: awssdk.Int32(300),
		Tags: []asgtypes.Tag{{Key: awssdk.String("imago:service"), Value: awssdk.String("web"), PropagateAtLaunch: awssdk.Bool(true)}},
	})
	require.NoError(t, err)
	c.decodedWhole(t, "CreateAutoScalingGroup", made)

	// A new group is not described at once (eventual consistency).
	var grp asgtypes.AutoScalingGroup
	poll(t, "the new group described", func() bool {
		out, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		require.NoError(t, err)
		c.decodedWhole(t, "DescribeAutoScalingGroups", out)
		if len(out.AutoScalingGroups) == 1 {
			grp = out.AutoScalingGroups[0]
		}
		return len(out.AutoScalingGroups) == 1
	})
	assert.Regexp(t, asgARN, *grp.AutoScalingGroupARN)
	assert.Equal(t, []string{arn}, grp.TargetGroupARNs)
	assert.Equal(t, "ELB", *grp.HealthCheckType)
	assert.Equal(t, name, *grp.LaunchTemplate.LaunchTemplateName)
	assert.Equal(t, subnet, *grp.VPCZoneIdentifier)

	listeners, err := c.elb.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{listener}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeListeners", listeners)
	require.Len(t, listeners.Listeners, 1)
	l := listeners.Listeners[0]
	assert.Regexp(t, listARN, *l.ListenerArn)
	assert.Regexp(t, lbARN, *l.LoadBalancerArn)
	for _, a := range l.DefaultActions {
		in(t, "action type", a.Type, elbtypes.ActionTypeEnum("").Values())
	}
	lbs, err := c.elb.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{*l.LoadBalancerArn}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeLoadBalancers", lbs)
	require.Len(t, lbs.LoadBalancers, 1)
	assert.Len(t, lbs.LoadBalancers[0].AvailabilityZones, 2)

	// The weighted forward, weight 0 included, reads back as it was set.
	forward := []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, Order: awssdk.Int32(1), ForwardConfig: &elbtypes.ForwardActionConfig{
		TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: &arn, Weight: awssdk.Int32(0)}}}}}
	mod, err := c.elb.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: &listener, DefaultActions: forward})
	require.NoError(t, err)
	c.decodedWhole(t, "ModifyListener", mod)
	listeners, err = c.elb.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{listener}})
	require.NoError(t, err)
	require.Len(t, listeners.Listeners[0].DefaultActions, 1)
	fc := listeners.Listeners[0].DefaultActions[0].ForwardConfig
	require.NotNil(t, fc)
	require.Len(t, fc.TargetGroups, 1)
	assert.Equal(t, arn, *fc.TargetGroups[0].TargetGroupArn)
	assert.Equal(t, int32(0), *fc.TargetGroups[0].Weight)

	require.NoError(t, c.fake.Boot(name))
	var ids []string
	poll(t, "the group's instances listed", func() bool {
		out, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		require.NoError(t, err)
		ids = nil
		for _, i := range out.AutoScalingGroups[0].Instances {
			in(t, "lifecycle state", i.LifecycleState, asgtypes.LifecycleState("").Values())
			ids = append(ids, *i.InstanceId)
		}
		c.decodedWhole(t, "DescribeAutoScalingGroups", out)
		return len(ids) == 2
	})
	var instances []ec2types.Instance
	poll(t, "the instances described", func() bool {
		out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			var api smithy.APIError
			require.ErrorAs(t, err, &api)
			require.Equal(t, "InvalidInstanceID.NotFound", api.ErrorCode(), "a new instance is not described at once: the documented error")
			return false
		}
		c.decodedWhole(t, "DescribeInstances", out)
		instances = nil
		for _, r := range out.Reservations {
			instances = append(instances, r.Instances...)
		}
		return len(instances) == 2
	})
	for _, i := range instances {
		assert.Regexp(t, instanceRE, *i.InstanceId)
		in(t, "instance state", i.State.Name, ec2types.InstanceStateName("").Values())
		assert.Regexp(t, `^10\.0\.\d+\.\d+$`, *i.PrivateIpAddress)
		assert.Equal(t, ami, *i.ImageId)
		assert.Equal(t, ec2types.InstanceTypeT3Small, i.InstanceType)
	}
	poll(t, "both targets healthy", func() bool {
		out, err := c.elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn})
		require.NoError(t, err)
		c.decodedWhole(t, "DescribeTargetHealth", out)
		healthy := 0
		for _, d := range out.TargetHealthDescriptions {
			in(t, "target health state", d.TargetHealth.State, elbtypes.TargetHealthStateEnum("").Values())
			if d.TargetHealth.Reason != "" {
				in(t, "target health reason", d.TargetHealth.Reason, elbtypes.TargetHealthReasonEnum("").Values())
			}
			assert.Equal(t, int32(8080), *d.Target.Port)
			if d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				healthy++
			}
		}
		return healthy == 2
	})

	tgs, err := c.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{name}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeTargetGroups", tgs)
	assert.Equal(t, []string{*l.LoadBalancerArn}, tgs.TargetGroups[0].LoadBalancerArns, "a target group a listener forwards to lists its load balancer")
	tagged, err := c.elb.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{arn}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeTags", tagged)
	require.Len(t, tagged.TagDescriptions, 1)
	assert.Equal(t, tags, tagged.TagDescriptions[0].Tags)

	// Tear down as the driver does: out of the listener, detach, delete.
	fixed := []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, Order: awssdk.Int32(1),
		FixedResponseConfig: &elbtypes.FixedResponseActionConfig{StatusCode: awssdk.String("503"), ContentType: awssdk.String("text/plain")}}}
	_, err = c.elb.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: &listener, DefaultActions: fixed})
	require.NoError(t, err)
	detached, err := c.asg.DetachLoadBalancerTargetGroups(ctx, &autoscaling.DetachLoadBalancerTargetGroupsInput{AutoScalingGroupName: awssdk.String(name), TargetGroupARNs: []string{arn}})
	require.NoError(t, err)
	c.decodedWhole(t, "DetachLoadBalancerTargetGroups", detached)
	del, err := c.asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: awssdk.String(name), ForceDelete: awssdk.Bool(true)})
	require.NoError(t, err)
	c.decodedWhole(t, "DeleteAutoScalingGroup", del)
	dlt, err := c.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: awssdk.String(name)})
	require.NoError(t, err)
	c.decodedWhole(t, "DeleteLaunchTemplate", dlt)
	assert.Equal(t, name, *dlt.LaunchTemplate.LaunchTemplateName)
	// Just out of the listener, the target group is still in use for a while:
	// the documented ResourceInUse, as the SDK's typed error.
	poll(t, "the target group deleted", func() bool {
		out, err := c.elb.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: &arn})
		if err != nil {
			var inUse *elbtypes.ResourceInUseException
			require.ErrorAs(t, err, &inUse, "a target group still in use: %v", err)
			return false
		}
		c.decodedWhole(t, "DeleteTargetGroup", out)
		return true
	})
}

func ec2Tags(tags []ec2types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[*t.Key] = *t.Value
	}
	return out
}

// The fake's errors carry the codes AWS documents for each call, which the SDK
// turns into its typed errors (ELBv2, Auto Scaling) or reports as the API
// error code (EC2, whose model declares no error shapes); Throttling is one
// the SDK's standard retryer retries.
func TestTheFakesErrorsAreTheDocumentedOnes(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, 1) // no retries: each error as AWS answers it
	ami, subnet := c.fake.AddImage(), c.fake.AddSubnet("eu-west-1a")

	_, err := c.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{"no-such-group"}})
	var tgNotFound *elbtypes.TargetGroupNotFoundException
	assert.ErrorAs(t, err, &tgNotFound)
	_, err = c.elb.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{
		"arn:aws:elasticloadbalancing:eu-west-1:" + awsfake.Account + ":listener/app/nope/0123456789abcdef/0123456789abcdef"}})
	var lNotFound *elbtypes.ListenerNotFoundException
	assert.ErrorAs(t, err, &lNotFound)
	_, err = c.elb.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{
		"arn:aws:elasticloadbalancing:eu-west-1:" + awsfake.Account + ":loadbalancer/app/nope/0123456789abcdef"}})
	var lbNotFound *elbtypes.LoadBalancerNotFoundException
	assert.ErrorAs(t, err, &lbNotFound)

	create := &elbv2.CreateTargetGroupInput{Name: awssdk.String("dup"), Protocol: elbtypes.ProtocolEnumHttp, Port: awssdk.Int32(80), VpcId: awssdk.String("vpc-0abc12345678def01")}
	_, err = c.elb.CreateTargetGroup(ctx, create)
	require.NoError(t, err)
	again := *create
	again.Port = awssdk.Int32(81)
	_, err = c.elb.CreateTargetGroup(ctx, &again)
	var dup *elbtypes.DuplicateTargetGroupNameException
	assert.ErrorAs(t, err, &dup, "the same name with other settings")

	_, err = c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0000000000000000f"}})
	assertCode(t, err, "InvalidAMIID.NotFound")
	lt := &ec2.CreateLaunchTemplateInput{LaunchTemplateName: awssdk.String("imago-lt"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: awssdk.String(ami), InstanceType: ec2types.InstanceTypeT3Small}}
	first, err := c.ec2.CreateLaunchTemplate(ctx, lt)
	require.NoError(t, err)
	require.NotNil(t, lt.ClientToken, "the SDK fills in the idempotency token")
	retry, err := c.ec2.CreateLaunchTemplate(ctx, lt)
	require.NoError(t, err, "the same client token and parameters: an idempotent retry")
	assert.Equal(t, *first.LaunchTemplate.LaunchTemplateId, *retry.LaunchTemplate.LaunchTemplateId)
	other := *lt
	other.LaunchTemplateData = &ec2types.RequestLaunchTemplateData{ImageId: awssdk.String(ami), InstanceType: ec2types.InstanceTypeT3Large}
	_, err = c.ec2.CreateLaunchTemplate(ctx, &other)
	assertCode(t, err, "IdempotentParameterMismatch")
	fresh := *lt
	fresh.ClientToken = nil
	_, err = c.ec2.CreateLaunchTemplate(ctx, &fresh)
	assertCode(t, err, "InvalidLaunchTemplateName.AlreadyExistsException")
	_, err = c.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"nope"}})
	assertCode(t, err, "InvalidLaunchTemplateName.NotFoundException")

	group := &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: awssdk.String("g"),
		LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateName: awssdk.String("imago-lt"), Version: awssdk.String("1")},
		MinSize:        awssdk.Int32(1), MaxSize: awssdk.Int32(1), VPCZoneIdentifier: awssdk.String(subnet)}
	_, err = c.asg.CreateAutoScalingGroup(ctx, group)
	require.NoError(t, err)
	_, err = c.asg.CreateAutoScalingGroup(ctx, group)
	var exists *asgtypes.AlreadyExistsFault
	assert.ErrorAs(t, err, &exists)
	bad := *group
	bad.AutoScalingGroupName, bad.MinSize = awssdk.String("g2"), awssdk.Int32(3)
	_, err = c.asg.CreateAutoScalingGroup(ctx, &bad)
	assertCode(t, err, "ValidationError")

	// Throttling: the documented code, HTTP 400, which the SDK's standard
	// retryer retries (here with retries: the call succeeds).
	c.fake.FailNext("DescribeTargetGroups", 400, "Throttling", "Rate exceeded")
	_, err = c.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{"dup"}})
	assertCode(t, err, "Throttling")
	retrying := newClients(t, 0)
	retrying.fake.FailNext("DescribeImages", 400, "Throttling", "Rate exceeded")
	_, err = retrying.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{retrying.fake.AddImage()}})
	assert.NoError(t, err, "the SDK's retryer retries Throttling")
	assert.Equal(t, []string{"DescribeImages", "DescribeImages"}, retrying.fake.Actions())
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	var api smithy.APIError
	if assert.ErrorAs(t, err, &api) {
		assert.Equal(t, code, api.ErrorCode(), "%v", err)
	}
}

// Lists come in pages the SDK's paginators follow: every item once, in as
// many pages as the page size makes. (DescribeInstances is not paged here:
// the driver asks for instance IDs, and AWS does not page such a request.)
func TestTheFakesPagesAreWhatTheSDKsPaginatorsFollow(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, 0)
	c.fake.SetPageSize(2) // Auto Scaling's pages; the other lists page by the request's MaxResults, PageSize
	ami, subnet := c.fake.AddImage(), c.fake.AddSubnet("eu-west-1a")
	var names []string
	for i := range 5 {
		name := fmt.Sprintf("imago-page-%d", i)
		names = append(names, name)
		_, err := c.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: &name,
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: awssdk.String(ami), InstanceType: ec2types.InstanceTypeT3Small},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate,
				Tags: []ec2types.Tag{{Key: awssdk.String("imago:fleet"), Value: &name}}}}})
		require.NoError(t, err)
		_, err = c.elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: &name, Protocol: elbtypes.ProtocolEnumHttp,
			Port: awssdk.Int32(80), VpcId: awssdk.String("vpc-0abc12345678def01")})
		require.NoError(t, err)
		_, err = c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: &name,
			LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateName: &name, Version: awssdk.String("1")},
			MinSize:        awssdk.Int32(0), MaxSize: awssdk.Int32(0), VPCZoneIdentifier: awssdk.String(subnet),
			Tags: []asgtypes.Tag{{Key: awssdk.String("imago:fleet"), Value: &name}}})
		require.NoError(t, err)
	}

	var lts, pages []string
	ltPages := ec2.NewDescribeLaunchTemplatesPaginator(c.ec2, &ec2.DescribeLaunchTemplatesInput{MaxResults: awssdk.Int32(2),
		Filters: []ec2types.Filter{{Name: awssdk.String("tag-key"), Values: []string{"imago:fleet"}}}})
	for ltPages.HasMorePages() {
		out, err := ltPages.NextPage(ctx)
		require.NoError(t, err)
		pages = append(pages, fmt.Sprint(len(out.LaunchTemplates)))
		for _, lt := range out.LaunchTemplates {
			lts = append(lts, *lt.LaunchTemplateName)
		}
	}
	assert.ElementsMatch(t, names, lts)
	assert.Equal(t, []string{"2", "2", "1"}, pages)

	var tgs []string
	tgPages := elbv2.NewDescribeTargetGroupsPaginator(c.elb, &elbv2.DescribeTargetGroupsInput{PageSize: awssdk.Int32(2)})
	n := 0
	for tgPages.HasMorePages() {
		out, err := tgPages.NextPage(ctx)
		require.NoError(t, err)
		n++
		for _, tg := range out.TargetGroups {
			tgs = append(tgs, *tg.TargetGroupName)
		}
	}
	assert.ElementsMatch(t, names, tgs)
	assert.Equal(t, 3, n, "pages of 2")

	var groups []string
	poll(t, "every group described", func() bool {
		groups, n = nil, 0
		asgPages := autoscaling.NewDescribeAutoScalingGroupsPaginator(c.asg, &autoscaling.DescribeAutoScalingGroupsInput{
			Filters: []asgtypes.Filter{{Name: awssdk.String("tag-key"), Values: []string{"imago:fleet"}}}})
		for asgPages.HasMorePages() {
			out, err := asgPages.NextPage(ctx)
			require.NoError(t, err)
			n++
			for _, g := range out.AutoScalingGroups {
				groups = append(groups, *g.AutoScalingGroupName)
			}
		}
		return len(groups) == len(names)
	})
	assert.ElementsMatch(t, names, groups)
	assert.Equal(t, 3, n, "pages of 2")

	_, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{NextToken: awssdk.String("forged")})
	var badToken *asgtypes.InvalidNextToken
	assert.True(t, errors.As(err, &badToken), "a token the fake never gave: the documented InvalidNextToken, got %v", err)
}
