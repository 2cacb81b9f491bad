// Package awsfake is a fake of the parts of the EC2, Auto Scaling and Elastic
// Load Balancing v2 query APIs that imago's aws provider driver calls, for tests.
//
// FakeAWS serves form-encoded "Action=..." requests over HTTP on 127.0.0.1 and
// answers in each service's XML format (EC2's <item> lists and
// <Response><Errors> errors; the query services' <XResult> wrappers, <member>
// lists and <ErrorResponse> errors), so the real aws-sdk-go-v2 clients, with
// their real retryer, talk to it through their BaseEndpoint. It does not check
// signatures. It is a fake: nothing here talks to AWS.
//
// It models what AWS documents, not what is convenient for the driver:
//
//   - Target health (ELB user guide, "Health checks for your target groups";
//     API reference, TargetHealth): a target group is health-checked only while
//     a listener's action names it, at any weight ("Health checks are performed
//     on all targets registered to a target group that is specified in a
//     listener rule"); otherwise its targets are unused (Target.NotInUse), as
//     are targets in an Availability Zone the load balancer does not enable.
//     A registered target starts initial (Elb.RegistrationInProgress), is
//     healthy after one passing check, unhealthy after UnhealthyThresholdCount
//     failures in a row, healthy again after HealthyThresholdCount passes; a
//     stopped or terminated instance is unused (Target.InvalidState); a target
//     group with health checks disabled reports unavailable
//     (Target.HealthCheckDisabled). Checks run every HealthCheckIntervalSeconds
//     against what each instance serves: GET HealthCheckPath must answer 200-299.
//   - Auto Scaling groups with HealthCheckType ELB replace an instance a target
//     group reports unhealthy once its grace period is over.
//   - Detaching a target group from a group is asynchronous: the group
//     deregisters its instances a little later, and they drain for the target
//     group's deregistration delay (default 300 s) before they are gone.
//   - A target group just taken out of a listener still lists the load
//     balancer in LoadBalancerArns, and DeleteTargetGroup still answers
//     ResourceInUse, for a while.
//   - Eventual consistency: a new Auto Scaling group and new instances are not
//     described for a moment; a failed request can be made to answer
//     Throttling; client tokens of CreateLaunchTemplate expire.
//   - Validation errors of CreateAutoScalingGroup: an instance type not offered
//     in a subnet's zone, an instance profile that IAM has not propagated yet.
//   - Listeners whose default actions authenticate (authenticate-oidc,
//     authenticate-cognito) before they forward; DescribeListeners does not
//     return the OIDC client secret, so a ModifyListener that repeats the action
//     must say UseExistingClientSecret.
//   - Listener rules (rules.go): unique priorities, the condition quotas,
//     DescribeRules with the default rule last, which DeleteRule refuses.
//
// Time runs on a scale (SetTimeUnit): one AWS second lasts one unit, so tests
// see health checks, grace periods and deregistration delays in milliseconds.
// The fake records every call, so tests can assert the exact API calls of each
// driver operation, and it records violations: what a client did that would
// hurt on AWS (terminating instances that still carry connections).
package awsfake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Account is the AWS account ID of every ARN the fake makes.
const Account = "123456789012"

// API versions, which tell the services apart (they share one endpoint).
const (
	versionEC2 = "2016-11-15"
	versionASG = "2011-01-01"
	versionELB = "2015-12-01"
)

// Service names in Call.Service.
const (
	EC2         = "ec2"
	AutoScaling = "autoscaling"
	ELBv2       = "elasticloadbalancing"
)

// Call is one API request the fake received.
type Call struct {
	Service string
	Action  string
	Params  url.Values
}

// Lags are how long (in AWS seconds, see SetTimeUnit) AWS takes to show a
// change everywhere. The defaults are short but not zero: a client must cope.
type Lags struct {
	// Visibility: a new Auto Scaling group and the instances it launches are
	// not described for this long.
	Visibility int
	// InUse: a target group taken out of a listener still lists the load
	// balancer and cannot be deleted (ResourceInUse) for this long.
	InUse int
	// Detach: a group deregisters the instances of a detached target group
	// after this long (then they drain for the deregistration delay).
	Detach int
}

// DefaultLags are the lags of a new fake.
var DefaultLags = Lags{Visibility: 2, InUse: 10, Detach: 3}

// FakeAWS is a fake EC2 + Auto Scaling + ELBv2 endpoint. Its methods are safe for
// concurrent use.
type FakeAWS struct {
	Region string

	srv  *httptest.Server
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	calls      []Call
	images     map[string]*image
	templates  map[string]*launchTemplate // by name
	tgs        map[string]*targetGroup    // by ARN
	groups     map[string]*group          // by name
	instances  map[string]*instance       // by ID
	listeners  map[string]*listener       // by ARN
	rules      map[string]*rule           // listener rules besides the default ones, by ARN (rules.go)
	lbs        map[string]*loadBalancer   // by ARN
	subnets    map[string]string          // subnet ID → Availability Zone
	profiles   map[string]time.Time       // instance profile ARN → when IAM has propagated it
	refused    map[string]bool            // "<zone>/<instance type>" not offered
	failures   map[string][]apiError      // by action: errors to answer the next calls with
	before     map[string][]func()        // by action: functions to run before the next calls
	throttle   int                        // every throttle-th request answers Throttling (0: none)
	requests   int
	violations []string
	ipSeq      int
	checks     map[string]int // health-check rounds by target group name

	holdLaunches bool
	deleteLinger bool
	unit         time.Duration
	lags         Lags
	pageSize     int
}

type apiError struct {
	status        int
	code, message string
}

type image struct {
	id, state string
	serves    []string // paths its instances answer 200 on once running
}

type launchTemplate struct {
	id, name, clientToken, fingerprint string
	imageID, instanceType, profile     string
	instanceTags                       map[string]string
	tags                               map[string]string
	created                            time.Time
}

type target struct {
	id         string
	port       int
	health     string    // initial, healthy, unhealthy: the result of the checks while in use
	passes     int       // checks passed in a row
	fails      int       // checks failed in a row
	deregister time.Time // set when the group deregisters it: it drains from then on
	drainEnd   time.Time // set with deregister
}

func (t *target) draining(now time.Time) bool {
	return !t.deregister.IsZero() && !now.Before(t.deregister)
}

type targetGroup struct {
	arn, name, protocol, vpc, targetType, healthPath string
	port                                             int
	healthEnabled                                    bool
	interval, timeout, healthy, unhealthy            int
	nextCheck                                        time.Time
	attrs                                            map[string]string
	tags                                             map[string]string
	targets                                          map[string]*target // by instance ID
	released                                         map[string]time.Time
	served                                           bool // a listener ever sent it traffic (weight > 0)
}

type group struct {
	name, arn, template, version string
	subnets                      []string
	min, max, desired            int
	tgs                          []string
	healthType                   string
	grace                        int
	tags                         []groupTag
	created, visible             time.Time
	status                       string // "" or "Delete in progress"
	members                      []string
	nextSubnet                   int
}

type groupTag struct {
	key, value string
	propagate  bool
}

type instance struct {
	id, ip, imageID, instanceType, state string // EC2 state: pending, running, shutting-down, terminated
	lifecycle, health                    string // Auto Scaling: Pending, InService, Terminating; Healthy, Unhealthy
	group, subnet, zone                  string
	tags                                 map[string]string
	serves                               map[string]bool
	launched, visible                    time.Time
}

type forward struct {
	arn    string
	weight int
}

// action is one default action of a listener.
type action struct {
	order    int
	typ      string            // forward, fixed-response, authenticate-oidc, authenticate-cognito
	forwards []forward         // forward
	sticky   map[string]string // forward: TargetGroupStickinessConfig fields
	fixed    map[string]string // fixed-response: FixedResponseConfig fields
	auth     map[string]string // authenticate-*: the config's fields (no client secret)
	secret   string            // authenticate-oidc: the client secret, never described
}

type listener struct {
	arn, lb     string
	port        int
	actions     []*action
	defaultRule string // the ARN of its default rule (DescribeRules)
}

type loadBalancer struct {
	arn, name string
	zones     []string
}

// New starts a fake for region on 127.0.0.1; Close stops it.
func New(region string) *FakeAWS {
	f := &FakeAWS{
		Region:    region,
		images:    map[string]*image{},
		templates: map[string]*launchTemplate{},
		tgs:       map[string]*targetGroup{},
		groups:    map[string]*group{},
		instances: map[string]*instance{},
		listeners: map[string]*listener{},
		rules:     map[string]*rule{},
		lbs:       map[string]*loadBalancer{},
		subnets:   map[string]string{},
		profiles:  map[string]time.Time{},
		refused:   map[string]bool{},
		failures:  map[string][]apiError{},
		before:    map[string][]func(){},
		checks:    map[string]int{},
		unit:      time.Second,
		lags:      DefaultLags,
		pageSize:  100,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	go f.run()
	return f
}

// URL is the endpoint to give the SDK clients as BaseEndpoint.
func (f *FakeAWS) URL() string { return f.srv.URL }

// Close stops the server and the fake's clock.
func (f *FakeAWS) Close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
		<-f.done
	}
	f.srv.Close()
}

// run is the fake's clock: the load balancer's health checks and the groups'
// health-based replacements, every tenth of an AWS second.
func (f *FakeAWS) run() {
	defer close(f.done)
	for {
		f.mu.Lock()
		tick := max(f.unit/10, 200*time.Microsecond)
		f.mu.Unlock()
		select {
		case <-f.stop:
			return
		case <-time.After(tick):
		}
		f.mu.Lock()
		now := time.Now()
		f.settle(now)
		f.healthChecks(now)
		f.replaceUnhealthy(now)
		f.mu.Unlock()
	}
}

// secs is n AWS seconds in real time. The caller holds f.mu.
func (f *FakeAWS) secs(n int) time.Duration { return time.Duration(n) * f.unit }

// Calls returns every call received so far, in order.
func (f *FakeAWS) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Actions returns the action names of the calls received so far, in order.
func (f *FakeAWS) Actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.Action
	}
	return out
}

// ResetCalls forgets the calls received so far.
func (f *FakeAWS) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Violations returns what the fake saw a client do that would hurt on AWS
// (e.g. deleting an Auto Scaling group whose instances still had connections).
func (f *FakeAWS) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.violations...)
}

// FailNext makes the next call of action fail with an API error (status 400 for
// client errors, 500 or 503 for server errors).
func (f *FakeAWS) FailNext(action string, status int, code, message string) {
	f.Fail(action, 1, status, code, message)
}

// Fail makes the next n calls of action fail with an API error. The SDK retries
// throttling and 5xx errors on its own: to make an operation fail with one,
// fail more calls than the client attempts.
func (f *FakeAWS) Fail(action string, n, status int, code, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures[action] = append(f.failures[action], apiError{status, code, message})
	}
}

// ThrottleEvery makes every n-th request (of any action) answer 400
// Throttling, as AWS does when an account calls too fast; 0 stops it.
func (f *FakeAWS) ThrottleEvery(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle = n
}

// BeforeNext runs fn before the fake handles the next call of action, without
// holding the fake's lock: fn may call the fake (e.g. to play a concurrent client
// that wins a race).
func (f *FakeAWS) BeforeNext(action string, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before[action] = append(f.before[action], fn)
}

// HoldLaunches makes new Auto Scaling groups launch no instance until Boot
// (as when EC2 is slow to launch).
func (f *FakeAWS) HoldLaunches(hold bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdLaunches = hold
}

// LingerDeletes keeps deleted Auto Scaling groups listed with status "Delete in
// progress" and their instances Terminating, as AWS does for minutes.
func (f *FakeAWS) LingerDeletes(linger bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleteLinger = linger
}

// SetTimeUnit sets how long one AWS second lasts in the fake (default one
// second): health-check intervals, grace periods, deregistration delays and
// lags are counted in it.
func (f *FakeAWS) SetTimeUnit(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unit = d
}

// SetLags sets how long AWS takes to show changes (see Lags).
func (f *FakeAWS) SetLags(l Lags) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lags = l
}

// SetPageSize caps the page size of DescribeAutoScalingGroups (default 100, as AWS).
func (f *FakeAWS) SetPageSize(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pageSize = n
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// AddImage registers an available AMI whose instances answer 200 on / and
// /healthz once running, and returns its ID.
func (f *FakeAWS) AddImage() string { return f.AddImageServing("/", "/healthz") }

// AddImageServing registers an available AMI whose instances answer 200 on
// paths (and 404 on anything else) once running, and returns its ID.
func (f *FakeAWS) AddImageServing(paths ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "ami-" + randHex(17)
	f.images[id] = &image{id: id, state: "available", serves: append([]string(nil), paths...)}
	return id
}

// SetImageState sets the state of an AMI (available, pending, failed, ...).
func (f *FakeAWS) SetImageState(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if im, ok := f.images[id]; ok {
		im.state = state
	}
}

// SetServing makes instance id answer 200 on paths only (none: it answers
// nothing, as a hung or crashed service).
func (f *FakeAWS) SetServing(id string, paths ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in, ok := f.instances[id]; ok {
		in.serves = map[string]bool{}
		for _, p := range paths {
			in.serves[p] = true
		}
	}
}

// AddSubnet makes a subnet in Availability Zone zone and returns its ID.
func (f *FakeAWS) AddSubnet(zone string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "subnet-" + randHex(17)
	f.subnets[id] = zone
	return id
}

// RefuseInstanceType makes zone not offer instance type typ: a group that
// would launch it there fails with a ValidationError, as AWS answers.
func (f *FakeAWS) RefuseInstanceType(zone, typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused[zone+"/"+typ] = true
}

// PropagateInstanceProfile makes instance profile arn usable by Auto Scaling
// after secs AWS seconds (IAM is eventually consistent); before, a group whose
// launch template names it fails with "Invalid IAM Instance Profile". An
// instance profile the fake never heard of is never usable.
func (f *FakeAWS) PropagateInstanceProfile(arn string, secs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.profiles[arn] = time.Now().Add(f.secs(secs))
}

// ExpireClientTokens forgets the client tokens of launch templates, as EC2
// does some time after a call: a late retry gets "already exists".
func (f *FakeAWS) ExpireClientTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, lt := range f.templates {
		lt.clientToken = ""
	}
}

// ListenerOptions shape a listener AddListener makes.
type ListenerOptions struct {
	// Zones are the Availability Zones the load balancer enables; default
	// <region>a and <region>b.
	Zones []string
	// Authenticate, "oidc" or "cognito", puts an authenticate action in front
	// of the default action, as a listener behind single sign-on has.
	Authenticate string
}

// AddListener makes an application load balancer with an HTTP listener on port
// 80 whose default action answers 404, and returns the listener's ARN.
func (f *FakeAWS) AddListener(opts ...ListenerOptions) string {
	var o ListenerOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if len(o.Zones) == 0 {
		o.Zones = []string{f.Region + "a", f.Region + "b"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lbID := randHex(16)
	lb := &loadBalancer{name: "imago-test-" + lbID[:6], zones: o.Zones}
	lb.arn = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/app/%s/%s", f.Region, Account, lb.name, lbID)
	f.lbs[lb.arn] = lb
	arn := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:listener/app/%s/%s/%s", f.Region, Account, lb.name, lbID, randHex(16))
	l := &listener{arn: arn, lb: lb.arn, port: 80, defaultRule: ruleARN(arn)}
	switch o.Authenticate {
	case "oidc":
		l.actions = append(l.actions, &action{order: 1, typ: "authenticate-oidc", secret: "fake-oidc-secret", auth: map[string]string{
			"Issuer": "https://idp.example.com", "AuthorizationEndpoint": "https://idp.example.com/authorize",
			"TokenEndpoint": "https://idp.example.com/token", "UserInfoEndpoint": "https://idp.example.com/userinfo",
			"ClientId": "imago-test", "OnUnauthenticatedRequest": "authenticate", "Scope": "openid", "SessionTimeout": "604800",
			"SessionCookieName": "AWSELBAuthSessionCookie",
		}})
	case "cognito":
		l.actions = append(l.actions, &action{order: 1, typ: "authenticate-cognito", auth: map[string]string{
			"UserPoolArn":      fmt.Sprintf("arn:aws:cognito-idp:%s:%s:userpool/%s_abcdefghi", f.Region, Account, f.Region),
			"UserPoolClientId": "imagotestclient", "UserPoolDomain": "imago-test", "OnUnauthenticatedRequest": "authenticate",
			"Scope": "openid", "SessionTimeout": "604800", "SessionCookieName": "AWSELBAuthSessionCookie",
		}})
	}
	l.actions = append(l.actions, &action{order: len(l.actions) + 1, typ: "fixed-response",
		fixed: map[string]string{"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "not found"}})
	f.listeners[arn] = l
	return arn
}

// DeleteListener deletes the listener arn (as someone might by hand).
func (f *FakeAWS) DeleteListener(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.listeners[arn]; ok {
		before := f.forwardedBy(l)
		l.actions = nil
		for _, r := range f.listenerRules(l) {
			delete(f.rules, r.arn)
		}
		f.listenerChanged(l, before, time.Now())
		delete(f.listeners, arn)
	}
}

// ListenerState is what a listener's default actions do.
type ListenerState struct {
	// Weights of the forwarded target groups by target group name; nil when the
	// last action is a fixed response.
	Weights map[string]int
	// FixedStatus is the status code of a fixed-response action, "" for forward.
	FixedStatus string
	// Actions are the types of the default actions, in order.
	Actions []string
}

// Listener returns the default actions of the listener arn.
func (f *FakeAWS) Listener(arn string) ListenerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.listeners[arn]
	if !ok {
		return ListenerState{}
	}
	var st ListenerState
	for _, a := range l.actions {
		st.Actions = append(st.Actions, a.typ)
		switch a.typ {
		case "fixed-response":
			st.FixedStatus = a.fixed["StatusCode"]
		case "forward":
			st.Weights = map[string]int{}
			for _, fw := range a.forwards {
				name := fw.arn
				if tg, ok := f.tgs[fw.arn]; ok {
					name = tg.name
				}
				st.Weights[name] = fw.weight
			}
		}
	}
	return st
}

// TargetHealth returns the state of every target of the target group named
// name, by instance ID, as DescribeTargetHealth reports it.
func (f *FakeAWS) TargetHealth(name string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.settle(now)
	out := map[string]string{}
	for _, tg := range f.tgs {
		if tg.name == name {
			for id, t := range tg.targets {
				out[id], _, _ = f.targetState(tg, t, now)
			}
		}
	}
	return out
}

// HealthChecks returns how many rounds of health checks the load balancer
// ran on the target group named name.
func (f *FakeAWS) HealthChecks(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks[name]
}

// Members returns the IDs of the instances of the Auto Scaling group name,
// sorted (replaced instances are no longer members).
func (f *FakeAWS) Members(name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[name]
	if !ok {
		return nil
	}
	out := append([]string(nil), g.members...)
	sort.Strings(out)
	return out
}

// Resources lists what exists, by kind ("launch-template", "target-group",
// "auto-scaling-group", "instance" (not terminated)), each sorted by name or ID.
func (f *FakeAWS) Resources() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for n := range f.templates {
		out["launch-template"] = append(out["launch-template"], n)
	}
	for _, tg := range f.tgs {
		out["target-group"] = append(out["target-group"], tg.name)
	}
	for n := range f.groups {
		out["auto-scaling-group"] = append(out["auto-scaling-group"], n)
	}
	for id, in := range f.instances {
		if in.state != "terminated" {
			out["instance"] = append(out["instance"], id)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// Boot launches what the group named name has not launched yet and makes every
// instance of it running and InService, serving what its image serves (as once
// the instances booted). Whether the load balancer finds them healthy is up to
// its health checks.
func (f *FakeAWS) Boot(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[name]
	if !ok || g.status != "" {
		return fmt.Errorf("fake AWS: no Auto Scaling group %s", name)
	}
	f.launch(g, time.Now())
	for _, id := range g.members {
		in := f.instances[id]
		if in.state == "pending" {
			in.state, in.lifecycle = "running", "InService"
		}
	}
	return nil
}

// launch starts the instances g lacks (unless launches are held) and registers
// them in g's target groups. The caller holds f.mu.
func (f *FakeAWS) launch(g *group, now time.Time) {
	lt := f.templates[g.template]
	for len(g.members) < g.desired && lt != nil && len(g.subnets) > 0 {
		f.ipSeq++
		subnet := g.subnets[g.nextSubnet%len(g.subnets)]
		g.nextSubnet++
		in := &instance{
			id: "i-" + randHex(17), ip: fmt.Sprintf("10.0.%d.%d", f.ipSeq/250, f.ipSeq%250+4),
			imageID: lt.imageID, instanceType: lt.instanceType, state: "pending",
			lifecycle: "Pending", health: "Healthy", group: g.name, subnet: subnet, zone: f.subnets[subnet],
			tags: map[string]string{}, serves: map[string]bool{}, launched: now.UTC(), visible: now.Add(f.secs(f.lags.Visibility)),
		}
		if im, ok := f.images[lt.imageID]; ok {
			for _, p := range im.serves {
				in.serves[p] = true
			}
		}
		for k, v := range lt.instanceTags {
			in.tags[k] = v
		}
		for _, t := range g.tags {
			if t.propagate {
				in.tags[t.key] = t.value
			}
		}
		f.instances[in.id] = in
		g.members = append(g.members, in.id)
		for _, arn := range g.tgs {
			tg := f.tgs[arn]
			tg.targets[in.id] = &target{id: in.id, port: tg.port, health: "initial"}
		}
	}
}

// users returns the load balancers whose listeners name target group arn in an
// action, at any weight. The caller holds f.mu.
func (f *FakeAWS) users(arn string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range f.listeners {
		if f.forwardedBy(l)[arn] && !seen[l.lb] {
			seen[l.lb] = true
			out = append(out, l.lb)
		}
	}
	sort.Strings(out)
	return out
}

// lbArns is what DescribeTargetGroups reports in LoadBalancerArns: the users,
// and for a while the load balancers that stopped using it. The caller holds f.mu.
func (f *FakeAWS) lbArns(tg *targetGroup, now time.Time) []string {
	out := f.users(tg.arn)
	for lb, until := range tg.released {
		if now.Before(until) && !slices.Contains(out, lb) {
			out = append(out, lb)
		}
	}
	sort.Strings(out)
	return out
}

// listenerChanged notes which target groups a listener change released (for
// the in-use lag) and which now serve traffic. The caller holds f.mu.
func (f *FakeAWS) listenerChanged(l *listener, before map[string]bool, now time.Time) {
	after := f.forwardedBy(l)
	for _, a := range l.actions {
		for _, fw := range a.forwards {
			if fw.weight > 0 {
				if tg, ok := f.tgs[fw.arn]; ok {
					tg.served = true
				}
			}
		}
	}
	for _, r := range f.listenerRules(l) { // a rule sends its matches whatever the weights
		for _, a := range r.actions {
			for _, fw := range a.forwards {
				if tg, ok := f.tgs[fw.arn]; ok && fw.weight > 0 {
					tg.served = true
				}
			}
		}
	}
	for arn := range before {
		if tg, ok := f.tgs[arn]; ok && !after[arn] {
			tg.released[l.lb] = now.Add(f.secs(f.lags.InUse))
		}
	}
}

// settle applies what time did: deregistrations that start, drains that end.
// The caller holds f.mu.
func (f *FakeAWS) settle(now time.Time) {
	for _, tg := range f.tgs {
		for id, t := range tg.targets {
			if !t.drainEnd.IsZero() && !now.Before(t.drainEnd) {
				delete(tg.targets, id)
			}
		}
	}
}

// targetState is what DescribeTargetHealth says of t. The caller holds f.mu.
func (f *FakeAWS) targetState(tg *targetGroup, t *target, now time.Time) (state, reason, desc string) {
	in := f.instances[t.id]
	switch {
	case t.draining(now):
		return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
	case in != nil && (in.state == "stopped" || in.state == "terminated" || in.state == "shutting-down"):
		return "unused", "Target.InvalidState", "Target is in the terminated state"
	case len(f.users(tg.arn)) == 0:
		return "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
	case in != nil && !f.zoneEnabled(tg, in.zone):
		return "unused", "Target.NotInUse", "Target is in an Availability Zone that is not enabled for the load balancer"
	case !tg.healthEnabled:
		return "unavailable", "Target.HealthCheckDisabled", "Health checks are disabled for the target group"
	case t.health == "initial":
		return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
	case t.health == "unhealthy":
		return "unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]"
	}
	return t.health, "", ""
}

// zoneEnabled reports whether a load balancer that uses tg enables zone. The
// caller holds f.mu.
func (f *FakeAWS) zoneEnabled(tg *targetGroup, zone string) bool {
	for _, arn := range f.users(tg.arn) {
		if lb, ok := f.lbs[arn]; ok && slices.Contains(lb.zones, zone) {
			return true
		}
	}
	return false
}

// healthChecks runs the load balancer's health checks that are due: every
// target group a listener names, each interval. The caller holds f.mu.
func (f *FakeAWS) healthChecks(now time.Time) {
	for _, tg := range f.tgs {
		if len(f.users(tg.arn)) == 0 || !tg.healthEnabled {
			for _, t := range tg.targets { // unused: checks start over when it is used again
				t.health, t.passes, t.fails = "initial", 0, 0
			}
			tg.nextCheck = time.Time{}
			continue
		}
		if tg.nextCheck.IsZero() {
			tg.nextCheck = now // a target group just put in a listener is checked at once
		}
		if now.Before(tg.nextCheck) {
			continue
		}
		tg.nextCheck = now.Add(f.secs(tg.interval))
		f.checks[tg.name]++
		for _, t := range tg.targets {
			in := f.instances[t.id]
			if t.draining(now) || in == nil || !f.zoneEnabled(tg, in.zone) {
				continue
			}
			if in.state != "running" {
				t.passes = 0 // a pending instance stays initial; a stopped one is unused
				continue
			}
			if in.serves[tg.healthPath] {
				t.passes, t.fails = t.passes+1, 0
			} else {
				t.passes, t.fails = 0, t.fails+1
			}
			switch {
			case t.health == "initial" && t.passes >= 1: // "it must pass one health check to be considered healthy"
				t.health = "healthy"
			case t.health == "unhealthy" && t.passes >= tg.healthy:
				t.health = "healthy"
			case t.health != "unhealthy" && t.fails >= tg.unhealthy:
				t.health = "unhealthy"
			}
		}
	}
}

// replaceUnhealthy plays Auto Scaling's ELB health check: an InService instance
// that a target group of its group reports unhealthy, past the grace period, is
// terminated and replaced. The caller holds f.mu.
func (f *FakeAWS) replaceUnhealthy(now time.Time) {
	for _, g := range f.groups {
		if g.status != "" || g.healthType != "ELB" {
			continue
		}
		var keep []string
		replaced := false
		for _, id := range g.members {
			in := f.instances[id]
			unhealthy := false
			for _, arn := range g.tgs {
				if t, ok := f.tgs[arn].targets[id]; ok && in.lifecycle == "InService" && now.Sub(in.launched) >= f.secs(g.grace) {
					if st, _, _ := f.targetState(f.tgs[arn], t, now); st == "unhealthy" {
						unhealthy = true
					}
				}
			}
			if !unhealthy {
				keep = append(keep, id)
				continue
			}
			in.health, in.lifecycle, in.state = "Unhealthy", "Terminated", "terminated"
			for _, arn := range g.tgs {
				f.deregister(f.tgs[arn], id, now, 0)
			}
			replaced = true
		}
		if replaced {
			g.members = keep
			if !f.holdLaunches {
				f.launch(g, now)
			}
		}
	}
}

// deregister starts draining target id of tg after lag AWS seconds. The caller
// holds f.mu.
func (f *FakeAWS) deregister(tg *targetGroup, id string, now time.Time, lag int) {
	t, ok := tg.targets[id]
	if !ok || !t.deregister.IsZero() {
		return
	}
	t.deregister = now.Add(f.secs(lag))
	t.drainEnd = t.deregister.Add(f.drainDelay(tg))
}

func (f *FakeAWS) drainDelay(tg *targetGroup) time.Duration {
	secs := 300
	if v, ok := tg.attrs["deregistration_delay.timeout_seconds"]; ok {
		secs, _ = strconv.Atoi(v)
	}
	return f.secs(secs)
}

// serve dispatches a request to its service by the API version it names.
func (f *FakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := r.PostForm
	action := p.Get("Action")
	var svc string
	switch p.Get("Version") {
	case versionEC2:
		svc = EC2
	case versionASG:
		svc = AutoScaling
	case versionELB:
		svc = ELBv2
	default:
		http.Error(w, "fake AWS: unknown API version "+p.Get("Version"), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	var hook func()
	if q := f.before[action]; len(q) > 0 {
		hook, f.before[action] = q[0], q[1:]
	}
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Service: svc, Action: action, Params: p})
	f.requests++
	if q := f.failures[action]; len(q) > 0 {
		f.failures[action] = q[1:]
		writeError(w, svc, q[0])
		return
	}
	if f.throttle > 0 && f.requests%f.throttle == 0 {
		writeError(w, svc, apiError{http.StatusBadRequest, "Throttling", "Rate exceeded"})
		return
	}
	now := time.Now()
	f.settle(now)
	var res *node
	var err *apiError
	switch svc {
	case EC2:
		res, err = f.ec2(action, p, now)
	case AutoScaling:
		res, err = f.autoscaling(action, p, now)
	default:
		res, err = f.elb(action, p, now)
	}
	if err != nil {
		writeError(w, svc, *err)
		return
	}
	writeResult(w, svc, action, res)
}

func fail(code, format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, code, fmt.Sprintf(format, args...)}
}

// Form helpers. EC2 flattens lists (Name.1, Name.2); the query services nest
// them in members (Name.member.1).

// list returns the values of the list prefix (prefix.N or prefix.member.N) in order.
func list(p url.Values, prefix string) []string {
	var out []string
	for _, i := range indexes(p, prefix) {
		out = append(out, p.Get(i))
	}
	return out
}

// indexes returns the element prefixes of list prefix ("prefix.member.1", ...),
// in index order.
func indexes(p url.Values, prefix string) []string {
	type idx struct {
		n   int
		key string
	}
	seen := map[string]bool{}
	var found []idx
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		base := prefix + "."
		if m, ok := strings.CutPrefix(rest, "member."); ok {
			rest, base = m, prefix+".member."
		}
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || seen[base+num] {
			continue
		}
		seen[base+num] = true
		found = append(found, idx{n, base + num})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].n < found[j].n })
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = f.key
	}
	return out
}

// fields returns the scalar parameters directly under prefix (prefix.Name=v).
func fields(p url.Values, prefix string) map[string]string {
	out := map[string]string{}
	for k := range p {
		if rest, ok := strings.CutPrefix(k, prefix+"."); ok && !strings.Contains(rest, ".") {
			out[rest] = p.Get(k)
		}
	}
	return out
}

// tags returns the Key/Value pairs of list prefix.
func tags(p url.Values, prefix string) map[string]string {
	out := map[string]string{}
	for _, i := range indexes(p, prefix) {
		out[p.Get(i+".Key")] = p.Get(i + ".Value")
	}
	return out
}

// fingerprint is a canonical form of the parameters under prefix, to compare requests.
func fingerprint(p url.Values, prefixes ...string) string {
	var keys []string
	for k := range p {
		for _, pre := range prefixes {
			if k == pre || strings.HasPrefix(k, pre+".") {
				keys = append(keys, k+"="+p.Get(k))
			}
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, "&")
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// page returns the slice [start, end) of n items a paginated Describe call
// answers: at most size, from the position its token (prefix + number) names.
func page(n, size int, token, prefix string) (start, end int, err *apiError) {
	if token != "" {
		start, perr := strconv.Atoi(strings.TrimPrefix(token, prefix))
		if perr != nil || start < 0 || start > n {
			return 0, 0, fail("InvalidNextToken", "The token %q is invalid.", token)
		}
		return start, min(start+size, n), nil
	}
	return 0, min(size, n), nil
}
