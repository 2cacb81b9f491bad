package aws_test

// What AWS does that a driver must cope with, one test per problem of the
// issue "Correct on the engines we run on" (AWS part), against the fake of
// awsfake, which models what AWS documents.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/provider/aws"
	"github.com/imago/imago/internal/provider/aws/awsfake"
)

func route(backends ...contract.Backend) contract.Route { return contract.Route{Backends: backends} }

func backend(f contract.Fleet, weight int) contract.Backend {
	return contract.Backend{FleetID: f.ID, Weight: weight, Targets: f.Addresses()}
}

func (e *fakeEnv) setRoute(r contract.Route) {
	e.t.Helper()
	if err := e.p.SetRoute(e.ctx, key, r); err != nil {
		e.t.Fatalf("set route %+v: %v", r, err)
	}
}

// 1. The load balancer checks a new fleet, with the spec's health check,
// before it takes any traffic.
func TestNoTrafficBeforeTheLoadBalancerSaysHealthyWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.cfg.HealthCheckGracePeriod = 10 * time.Second // 50 ms: the group replaces instances the load balancer finds unhealthy soon
	e.open()
	blue := e.healthy("blue", 1)
	e.setRoute(route(backend(blue, 100)))

	// The new version serves /ready and has no /healthz.
	req := e.request("green", 2)
	req.ImageID = e.fake.AddImageServing("/", "/ready")
	req.Health = &contract.HealthCheck{Path: "/ready", Interval: 10 * time.Second, HealthyThreshold: 3, UnhealthyThreshold: 4}
	green, err := e.p.Provision(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"HealthCheckPath": "/ready", "HealthCheckIntervalSeconds": "10", "HealthyThresholdCount": "3", "UnhealthyThresholdCount": "4",
	} {
		if got := e.param("CreateTargetGroup", name); got != want {
			t.Errorf("CreateTargetGroup %s = %q, want %q (from the spec)", name, got, want)
		}
	}
	if got := e.fake.Listener(e.listener).Weights; !reflect.DeepEqual(got, map[string]int{blue.ID: 100, green.ID: 0}) {
		t.Fatalf("after provisioning green the listener forwards %v, want blue 100 and green 0: the load balancer checks only target groups a listener names", got)
	}

	// Booted: an instance is running only once the load balancer says healthy.
	if err := e.fake.Boot(green.ID); err != nil {
		t.Fatal(err)
	}
	err = waitFor(e.ctx, 20*time.Second, func() (bool, error) {
		f, err := e.p.Describe(e.ctx, green.ID)
		if err != nil {
			return false, err
		}
		alb := e.fake.TargetHealth(green.ID)
		running := 0
		for _, in := range f.Instances {
			if in.State == contract.InstanceRunning {
				if alb[in.ID] != "healthy" {
					return false, fmt.Errorf("Describe reports instance %s running while the load balancer says %q", in.ID, alb[in.ID])
				}
				running++
			}
		}
		return running == 2, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	green, err = e.p.Describe(e.ctx, green.ID)
	if err != nil {
		t.Fatal(err)
	}
	members := e.fake.Members(green.ID)

	// Cut over: the fleet keeps serving through more checks than it takes to
	// find an instance unhealthy; the group replaces nothing.
	e.setRoute(route(backend(green, 100)))
	checks := e.fake.HealthChecks(green.ID)
	if err := waitFor(e.ctx, 20*time.Second, func() (bool, error) { return e.fake.HealthChecks(green.ID) >= checks+6, nil }); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Members(green.ID); !reflect.DeepEqual(got, members) {
		t.Fatalf("after cutover green's instances are %v, were %v: the group replaced instances that carry all traffic", got, members)
	}
	for id, st := range e.fake.TargetHealth(green.ID) {
		if st != "healthy" {
			t.Fatalf("after cutover the load balancer says %s is %s", id, st)
		}
	}

	// A fleet that fails the load balancer's checks gets no traffic (a long
	// grace period: the group does not replace its instance meanwhile).
	e.cfg.HealthCheckGracePeriod = time.Hour
	e.open()
	req = e.request("red", 1)
	req.Health = &contract.HealthCheck{Path: "/ready"} // the default image has no /ready
	red, err := e.p.Provision(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fake.Boot(red.ID); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(e.ctx, 20*time.Second, func() (bool, error) {
		h := e.fake.TargetHealth(red.ID)
		return len(h) == 1 && h[e.fake.Members(red.ID)[0]] == "unhealthy", nil
	}); err != nil {
		t.Fatalf("red never became unhealthy: %v (%v)", err, e.fake.TargetHealth(red.ID))
	}
	if red, err = e.p.Describe(e.ctx, red.ID); err != nil {
		t.Fatal(err)
	}
	err = e.p.SetRoute(e.ctx, key, route(backend(green, 50), backend(red, 50)))
	wantCode(t, "route traffic to a fleet the load balancer finds unhealthy", err, provider.FailedPrecondition)
	if got := e.fake.Listener(e.listener).Weights; got[green.ID] != 100 || got[red.ID] != 0 {
		t.Fatalf("after the refused route the listener forwards %v, want green 100 and red 0", got)
	}
}

// 2. Decommission right after the route change: the load balancer still
// holds on to the old target group for a while.
func TestDecommissionRightAfterTheRouteChangeWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.SetLags(awsfake.Lags{Visibility: 2, InUse: 60, Detach: 3}) // 300 ms
	blue := e.healthy("blue", 2)
	e.setRoute(route(backend(blue, 100)))
	green := e.healthy("green", 2)
	e.setRoute(route(backend(green, 100)))
	if err := e.p.Terminate(e.ctx, blue.ID); err != nil {
		t.Fatalf("terminate the old fleet right after the route change: %v", err)
	}
	if got := e.fake.Listener(e.listener).Weights; !reflect.DeepEqual(got, map[string]int{green.ID: 100}) {
		t.Fatalf("after terminating blue the listener forwards %v, want green only", got)
	}

	// A terminate that died after taking the target group out of the listener:
	// its retry finds the load balancer still listing it, and waits.
	purple := e.healthy("purple", 1)
	e.setRoute(route(backend(purple, 100)))
	e.fake.Fail("DetachLoadBalancerTargetGroups", 3, 500, "InternalFailure", "fake")
	err := e.p.Terminate(e.ctx, green.ID)
	wantCode(t, "terminate whose detach fails", err, provider.Unknown)
	if got := e.fake.Listener(e.listener).Weights; !reflect.DeepEqual(got, map[string]int{purple.ID: 100}) {
		t.Fatalf("after the interrupted terminate the listener forwards %v, want purple only", got)
	}
	if err := e.p.Terminate(e.ctx, green.ID); err != nil {
		t.Fatalf("retried terminate while the load balancer still lists the target group: %v", err)
	}

	// DeleteTargetGroup answering ResourceInUse is retried, as Terraform does.
	e.fake.SetLags(awsfake.Lags{Visibility: 2})
	orange := e.healthy("orange", 1)
	e.setRoute(route(backend(orange, 100)))
	e.fake.Fail("DeleteTargetGroup", 2, 400, "ResourceInUse", "Target group is currently in use by a listener or a rule")
	if err := e.p.Terminate(e.ctx, purple.ID); err != nil {
		t.Fatalf("terminate whose DeleteTargetGroup first answers ResourceInUse: %v", err)
	}
	res := e.fake.Resources()
	if !reflect.DeepEqual(res["target-group"], []string{orange.ID}) || !reflect.DeepEqual(res["auto-scaling-group"], []string{orange.ID}) ||
		!reflect.DeepEqual(res["launch-template"], []string{orange.ID}) {
		t.Fatalf("AWS holds %v, want only orange's resources", res)
	}
}

// 3. A provision that fails for good removes what it made.
func TestFailedProvisionLeavesNothingWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.RefuseInstanceType(region+"b", "t3.small")
	_, err := e.p.Provision(e.ctx, e.request("no-such-capacity", 2))
	if c := provider.ErrorCode(err); c != provider.InvalidArgument && c != provider.FailedPrecondition {
		t.Fatalf("provision of an instance type one subnet's zone does not offer: %v (code %s), want a permanent error", err, c)
	}
	if !strings.Contains(err.Error(), "not supported in your requested Availability Zone ("+region+"b)") {
		t.Fatalf("error %q does not say which zone lacks the instance type", err)
	}
	if res := e.fake.Resources(); len(res) != 0 {
		t.Fatalf("a provision that failed for good left %v", res)
	}
}

// 3. An instance profile IAM has not propagated yet is retried.
func TestInstanceProfilePropagationIsRetriedWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	profile := "arn:aws:iam::" + awsfake.Account + ":instance-profile/imago-web"
	e.cfg.IAMInstanceProfile = profile
	e.cfg.IAMPropagationTimeout = 2 * time.Second
	e.open()
	e.fake.PropagateInstanceProfile(profile, 40) // 200 ms
	f, err := e.p.Provision(e.ctx, e.request("fresh-profile", 1))
	if err != nil {
		t.Fatalf("provision while IAM propagates the instance profile: %v", err)
	}
	creates := 0
	for _, a := range e.fake.Actions() {
		if a == "CreateAutoScalingGroup" {
			creates++
		}
	}
	if creates < 2 || len(e.fake.Members(f.ID)) != 1 {
		t.Fatalf("CreateAutoScalingGroup called %d times, group members %v: want it retried until IAM propagated the profile", creates, e.fake.Members(f.ID))
	}

	// A profile that never propagates: the driver gives up after the timeout,
	// for good, and removes what it made.
	e.cfg.IAMInstanceProfile = "arn:aws:iam::" + awsfake.Account + ":instance-profile/no-such-profile"
	e.cfg.IAMPropagationTimeout = 100 * time.Millisecond
	e.open()
	_, err = e.p.Provision(e.ctx, e.request("no-profile", 1))
	wantCode(t, "provision with an instance profile IAM does not know", err, provider.InvalidArgument)
	if !strings.Contains(err.Error(), "Invalid IAM Instance Profile") {
		t.Fatalf("error %q does not name the instance profile problem", err)
	}
	if res := e.fake.Resources(); len(res["launch-template"]) != 1 || len(res["target-group"]) != 1 {
		t.Fatalf("AWS holds %v, want only the first fleet's template and target group", res)
	}
}

// 3. What an interrupted provision left (no group yet) is listed, with what
// the reaper needs, and a terminate removes it.
func TestLeftoversAreListedAndTerminatedWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.Fail("CreateAutoScalingGroup", 3, 500, "InternalFailure", "fake") // a template and a target group
	_, err := e.p.Provision(e.ctx, e.request("crashed-late", 2))
	wantCode(t, "provision whose group is never made", err, provider.Unknown)
	e.fake.Fail("CreateTargetGroup", 3, 500, "InternalFailure", "fake") // a template only
	_, err = e.p.Provision(e.ctx, e.request("crashed-early", 2))
	wantCode(t, "provision whose target group is never made", err, provider.Unknown)
	live := e.provision("live", 1)

	fleets, err := e.p.ListFleets(e.ctx, provider.Filter{Service: key.Service, Environment: key.Environment})
	if err != nil {
		t.Fatal(err)
	}
	byToken := map[string]contract.Fleet{}
	for _, f := range fleets {
		byToken[f.Token] = f
	}
	for _, tok := range []string{"crashed-late", "crashed-early", "live"} {
		f, ok := byToken[tok]
		if !ok {
			t.Fatalf("listed %+v, want a fleet of token %s", fleets, tok)
		}
		if f.ID != aws.FleetID(tok) || f.Service != key.Service || f.Environment != key.Environment || f.ImageID != e.ami ||
			f.Labels["rollout"] != "rollout/test/web" || f.Created.IsZero() {
			t.Fatalf("listed %+v, want fleet %s of %s with its image, labels and creation time", f, aws.FleetID(tok), key)
		}
	}
	if len(fleets) != 3 {
		t.Fatalf("listed %d fleets, want 3", len(fleets))
	}
	if other, err := e.p.ListFleets(e.ctx, provider.Filter{Service: "other"}); err != nil || len(other) != 0 {
		t.Fatalf("list of another service: %+v %v, want none", other, err)
	}
	for _, tok := range []string{"crashed-late", "crashed-early"} {
		if err := e.p.Terminate(e.ctx, aws.FleetID(tok)); err != nil {
			t.Fatalf("terminate what provision %s left: %v", tok, err)
		}
	}
	res := e.fake.Resources()
	if !reflect.DeepEqual(res["launch-template"], []string{live.ID}) || !reflect.DeepEqual(res["target-group"], []string{live.ID}) {
		t.Fatalf("after terminating the leftovers AWS holds %v, want only %s", res, live.ID)
	}
}

// 4. Routing keeps the listener's authentication in front of the forward.
func TestRoutingKeepsTheListenersAuthenticationWithFakeAWS(t *testing.T) {
	for _, auth := range []string{"oidc", "cognito"} {
		t.Run(auth, func(t *testing.T) {
			e := newFakeEnv(t, awsfake.ListenerOptions{Authenticate: auth})
			blue := e.healthy("blue", 1)
			green := e.healthy("green", 1)
			wantActions := func(what string, last string) {
				t.Helper()
				if got := e.fake.Listener(e.listener).Actions; !reflect.DeepEqual(got, []string{"authenticate-" + auth, last}) {
					t.Fatalf("%s: the listener's default actions are %v, want authenticate-%s then %s", what, got, auth, last)
				}
			}
			e.setRoute(route(backend(blue, 100)))
			wantActions("after routing to blue", "forward")
			e.setRoute(route(backend(blue, 40), backend(green, 60)))
			wantActions("after a 40/60 split", "forward")
			if got := e.fake.Listener(e.listener).Weights; !reflect.DeepEqual(got, map[string]int{blue.ID: 40, green.ID: 60}) {
				t.Fatalf("the listener forwards %v, want 40/60", got)
			}
			e.setRoute(route(backend(green, 100)))
			if err := e.p.Terminate(e.ctx, blue.ID); err != nil {
				t.Fatal(err)
			}
			wantActions("after terminating blue", "forward")
			e.setRoute(contract.Route{})
			wantActions("after an empty route", "fixed-response")
		})
	}
}

// 5. Subnets in a zone the load balancer does not enable: their instances
// would stay unused, never healthy. Open says so.
func TestOpenRefusesSubnetsTheLoadBalancerDoesNotServe(t *testing.T) {
	fake := awsfake.New(region)
	defer fake.Close()
	listener := fake.AddListener(awsfake.ListenerOptions{Zones: []string{region + "a", region + "b"}})
	cfg := testConfig(fake, listener)
	c := fake.AddSubnet(region + "c")
	cfg.Subnets = append(cfg.Subnets, c)
	_, err := aws.Open(context.Background(), cfg)
	if err == nil {
		t.Fatal("open with a subnet in a zone the load balancer does not enable: no error")
	}
	for _, want := range []string{c, region + "c", "Target.NotInUse", listener} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// 5. Terminate waits until the group's instances are gone from the target
// group (the detach is asynchronous, then they drain), and says so while it
// waits.
func TestTerminateWaitsUntilTheInstancesAreGoneWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.SetLags(awsfake.Lags{Visibility: 2, InUse: 2, Detach: 20}) // the group deregisters 100 ms after the detach
	blue := e.healthy("blue", 3)
	e.setRoute(route(backend(blue, 100)))
	green := e.healthy("green", 1)
	e.setRoute(route(backend(green, 100)))
	var mu sync.Mutex
	var progress []string
	ctx := provider.WithProgress(e.ctx, func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, msg)
	})
	if err := e.p.Terminate(ctx, blue.ID); err != nil {
		t.Fatal(err)
	}
	// The fake records a violation (checked at cleanup) when the group is
	// deleted while its instances are still registered or draining.
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 || !strings.Contains(strings.Join(progress, "\n"), "deregist") {
		t.Fatalf("terminate reported %q while it waited, want progress about the deregistration", progress)
	}
	if res := e.fake.Resources(); !reflect.DeepEqual(res["auto-scaling-group"], []string{green.ID}) {
		t.Fatalf("after terminate AWS holds %v, want only green", res)
	}
}

// 5. A retry so late that EC2 forgot the client token adopts the launch
// template by its imago:token tag.
func TestLateProvisionRetryAdoptsTheLaunchTemplateWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.Fail("CreateTargetGroup", 3, 500, "InternalFailure", "fake")
	_, err := e.p.Provision(e.ctx, e.request("late", 1))
	wantCode(t, "provision whose target group fails", err, provider.Unknown)
	e.fake.ExpireClientTokens()
	f, err := e.p.Provision(e.ctx, e.request("late", 1))
	if err != nil {
		t.Fatalf("late retry of a provision: %v", err)
	}
	if res := e.fake.Resources(); !reflect.DeepEqual(res["launch-template"], []string{f.ID}) || len(res["instance"]) != 1 {
		t.Fatalf("after the late retry AWS holds %v, want one template and one instance of %s", res, f.ID)
	}

	// The same token for another image, as late: refused, and nothing changes.
	e.fake.Fail("CreateTargetGroup", 3, 500, "InternalFailure", "fake")
	_, err = e.p.Provision(e.ctx, e.request("late-other", 1))
	wantCode(t, "provision whose target group fails", err, provider.Unknown)
	e.fake.ExpireClientTokens()
	req := e.request("late-other", 1)
	req.ImageID = e.fake.AddImage()
	before := e.fake.Resources()
	_, err = e.p.Provision(e.ctx, req)
	wantCode(t, "late retry with another image", err, provider.InvalidArgument)
	if after := e.fake.Resources(); !reflect.DeepEqual(after, before) {
		t.Fatalf("the refused retry changed AWS: %v, was %v", after, before)
	}
}

// iamPolicy is the JSON of an IAM policy document.
type iamPolicy struct {
	Statement []struct {
		Sid       string
		Effect    string
		Action    stringList
		Resource  stringList
		Condition map[string]map[string]any
	}
}

type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// 5. The IAM policy of docs/aws.md allows every call the driver makes, and
// scopes every write to imago's resources: by tag, or (listeners) by ARN.
func TestIAMPolicyInTheDocsCoversAndScopesEveryCallWithFakeAWS(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/aws.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Minimal IAM policy.*?```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/aws.md has no JSON block under \"## Minimal IAM policy\"")
	}
	var pol iamPolicy
	if err := json.Unmarshal(m[1], &pol); err != nil {
		t.Fatalf("the IAM policy of docs/aws.md is not JSON: %v", err)
	}

	// Every operation of the driver, including a late retry, a failed
	// provision, listing leftovers and a terminate.
	e := newFakeEnv(t, awsfake.ListenerOptions{Authenticate: "oidc"})
	e.cfg.IAMInstanceProfile = "arn:aws:iam::" + awsfake.Account + ":instance-profile/imago-web"
	e.fake.PropagateInstanceProfile(e.cfg.IAMInstanceProfile, 0)
	e.open()
	e.fake.Fail("CreateTargetGroup", 3, 500, "InternalFailure", "fake")
	_, _ = e.p.Provision(e.ctx, e.request("blue", 1))
	e.fake.ExpireClientTokens()
	blue := e.healthy("blue", 1)
	e.setRoute(route(backend(blue, 100)))
	green := e.healthy("green", 1)
	e.setRoute(route(backend(green, 100)))
	withRules := route(backend(green, 100), backend(blue, 0))
	withRules.Matches = []contract.MatchRoute{{Name: "canary", FleetID: blue.ID, Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}}}}
	e.setRoute(withRules)
	e.setRoute(route(backend(green, 100))) // deletes the rule
	if _, err := e.p.Route(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.ListFleets(e.ctx, provider.Filter{}); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Terminate(e.ctx, blue.ID); err != nil {
		t.Fatal(err)
	}
	e.fake.RefuseInstanceType(region+"a", "t3.small")
	_, _ = e.p.Provision(e.ctx, e.request("refused", 1))

	// What AWS checks on the driver's behalf when it creates tagged resources
	// and launches from a launch template with an instance profile.
	called := map[string]bool{"ec2:CreateTags": true, "ec2:RunInstances": true, "iam:PassRole": true,
		"elasticloadbalancing:AddTags": true, "autoscaling:CreateOrUpdateTags": true}
	for _, c := range e.fake.Calls() {
		called[c.Service+":"+c.Action] = true
	}
	scoped := func(i int) bool {
		s := pol.Statement[i]
		if len(s.Condition) > 0 {
			return true
		}
		for _, r := range s.Resource {
			if r == "*" {
				return false
			}
		}
		return len(s.Resource) > 0
	}
	hasCondition := func(i int, prefix string) bool {
		for _, kv := range pol.Statement[i].Condition {
			for k := range kv {
				if strings.HasPrefix(k, prefix) {
					return true
				}
			}
		}
		return false
	}
	listenerARN := regexp.MustCompile(`^arn:aws:elasticloadbalancing:[^:*]+:[^:*]+:listener/app/[^*/]+/[^*/]+/[^*/]+$`)
	for action := range called {
		allowed := false
		for i, s := range pol.Statement {
			if s.Effect != "Allow" || !slices.Contains(s.Action, action) {
				continue
			}
			allowed = true
			verb := action[strings.Index(action, ":")+1:]
			switch {
			case strings.HasPrefix(verb, "Describe"):
			case action == "elasticloadbalancing:ModifyListener":
				for _, r := range s.Resource {
					if !listenerARN.MatchString(r) {
						t.Errorf("statement %s lets the driver modify listeners %q: name your listeners' ARNs", s.Sid, r)
					}
				}
			case strings.HasPrefix(verb, "Create") && verb != "CreateTags" && verb != "CreateOrUpdateTags":
				if !hasCondition(i, "aws:RequestTag/imago:") {
					t.Errorf("statement %s allows %s without an aws:RequestTag/imago:* condition", s.Sid, action)
				}
			case strings.HasPrefix(verb, "Delete"), strings.HasPrefix(verb, "Modify"), strings.HasPrefix(verb, "Detach"):
				if !hasCondition(i, "aws:ResourceTag/imago:") {
					t.Errorf("statement %s allows %s without an aws:ResourceTag/imago:* condition", s.Sid, action)
				}
			default:
				if !scoped(i) {
					t.Errorf("statement %s allows %s on every resource without a condition", s.Sid, action)
				}
			}
		}
		if !allowed {
			t.Errorf("the IAM policy of docs/aws.md does not allow %s, which the driver calls", action)
		}
	}
}

// The aws driver cannot give instances an environment (only user-data could
// carry it, readable by anything on the instance): a request with env is
// refused before anything is made, naming the variables but no value.
func TestProvisionWithEnvIsRefusedWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	req := e.request("with-env", 1)
	req.Env = map[string]contract.EnvVar{"LOG_LEVEL": {Value: "debug-value"}, "DB_PASSWORD": {Secret: "file:///etc/imago/db"}}
	_, err := e.p.Provision(e.ctx, req)
	wantCode(t, "provision with env", err, provider.InvalidArgument)
	if !strings.Contains(err.Error(), "cannot give instances an environment (env: DB_PASSWORD, LOG_LEVEL)") || strings.Contains(err.Error(), "debug-value") {
		t.Fatalf("error %q: want the variables named, and no value", err)
	}
	if res := e.fake.Resources(); len(res) != 0 {
		t.Fatalf("a refused provision made %v", res)
	}
}

// 9. Header routes are listener rules after the ones people made, stickiness
// is the forward's: each match rule one http-header rule (a cookie as the
// Cookie header's *NAME=VALUE*) forwarding to the fleet's target group,
// tagged with the route's name; a route set again changes nothing, a route
// without them deletes imago's rules and leaves the others; the driver reads
// them back.
func TestHeaderRoutesAndStickinessAreListenerRulesWithFakeAWS(t *testing.T) {
	e := newFakeEnv(t)
	stable := e.healthy("stable", 1)
	canary := e.healthy("canary", 1)
	e.setRoute(route(backend(stable, 100), backend(canary, 0)))
	e.fake.AddRule(e.listener, aws.RulePriorityBase, "/admin/*") // a person's rule where imago would start

	r := route(backend(stable, 100), backend(canary, 0))
	r.Matches = []contract.MatchRoute{{Name: "canary", FleetID: canary.ID, Match: []contract.MatchRule{{Header: "X-Canary", Exact: "1"}, {Cookie: "imago-canary", Exact: "1"}}}}
	r.Stickiness = &contract.Stickiness{Cookie: aws.StickyCookie, TTL: contract.Duration(time.Hour)}
	wantCalls(t, "set a header route", e.calls(func() { e.setRoute(r) }),
		"DescribeTargetGroups", "DescribeListeners", "ModifyListener", "DescribeRules", "DescribeTags", "CreateRule", "CreateRule")
	if got := e.param("ModifyListener", "DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds"); got != "3600" {
		t.Fatalf("the forward's stickiness lasts %q s, want 3600", got)
	}
	tags := map[string]string{"imago:route": "canary", "imago:service": key.Service, "imago:environment": key.Environment}
	want := []awsfake.RuleState{
		{Priority: aws.RulePriorityBase, Conditions: []string{"path-pattern : /admin/*"}},
		{Priority: aws.RulePriorityBase + 1, Conditions: []string{"http-header X-Canary: 1"}, Forward: canary.ID, Tags: tags},
		{Priority: aws.RulePriorityBase + 2, Conditions: []string{"http-header Cookie: *imago-canary=1*"}, Forward: canary.ID, Tags: tags},
	}
	if got := e.fake.Rules(e.listener); !reflect.DeepEqual(got, want) {
		t.Fatalf("listener rules %+v, want %+v", got, want)
	}
	got, err := e.p.Route(e.ctx, key)
	if err != nil || !reflect.DeepEqual(got.RouteRules, r.RouteRules) {
		t.Fatalf("route reads back rules %+v (%v), want %+v", got.RouteRules, err, r.RouteRules)
	}

	wantCalls(t, "set the same route again", e.calls(func() { e.setRoute(r) }),
		"DescribeTargetGroups", "DescribeListeners", "ModifyListener", "DescribeRules", "DescribeTags")
	wantCalls(t, "clear the rules", e.calls(func() { e.setRoute(route(backend(stable, 100), backend(canary, 0))) }),
		"DescribeTargetGroups", "DescribeListeners", "ModifyListener", "DescribeRules", "DescribeTags", "DeleteRule", "DeleteRule")
	if got := e.param("ModifyListener", "DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled"); got != "false" {
		t.Fatalf("a route without stickiness leaves the forward's stickiness enabled=%q, want false", got)
	}
	if got := e.fake.Rules(e.listener); !reflect.DeepEqual(got, want[:1]) {
		t.Fatalf("after clearing, listener rules %+v, want only the person's %+v", got, want[:1])
	}

	bad := r
	bad.Stickiness = &contract.Stickiness{Cookie: "imago-fleet", TTL: contract.Duration(time.Hour)}
	wantCode(t, "stickiness by another cookie", e.p.SetRoute(e.ctx, key, bad), provider.InvalidArgument)
	bad.Stickiness = &contract.Stickiness{Cookie: aws.StickyCookie, TTL: contract.Duration(8 * 24 * time.Hour)}
	wantCode(t, "stickiness beyond 7 days", e.p.SetRoute(e.ctx, key, bad), provider.InvalidArgument)
	bad = r
	bad.Mirror = &contract.Mirror{FleetID: canary.ID, Percent: 50}
	wantCode(t, "a mirror", e.p.SetRoute(e.ctx, key, bad), provider.FailedPrecondition)
}
