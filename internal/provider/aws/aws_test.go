package aws_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/aws/awsfake"
	"github.com/imago/imago/internal/provider/drivertest"
)

const region = "eu-west-1"

var key = contract.RouteKey{Service: "web", Environment: "test"}

// fakeEnv is a driver talking to a FakeAWS with one ALB listener for key.
type fakeEnv struct {
	t        *testing.T
	ctx      context.Context
	fake     *awsfake.FakeAWS
	listener string
	cfg      aws.Config
	d        *aws.Driver
	p        *provider.Provider
	ami      string
}

// timeUnit is how long one AWS second lasts in the fake: a 2 s deregistration
// delay drains in 10 ms, a 5 s health-check interval is 25 ms.
const timeUnit = 5 * time.Millisecond

// newFakeEnv starts a FakeAWS and opens a driver on it. Its cleanup checks that
// the driver did nothing the fake saw as harmful on AWS.
func newFakeEnv(t *testing.T, opts ...awsfake.ListenerOptions) *fakeEnv {
	t.Helper()
	fake := awsfake.New(region)
	t.Cleanup(fake.Close)
	fake.SetTimeUnit(timeUnit)
	e := &fakeEnv{t: t, ctx: context.Background(), fake: fake, listener: fake.AddListener(opts...), ami: fake.AddImage()}
	e.cfg = testConfig(fake, e.listener)
	e.open()
	t.Cleanup(func() {
		if v := fake.Violations(); len(v) > 0 {
			t.Errorf("the fake saw harmful calls: %v", v)
		}
	})
	return e
}

// testConfig is a driver configuration for fake, with subnets in the two zones
// its load balancers enable and the SDK's real (standard) retryer, with a
// short backoff.
func testConfig(fake *awsfake.FakeAWS, listener string) aws.Config {
	return aws.Config{
		Region:              region,
		VPCID:               "vpc-0abc12345678def01",
		Subnets:             []string{fake.AddSubnet(region + "a"), fake.AddSubnet(region + "b")},
		SecurityGroups:      []string{"sg-0abc12345678def01"},
		InstanceType:        "t3.small",
		Port:                8080,
		DeregistrationDelay: 2 * time.Second,
		// Tests that want Auto Scaling to replace unhealthy instances early shorten it.
		HealthCheckGracePeriod: time.Hour,
		Listeners:              map[string]string{key.String(): listener},
		Endpoint:               fake.URL(),
		Credentials:            credentials.NewStaticCredentialsProvider("AKIDFAKEFAKEFAKE", "fake-secret", ""),
		RetryMaxBackoff:        2 * time.Millisecond,
		PollInterval:           5 * time.Millisecond,
	}
}

func (e *fakeEnv) open() {
	e.t.Helper()
	d, err := aws.Open(e.ctx, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.d, e.p = d, provider.New("aws", d)
}

func (e *fakeEnv) request(token string, size int) contract.ProvisionRequest {
	return contract.ProvisionRequest{Token: token, Service: key.Service, Environment: key.Environment, ImageID: e.ami, Size: size,
		Labels: map[string]string{"rollout": "rollout/test/web", "run": "r1"}}
}

func (e *fakeEnv) provision(token string, size int) contract.Fleet {
	e.t.Helper()
	f, err := e.p.Provision(e.ctx, e.request(token, size))
	if err != nil {
		e.t.Fatalf("provision %s: %v", token, err)
	}
	return f
}

// healthy provisions a fleet, boots its instances and returns it once Describe
// reports every instance running.
func (e *fakeEnv) healthy(token string, size int) contract.Fleet {
	e.t.Helper()
	return e.boot(e.provision(token, size))
}

// boot boots the fleet's instances in the fake and waits until Describe
// reports each of them running.
func (e *fakeEnv) boot(f contract.Fleet) contract.Fleet {
	e.t.Helper()
	if err := e.fake.Boot(f.ID); err != nil {
		e.t.Fatal(err)
	}
	out, err := waitRunning(e.ctx, e.p, f.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// waitRunning polls Describe until every instance of the fleet is running.
func waitRunning(ctx context.Context, p *provider.Provider, id string) (contract.Fleet, error) {
	var f contract.Fleet
	err := waitFor(ctx, 20*time.Second, func() (bool, error) {
		var err error
		if f, err = p.Describe(ctx, id); err != nil {
			return false, err
		}
		for _, in := range f.Instances {
			if in.State != contract.InstanceRunning {
				return false, nil
			}
		}
		return len(f.Instances) > 0, nil
	})
	if err != nil {
		return f, fmt.Errorf("fleet %s: instances %+v: %w", id, f.Instances, err)
	}
	return f, nil
}

// waitFor polls cond until it holds, fails, or limit passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not so after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// calls runs op and returns the actions it called.
func (e *fakeEnv) calls(op func()) []string {
	e.t.Helper()
	e.fake.ResetCalls()
	op()
	return e.fake.Actions()
}

// pollingCalls is calls with consecutive repeats of one action collapsed into
// one: how often the driver polls (drains, lags AWS takes) depends on time.
func (e *fakeEnv) pollingCalls(op func()) []string {
	e.t.Helper()
	var out []string
	for _, a := range e.calls(op) {
		if len(out) > 0 && out[len(out)-1] == a {
			continue
		}
		out = append(out, a)
	}
	return out
}

func wantCalls(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s called\n  %s\nwant\n  %s", what, strings.Join(got, " → "), strings.Join(want, " → "))
	}
}

func wantCode(t *testing.T, what string, err error, want provider.Code) {
	t.Helper()
	if got := provider.ErrorCode(err); err == nil || got != want {
		t.Fatalf("%s: error %v (code %s), want code %s", what, err, got, want)
	}
}

// param returns the value of a request parameter of the last call of action.
func (e *fakeEnv) param(action, name string) string {
	e.t.Helper()
	calls := e.fake.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Action == action {
			return calls[i].Params.Get(name)
		}
	}
	e.t.Fatalf("no %s call", action)
	return ""
}

// fakeHarness runs the conformance suite on the driver and a FakeAWS that
// throttles every fifth request (the SDK's retryer retries them).
type fakeHarness struct {
	e *fakeEnv
}

func (h *fakeHarness) MakeDriver(ctx context.Context) (provider.Driver, error) {
	return aws.Open(ctx, h.e.cfg)
}

func (h *fakeHarness) Images(ctx context.Context) (drivertest.Images, error) {
	return drivertest.Images{First: h.e.ami, Second: h.e.fake.AddImage(), Missing: "ami-0000000000000000f"}, nil
}

func (h *fakeHarness) RouteKey() contract.RouteKey { return key }

func (h *fakeHarness) MakeHealthy(ctx context.Context, d provider.Driver, f contract.Fleet) error {
	if err := h.e.fake.Boot(f.ID); err != nil {
		return err
	}
	_, err := waitRunning(ctx, provider.New("aws", d), f.ID)
	return err
}

// LeakProvision makes the provision fail at CreateAutoScalingGroup (every
// attempt of the SDK answers 500), after it made the launch template and the
// target group: what a worker killed at that point leaves.
func (h *fakeHarness) LeakProvision(ctx context.Context, d provider.Driver, req contract.ProvisionRequest) error {
	h.e.fake.Fail("CreateAutoScalingGroup", 3, 500, "InternalFailure", "fake")
	_, err := d.Provision(ctx, req)
	return err
}

func (h *fakeHarness) Close() {}

// Capabilities: the listener's weighted forward splits traffic, its rules
// route by header, its target-group stickiness keeps clients; the driver
// neither resizes fleets, reads the load balancer's metrics nor mirrors.
func (h *fakeHarness) Capabilities() provider.Capabilities {
	return provider.CapabilitiesOf(provider.CapWeights, provider.CapHeaderRoutes, provider.CapStickiness)
}

// StickyCookie: an ALB's target-group stickiness cookie.
func (h *fakeHarness) StickyCookie() string { return aws.StickyCookie }

// DriverGuardsTraffic: the aws driver itself refuses to terminate a fleet the
// listener forwards to.
func (h *fakeHarness) DriverGuardsTraffic() bool { return true }

func TestConformanceWithFakeAWS(t *testing.T) {
	drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
		e := newFakeEnv(t)
		e.fake.ThrottleEvery(5)
		return &fakeHarness{e: e}, nil
	})
}

// freshProvision are the calls of a Provision that makes a fleet, repeated
// calls collapsed: the group is polled until AWS shows it.
var freshProvision = []string{"DescribeAutoScalingGroups", "DescribeImages", "CreateLaunchTemplate", "CreateTargetGroup",
	"ModifyTargetGroupAttributes", "CreateAutoScalingGroup", "DescribeAutoScalingGroups", "DescribeListeners", "ModifyListener",
	"DescribeInstances", "DescribeTargetHealth"}

func TestProvisionCallSequenceWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	var f contract.Fleet
	got := e.pollingCalls(func() { f = e.provision("rollout/test/web/run-1", 2) })
	wantCalls(t, "provision", got, freshProvision...)
	if f.ID != aws.FleetID("rollout/test/web/run-1") {
		t.Fatalf("fleet ID %s, want %s", f.ID, aws.FleetID("rollout/test/web/run-1"))
	}
	// What was asked of AWS.
	for name, want := range map[string]string{
		"LaunchTemplateName": f.ID, "ClientToken": f.ID, "LaunchTemplateData.ImageId": e.ami,
		"LaunchTemplateData.InstanceType": "t3.small", "LaunchTemplateData.SecurityGroupId.1": "sg-0abc12345678def01",
	} {
		if got := e.param("CreateLaunchTemplate", name); got != want {
			t.Errorf("CreateLaunchTemplate %s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{
		"Name": f.ID, "Port": "8080", "Protocol": "HTTP", "VpcId": "vpc-0abc12345678def01", "HealthCheckPath": "/healthz",
		"HealthCheckIntervalSeconds": "30", "HealthCheckTimeoutSeconds": "5", "HealthyThresholdCount": "5", "UnhealthyThresholdCount": "2",
	} {
		if got := e.param("CreateTargetGroup", name); got != want {
			t.Errorf("CreateTargetGroup %s = %q, want %q", name, got, want)
		}
	}
	if got := e.param("ModifyTargetGroupAttributes", "Attributes.member.1.Value"); got != "2" {
		t.Errorf("deregistration delay set to %q seconds, want 2", got)
	}
	for name, want := range map[string]string{
		"AutoScalingGroupName": f.ID, "LaunchTemplate.LaunchTemplateName": f.ID, "LaunchTemplate.Version": "1",
		"MinSize": "2", "MaxSize": "2", "DesiredCapacity": "2", "HealthCheckType": "ELB",
		"VPCZoneIdentifier": strings.Join(e.cfg.Subnets, ","),
	} {
		if got := e.param("CreateAutoScalingGroup", name); got != want {
			t.Errorf("CreateAutoScalingGroup %s = %q, want %q", name, got, want)
		}
	}
	if tg := e.param("CreateAutoScalingGroup", "TargetGroupARNs.member.1"); !strings.Contains(tg, ":targetgroup/"+f.ID+"/") {
		t.Errorf("the group registers in target group %q, want the fleet's", tg)
	}
	// The load balancer health-checks the new target group from now on, and sends it nothing.
	if got := e.fake.Listener(e.listener); !reflect.DeepEqual(got.Weights, map[string]int{f.ID: 0}) {
		t.Errorf("after provisioning the listener forwards %+v, want %s at weight 0", got, f.ID)
	}
	// The tags a reaper and the AWS console see.
	asgTags := map[string]string{}
	for _, c := range e.fake.Calls() {
		if c.Action == "CreateAutoScalingGroup" {
			for i := 1; c.Params.Has(fmt.Sprintf("Tags.member.%d.Key", i)); i++ {
				asgTags[c.Params.Get(fmt.Sprintf("Tags.member.%d.Key", i))] = c.Params.Get(fmt.Sprintf("Tags.member.%d.Value", i))
			}
		}
	}
	wantTags := map[string]string{
		"Name": f.ID, "imago:service": "web", "imago:environment": "test", "imago:token": "rollout/test/web/run-1",
		"imago:image": e.ami, "imago:fleet": f.ID, "imago:rollout": "rollout/test/web", "imago:run": "r1",
	}
	if !reflect.DeepEqual(asgTags, wantTags) {
		t.Errorf("group tags %v, want %v", asgTags, wantTags)
	}
	res := e.fake.Resources()
	if len(res["instance"]) != 2 || !reflect.DeepEqual(res["auto-scaling-group"], []string{f.ID}) ||
		!reflect.DeepEqual(res["target-group"], []string{f.ID}) || !reflect.DeepEqual(res["launch-template"], []string{f.ID}) {
		t.Fatalf("AWS holds %v, want one group, template and target group named %s and 2 instances", res, f.ID)
	}

	// A retry of a Provision that finished adopts the group and creates nothing.
	got = e.calls(func() { e.provision("rollout/test/web/run-1", 2) })
	wantCalls(t, "provision retry", got, "DescribeAutoScalingGroups", "DescribeListeners", "DescribeInstances", "DescribeTargetHealth")
	if again := e.fake.Resources(); !reflect.DeepEqual(again, res) {
		t.Fatalf("the retry changed AWS: %v, was %v", again, res)
	}
}

func TestProvisionRetriesWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	fresh := freshProvision

	// An attempt that failed before making the group (the SDK retried the 500s
	// and gave up): the retry repeats every create, and each returns what the
	// first attempt made.
	e.fake.Fail("CreateAutoScalingGroup", 3, 500, "InternalFailure", "fake")
	_, err := e.p.Provision(e.ctx, e.request("interrupted", 2))
	wantCode(t, "provision with a failing CreateAutoScalingGroup", err, provider.Unknown)
	made := e.fake.Resources()
	var f contract.Fleet
	wantCalls(t, "provision retry", e.pollingCalls(func() { f = e.provision("interrupted", 2) }), fresh...)
	res := e.fake.Resources()
	if !reflect.DeepEqual(res["launch-template"], made["launch-template"]) || !reflect.DeepEqual(res["target-group"], made["target-group"]) ||
		!reflect.DeepEqual(res["auto-scaling-group"], []string{f.ID}) || len(res["instance"]) != 2 {
		t.Fatalf("after the retry AWS holds %v (before it: %v), want the first attempt's template and target group and one group of 2", res, made)
	}

	// Two attempts at once: the one that loses the race to create the group
	// (AlreadyExists) adopts the winner's.
	var winner contract.Fleet
	e.fake.BeforeNext("CreateAutoScalingGroup", func() { winner = e.provision("race", 1) })
	var loser contract.Fleet
	got := e.pollingCalls(func() { loser = e.provision("race", 1) })
	if loser.ID != winner.ID || fmt.Sprint(loser.Instances) != fmt.Sprint(winner.Instances) {
		t.Fatalf("the attempt that lost the race returned %+v, want the winner's %+v", loser, winner)
	}
	// The loser's creates, the winner's whole provision, then the loser finds
	// the group and the listener as the winner left them.
	wantCalls(t, "provision that loses the race (with the winner's calls inside)", got, append(append(fresh[:5:5], fresh...),
		"CreateAutoScalingGroup", "DescribeAutoScalingGroups", "DescribeListeners", "DescribeInstances", "DescribeTargetHealth")...)
	if n := len(e.fake.Resources()["instance"]); n != 3 {
		t.Fatalf("%d instances, want 3: the race must not double the fleet", n)
	}

	// The same token after its fleet was terminated, while AWS still deletes it.
	e.fake.LingerDeletes(true)
	if err := e.p.Terminate(e.ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Provision(e.ctx, e.request("interrupted", 2))
	if provider.ErrorCode(err) != provider.Unknown || !strings.Contains(err.Error(), "still being deleted") {
		t.Fatalf("provision of a token whose fleet is being deleted: %v, want a retryable error saying so", err)
	}
}

func TestOperationCallSequencesWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	blue := e.healthy("blue", 2)
	green := e.healthy("green", 1)

	wantCalls(t, "describe", e.calls(func() {
		if _, err := e.p.Describe(e.ctx, blue.ID); err != nil {
			t.Fatal(err)
		}
	}), "DescribeAutoScalingGroups", "DescribeInstances", "DescribeTargetHealth")

	// Both fleets take traffic for the first time: the load balancer must say
	// each has a healthy target first.
	wantCalls(t, "set route", e.calls(func() {
		err := e.p.SetRoute(e.ctx, key, contract.Route{Backends: []contract.Backend{
			{FleetID: blue.ID, Weight: 30, Targets: blue.Addresses()}, {FleetID: green.ID, Weight: 70, Targets: green.Addresses()}}})
		if err != nil {
			t.Fatal(err)
		}
	}), "DescribeTargetGroups", "DescribeListeners", "DescribeTargetHealth", "DescribeTargetHealth", "ModifyListener", "DescribeRules")
	if got := e.fake.Listener(e.listener); !reflect.DeepEqual(got.Weights, map[string]int{blue.ID: 30, green.ID: 70}) {
		t.Fatalf("the ALB listener forwards %+v, want %s 30 and %s 70", got, blue.ID, green.ID)
	}

	wantCalls(t, "read route", e.calls(func() {
		if _, err := e.p.Route(e.ctx, key); err != nil {
			t.Fatal(err)
		}
	}), "DescribeListeners", "DescribeRules", "DescribeTargetGroups", "DescribeTargetHealth", "DescribeTargetHealth", "DescribeInstances")

	// Fleets are groups, and what a failed or interrupted provision left:
	// launch templates and target groups tagged by imago.
	wantCalls(t, "list fleets", e.calls(func() {
		if _, err := e.p.ListFleets(e.ctx, provider.Filter{Service: "web", Environment: "test"}); err != nil {
			t.Fatal(err)
		}
	}), "DescribeAutoScalingGroups", "DescribeInstances", "DescribeLaunchTemplates", "DescribeTargetGroups")
	filters := map[string]string{}
	for i := 1; i <= 3; i++ {
		filters[e.param("DescribeAutoScalingGroups", fmt.Sprintf("Filters.member.%d.Name", i))] =
			e.param("DescribeAutoScalingGroups", fmt.Sprintf("Filters.member.%d.Values.member.1", i))
	}
	if want := map[string]string{"tag-key": "imago:token", "tag:imago:service": "web", "tag:imago:environment": "test"}; !reflect.DeepEqual(filters, want) {
		t.Fatalf("list filters %v, want %v", filters, want)
	}

	// The guard: the listener forwards to blue, so the driver touches nothing.
	before := e.fake.Resources()
	var err error
	wantCalls(t, "refused terminate", e.calls(func() { err = e.d.Terminate(e.ctx, blue.ID) }),
		"DescribeAutoScalingGroups", "DescribeTargetGroups", "DescribeListeners")
	wantCode(t, "terminate a fleet with 30% of traffic", err, provider.FailedPrecondition)
	if !strings.Contains(err.Error(), "weight 30") {
		t.Fatalf("refusal %q does not say how much traffic the fleet gets", err)
	}
	if after := e.fake.Resources(); !reflect.DeepEqual(after, before) {
		t.Fatalf("a refused terminate changed AWS: %v, was %v", after, before)
	}

	// Green takes everything; blue stays in the forward action at weight 0
	// (checked, ready for a rollback) and no longer in the route.
	if err := e.p.SetRoute(e.ctx, key, contract.Route{Backends: []contract.Backend{
		{FleetID: green.ID, Weight: 100, Targets: green.Addresses()}}}); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Listener(e.listener); !reflect.DeepEqual(got.Weights, map[string]int{blue.ID: 0, green.ID: 100}) {
		t.Fatalf("after moving all traffic to green the listener forwards %+v, want blue at 0 and green at 100", got)
	}
	// Terminate takes blue out of the listener, waits until the load balancer
	// no longer lists it, detaches it, waits until its instances are gone.
	wantCalls(t, "terminate", e.pollingCalls(func() {
		if err := e.p.Terminate(e.ctx, blue.ID); err != nil {
			t.Fatal(err)
		}
	}),
		// the portable traffic guard
		"DescribeAutoScalingGroups", "DescribeInstances", "DescribeTargetHealth",
		"DescribeListeners", "DescribeRules", "DescribeTargetGroups", "DescribeTargetHealth", "DescribeInstances",
		// the driver
		"DescribeAutoScalingGroups", "DescribeTargetGroups", "DescribeListeners", "ModifyListener", "DescribeTargetGroups",
		"DetachLoadBalancerTargetGroups", "DescribeTargetHealth", "DeleteAutoScalingGroup", "DeleteLaunchTemplate", "DeleteTargetGroup")
	if got := e.param("DeleteAutoScalingGroup", "ForceDelete"); got != "true" {
		t.Fatalf("DeleteAutoScalingGroup ForceDelete = %q, want true", got)
	}
	if got := e.fake.Listener(e.listener); !reflect.DeepEqual(got.Weights, map[string]int{green.ID: 100}) {
		t.Fatalf("after terminating blue the listener forwards %+v, want only %s", got, green.ID)
	}
	res := e.fake.Resources()
	if !reflect.DeepEqual(res["auto-scaling-group"], []string{green.ID}) || !reflect.DeepEqual(res["target-group"], []string{green.ID}) ||
		!reflect.DeepEqual(res["launch-template"], []string{green.ID}) || len(res["instance"]) != 1 {
		t.Fatalf("after terminating blue AWS holds %v, want only green's resources", res)
	}

	// Terminating a fleet that is gone looks and deletes nothing but its launch template.
	wantCalls(t, "terminate again", e.calls(func() {
		if err := e.d.Terminate(e.ctx, blue.ID); err != nil {
			t.Fatal(err)
		}
	}), "DescribeAutoScalingGroups", "DescribeTargetGroups", "DeleteLaunchTemplate")

	// An empty route: the listener answers 503.
	wantCalls(t, "empty route", e.calls(func() {
		if err := e.p.SetRoute(e.ctx, key, contract.Route{}); err != nil {
			t.Fatal(err)
		}
	}), "DescribeListeners", "DescribeRules", "ModifyListener")
	if got := e.fake.Listener(e.listener); got.FixedStatus != "503" || got.Weights != nil {
		t.Fatalf("after an empty route the listener does %+v, want a 503 fixed response", got)
	}
}

func TestDescribeHealthWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	states := func(f contract.Fleet) string {
		var s []string
		for _, in := range f.Instances {
			s = append(s, in.State)
		}
		return strings.Join(s, ",")
	}
	describe := func() contract.Fleet {
		t.Helper()
		f, err := e.p.Describe(e.ctx, aws.FleetID("health"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	waitStates := func(want string) contract.Fleet {
		t.Helper()
		var f contract.Fleet
		if err := waitFor(e.ctx, 20*time.Second, func() (bool, error) { f = describe(); return states(f) == want, nil }); err != nil {
			t.Fatalf("instances %s, want %s: %v", states(f), want, err)
		}
		return f
	}

	// Launches held: the capacity shows as placeholders, so health waits wait.
	e.fake.HoldLaunches(true)
	f := e.provision("health", 2)
	if len(f.Instances) != 2 || states(f) != "stopped,stopped" || !strings.HasPrefix(f.Instances[0].ID, f.ID+"-launching-") {
		t.Fatalf("a fleet whose instances did not launch: %+v, want 2 stopped launching placeholders", f.Instances)
	}
	// Launched and booted: running once the load balancer's checks pass.
	e.fake.HoldLaunches(false)
	if err := e.fake.Boot(f.ID); err != nil {
		t.Fatal(err)
	}
	f = waitStates("running,running")
	for _, in := range f.Instances {
		if !strings.HasPrefix(in.ID, "i-") || !strings.HasPrefix(in.Address, "10.0.") || !strings.HasSuffix(in.Address, ":8080") {
			t.Fatalf("instance %+v: want an EC2 instance ID and its private IP on port 8080", in)
		}
		if got := e.fake.TargetHealth(f.ID)[in.ID]; got != "healthy" {
			t.Fatalf("instance %s reported running while the load balancer says %s", in.ID, got)
		}
	}
	if err := e.p.SetRoute(e.ctx, key, contract.Route{Backends: []contract.Backend{{FleetID: f.ID, Weight: 100, Targets: f.Addresses()}}}); err != nil {
		t.Fatal(err)
	}
	// One instance stops answering: the load balancer's checks fail, and it is
	// no longer running; it recovers once it answers again.
	e.fake.SetServing(f.Instances[0].ID)
	waitStates("stopped,running")
	e.fake.SetServing(f.Instances[0].ID, "/healthz")
	waitStates("running,running")
	r, err := e.p.Route(e.ctx, key)
	if err != nil || len(r.Backends) != 1 || fmt.Sprint(sortedCopy(r.Backends[0].Targets)) != fmt.Sprint(sortedCopy(f.Addresses())) {
		t.Fatalf("route %+v (%v), want the fleet's targets %v", r, err, f.Addresses())
	}
}

func TestHalfTerminatedFleetWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.SetLags(awsfake.Lags{Visibility: 2}) // the load balancer lets go of target groups at once: exact call sequences
	e.fake.LingerDeletes(true)
	f := e.healthy("half", 2)
	other := e.healthy("other", 1)
	e.fake.Fail("DeleteTargetGroup", 3, 500, "InternalFailure", "We encountered an internal error. Please try again.")
	err := e.p.Terminate(e.ctx, f.ID)
	if err == nil || provider.ErrorCode(err) != provider.Unknown || !strings.Contains(err.Error(), "InternalFailure") {
		t.Fatalf("terminate with a failing DeleteTargetGroup: %v, want a retryable (Unknown) error naming the AWS error", err)
	}
	// The group is being deleted, the target group is left: the fleet is still
	// there for a retry (or the reaper) to finish, with no instances.
	g, err := e.p.Describe(e.ctx, f.ID)
	if err != nil || g.Service != "web" || g.Token != "half" || len(g.Instances) != 0 {
		t.Fatalf("half terminated fleet: %+v %v, want it described from its target group's tags, with no instances", g, err)
	}
	fleets, err := e.p.ListFleets(e.ctx, provider.Filter{})
	if err != nil || len(fleets) != 2 || fleets[0].ID != f.ID && fleets[1].ID != f.ID {
		t.Fatalf("list: %+v %v, want %s (what is left of it) and %s", fleets, err, f.ID, other.ID)
	}
	wantCalls(t, "retried terminate", e.calls(func() {
		if err := e.p.Terminate(e.ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}),
		"DescribeAutoScalingGroups", "DescribeTargetGroups", "DescribeTags", "DescribeListeners", // Describe, guard's Route
		"DescribeAutoScalingGroups", "DescribeTargetGroups", "DescribeListeners", // the driver
		"DeleteLaunchTemplate", "DeleteTargetGroup")
	_, err = e.p.Describe(e.ctx, f.ID)
	wantCode(t, "describe after the retried terminate", err, provider.NotFound)
	if res := e.fake.Resources(); !reflect.DeepEqual(res["target-group"], []string{other.ID}) {
		t.Fatalf("target groups left: %v, want only %s", res["target-group"], other.ID)
	}
}

func TestListFleetsPagesWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.SetPageSize(2)
	var want []string
	for i := range 5 {
		want = append(want, e.provision(fmt.Sprintf("page-%d", i), 1).ID)
	}
	fleets, err := e.p.ListFleets(e.ctx, provider.Filter{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fleets {
		got = append(got, f.ID)
	}
	if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(want)) {
		t.Fatalf("listed %v, want all of %v", got, want)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestErrorCodesWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	cases := []struct {
		action, code string
		status       int
		times        int // how often the call fails: the SDK tries throttling and 5xx 3 times
		want         provider.Code
		says         string
	}{
		{"CreateLaunchTemplate", "UnauthorizedOperation", 403, 1, provider.FailedPrecondition, "docs/aws.md"},
		{"CreateTargetGroup", "AccessDenied", 403, 1, provider.FailedPrecondition, "docs/aws.md"},
		{"CreateAutoScalingGroup", "LimitExceeded", 400, 1, provider.FailedPrecondition, "LimitExceeded"},
		{"CreateAutoScalingGroup", "Throttling", 400, 3, provider.Unknown, "Throttling"},
		{"DescribeImages", "Unavailable", 503, 3, provider.Unknown, "Unavailable"},
		{"CreateTargetGroup", "DuplicateTargetGroupName", 400, 1, provider.InvalidArgument, "DuplicateTargetGroupName"},
	}
	for i, c := range cases {
		e.fake.Fail(c.action, c.times, c.status, c.code, "fake "+c.code)
		_, err := e.p.Provision(e.ctx, e.request(fmt.Sprintf("err-%d", i), 1))
		if provider.ErrorCode(err) != c.want || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s failing with %s: %v (code %s), want code %s and a message with %q", c.action, c.code, err, provider.ErrorCode(err), c.want, c.says)
		}
	}

	// An AMI that is not available yet.
	pending := e.fake.AddImage()
	e.fake.SetImageState(pending, "pending")
	req := e.request("pending-ami", 1)
	req.ImageID = pending
	_, err := e.p.Provision(e.ctx, req)
	wantCode(t, "provision a pending AMI", err, provider.FailedPrecondition)

	// A label that would overwrite imago's own tag.
	req = e.request("bad-label", 1)
	req.Labels["token"] = "x"
	_, err = e.p.Provision(e.ctx, req)
	wantCode(t, "provision with label token", err, provider.InvalidArgument)

	// No listener for the key: no router to set; reading finds an empty route.
	other := contract.RouteKey{Service: "api", Environment: "test"}
	err = e.p.SetRoute(e.ctx, other, contract.Route{})
	wantCode(t, "set route without a listener", err, provider.FailedPrecondition)
	if !strings.Contains(err.Error(), `"test/api"`) {
		t.Fatalf("error %q does not say which listener key to configure", err)
	}
	if r, err := e.p.Route(e.ctx, other); err != nil || len(r.Backends) != 0 {
		t.Fatalf("route without a listener: %+v %v, want empty", r, err)
	}
	// A routed fleet that does not exist.
	err = e.p.SetRoute(e.ctx, key, contract.Route{Backends: []contract.Backend{{FleetID: "imago-000000000000", Weight: 100, Targets: []string{"10.0.0.1:8080"}}}})
	wantCode(t, "route to an unknown fleet", err, provider.NotFound)
	// A configured listener that was deleted: after Open, and at Open.
	e.fake.DeleteListener(e.listener)
	_, err = e.p.Route(e.ctx, key)
	wantCode(t, "route of a deleted listener", err, provider.FailedPrecondition)
	d, err := aws.Open(e.ctx, e.cfg)
	wantCode(t, "open with a deleted listener", err, provider.FailedPrecondition)
	if d != nil {
		t.Fatalf("open with a deleted listener returned a driver")
	}
}

// images is a catalog of images baked with amazon-ebs.
type images map[string]contract.Image

func (m images) Get(ctx context.Context, id string) (contract.Image, error) {
	img, ok := m[id]
	if !ok {
		return contract.Image{}, fmt.Errorf("image %s: %w", id, catalog.ErrNotFound)
	}
	return img, nil
}

func TestProvisionCatalogImageWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.cfg.Images = images{
		"img-0123456789ab": {ID: "img-0123456789ab", Builder: "amazon-ebs", Artifacts: map[string]string{region: e.ami, "us-east-1": "ami-0aaaaaaaaaaaaaaaa"}},
		"img-ba9876543210": {ID: "img-ba9876543210", Builder: "amazon-ebs", Artifacts: map[string]string{"us-east-1": "ami-0aaaaaaaaaaaaaaaa"}},
	}
	e.open()
	req := e.request("catalog", 1)
	req.ImageID = "img-0123456789ab"
	f, err := e.p.Provision(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if f.ImageID != "img-0123456789ab" || e.param("CreateLaunchTemplate", "LaunchTemplateData.ImageId") != e.ami {
		t.Fatalf("fleet image %s, launch template AMI %s; want the catalog image and its %s AMI %s",
			f.ImageID, e.param("CreateLaunchTemplate", "LaunchTemplateData.ImageId"), region, e.ami)
	}
	req = e.request("other-region", 1)
	req.ImageID = "img-ba9876543210"
	_, err = e.p.Provision(e.ctx, req)
	wantCode(t, "provision an image without an AMI in the region", err, provider.FailedPrecondition)
	if !strings.Contains(err.Error(), "no AMI in region "+region) {
		t.Fatalf("error %q does not say the image lacks an AMI in %s", err, region)
	}
	req.ImageID = "img-000000000000"
	_, err = e.p.Provision(e.ctx, req)
	wantCode(t, "provision an image the catalog does not have", err, provider.NotFound)
}

func TestOpenValidatesConfig(t *testing.T) {
	_, err := aws.Open(context.Background(), aws.Config{
		VPCID: "default", Subnets: []string{"eu-west-1a"}, SecurityGroups: []string{"web"}, Port: 70000,
		HealthCheckPath: "healthz", Listeners: map[string]string{"web": "my-alb"},
	})
	if err == nil {
		t.Fatal("a bad configuration opened")
	}
	for _, want := range []string{
		"region is required", `vpc "default" is not a VPC ID`, `subnet "eu-west-1a" is not a subnet ID`,
		`security group "web" is not a security group ID`, "instance type is required", "port 70000 is out of range",
		`health check path "healthz" must start with /`, `listener key "web" must be <environment>/<service>`,
		`"my-alb" is not an ALB listener ARN`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	fake := awsfake.New(region)
	defer fake.Close()
	if _, err := aws.Open(context.Background(), testConfig(fake, fake.AddListener())); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
}
