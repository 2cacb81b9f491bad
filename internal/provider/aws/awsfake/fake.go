// Package awsfake is a fake of the parts of the EC2, Auto Scaling and Elastic
// Load Balancing v2 query APIs that imago's aws provider driver calls, for tests.
//
// FakeAWS serves form-encoded "Action=..." requests over HTTP on 127.0.0.1 and
// answers in each service's XML format (EC2's <item> lists and
// <Response><Errors> errors; the query services' <XResult> wrappers, <member>
// lists and <ErrorResponse> errors), so the real aws-sdk-go-v2 clients talk to
// it through their BaseEndpoint. It keeps state like AWS does (AMIs, launch
// templates, target groups with registered targets and their health, Auto
// Scaling groups launching instances, listeners with weighted forward actions),
// enforces the rules the driver depends on (idempotency by client token and by
// name, a target group in use cannot be deleted, deregistered targets drain for
// the deregistration delay) and records every call, so tests can assert the
// exact API call sequence of each driver operation. It does not check
// signatures. It is a fake: nothing here talks to AWS.
package awsfake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// FakeAWS is a fake EC2 + Auto Scaling + ELBv2 endpoint. Its methods are safe for
// concurrent use.
type FakeAWS struct {
	Region string

	srv *httptest.Server

	mu         sync.Mutex
	calls      []Call
	images     map[string]*image
	templates  map[string]*launchTemplate // by name
	tgs        map[string]*targetGroup    // by ARN
	groups     map[string]*group          // by name
	instances  map[string]*instance       // by ID
	listeners  map[string]*listener       // by ARN
	failures   map[string][]apiError      // by action: errors to answer the next calls with
	before     map[string][]func()        // by action: functions to run before the next calls
	violations []string
	ipSeq      int

	holdLaunches bool
	deleteLinger bool
	drainUnit    time.Duration
	pageSize     int
}

type apiError struct {
	status        int
	code, message string
}

type image struct {
	id, state string
}

type launchTemplate struct {
	id, name, clientToken, fingerprint string
	imageID, instanceType              string
	instanceTags                       map[string]string
	tags                               map[string]string
	created                            time.Time
}

type target struct {
	id       string
	port     int
	health   string    // initial, healthy, unhealthy (while registered)
	drainEnd time.Time // set while draining
}

type targetGroup struct {
	arn, name, protocol, vpc, targetType, healthPath string
	port                                             int
	attrs                                            map[string]string
	tags                                             map[string]string
	targets                                          map[string]*target // by instance ID
}

type group struct {
	name, arn, template, version, subnets string
	min, max, desired                     int
	tgs                                   []string
	tags                                  []groupTag
	created                               time.Time
	status                                string // "" or "Delete in progress"
	members                               []string
}

type groupTag struct {
	key, value string
	propagate  bool
}

type instance struct {
	id, ip, imageID, instanceType, state string // EC2 state: pending, running, terminated
	lifecycle, health                    string // Auto Scaling: Pending, InService, Terminating; Healthy, Unhealthy
	group                                string
	tags                                 map[string]string
	launched                             time.Time
}

type forward struct {
	arn    string
	weight int
}

type listener struct {
	arn, lb  string
	port     int
	forwards []forward // forward action's target groups, nil for a fixed response
	fixed    string    // fixed response status code
	fixedMsg string
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
		failures:  map[string][]apiError{},
		before:    map[string][]func(){},
		drainUnit: time.Second,
		pageSize:  100,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the endpoint to give the SDK clients as BaseEndpoint.
func (f *FakeAWS) URL() string { return f.srv.URL }

// Close stops the server.
func (f *FakeAWS) Close() { f.srv.Close() }

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
// (e.g. deleting an Auto Scaling group whose instances were still draining).
func (f *FakeAWS) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.violations...)
}

// FailNext makes the next call of action fail with an API error (status 400 for
// client errors, 500 or 503 for server errors).
func (f *FakeAWS) FailNext(action string, status int, code, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[action] = append(f.failures[action], apiError{status, code, message})
}

// BeforeNext runs fn before the fake handles the next call of action, without
// holding the fake's lock: fn may call the fake (e.g. to play a concurrent client
// that wins a race).
func (f *FakeAWS) BeforeNext(action string, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before[action] = append(f.before[action], fn)
}

// HoldLaunches makes new Auto Scaling groups launch no instance until
// MakeHealthy (as when EC2 is slow to launch).
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

// SetDrainUnit sets how long one second of a target group's deregistration delay
// lasts in the fake (default one second), so tests drain quickly.
func (f *FakeAWS) SetDrainUnit(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drainUnit = d
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

// AddImage registers an available AMI and returns its ID.
func (f *FakeAWS) AddImage() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "ami-" + randHex(17)
	f.images[id] = &image{id: id, state: "available"}
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

// AddListener makes an application load balancer with an HTTP listener on port
// 80 whose default action answers 404, and returns the listener's ARN.
func (f *FakeAWS) AddListener() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	lbID := randHex(16)
	lb := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/app/imago-test/%s", f.Region, Account, lbID)
	arn := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:listener/app/imago-test/%s/%s", f.Region, Account, lbID, randHex(16))
	f.listeners[arn] = &listener{arn: arn, lb: lb, port: 80, fixed: "404", fixedMsg: "not found"}
	return arn
}

// ListenerState is what a listener's default action does.
type ListenerState struct {
	// Weights of the forwarded target groups by target group name; nil when the
	// action is a fixed response.
	Weights map[string]int
	// FixedStatus is the status code of a fixed-response action, "" for forward.
	FixedStatus string
}

// Listener returns the default action of the listener arn.
func (f *FakeAWS) Listener(arn string) ListenerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.listeners[arn]
	if !ok {
		return ListenerState{}
	}
	if l.forwards == nil {
		return ListenerState{FixedStatus: l.fixed}
	}
	st := ListenerState{Weights: map[string]int{}}
	for _, fw := range l.forwards {
		name := fw.arn
		if tg, ok := f.tgs[fw.arn]; ok {
			name = tg.name
		}
		st.Weights[name] = fw.weight
	}
	return st
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

// MakeHealthy launches what the group named name has not launched yet and makes
// every instance of it running, InService and Healthy, and healthy in its target
// groups (as once the instances booted and pass the health check).
func (f *FakeAWS) MakeHealthy(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[name]
	if !ok || g.status != "" {
		return fmt.Errorf("fake AWS: no Auto Scaling group %s", name)
	}
	f.launch(g)
	for _, id := range g.members {
		in := f.instances[id]
		in.state, in.lifecycle, in.health = "running", "InService", "Healthy"
		for _, arn := range g.tgs {
			if t, ok := f.tgs[arn].targets[id]; ok && t.drainEnd.IsZero() {
				t.health = "healthy"
			}
		}
	}
	return nil
}

// SetTargetHealth sets the target group health of instance id in every target
// group it is registered in (healthy, unhealthy, initial).
func (f *FakeAWS) SetTargetHealth(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tg := range f.tgs {
		if t, ok := tg.targets[id]; ok && t.drainEnd.IsZero() {
			t.health = state
		}
	}
}

// launch starts the instances g lacks (unless launches are held) and registers
// them in g's target groups. The caller holds f.mu.
func (f *FakeAWS) launch(g *group) {
	lt := f.templates[g.template]
	for len(g.members) < g.desired && lt != nil {
		f.ipSeq++
		in := &instance{
			id: "i-" + randHex(17), ip: fmt.Sprintf("10.0.%d.%d", f.ipSeq/250, f.ipSeq%250+4),
			imageID: lt.imageID, instanceType: lt.instanceType, state: "pending",
			lifecycle: "Pending", health: "Healthy", group: g.name, tags: map[string]string{}, launched: time.Now().UTC(),
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

// inUse returns the load balancers whose listeners forward to target group arn.
func (f *FakeAWS) inUse(arn string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range f.listeners {
		for _, fw := range l.forwards {
			if fw.arn == arn && !seen[l.lb] {
				seen[l.lb] = true
				out = append(out, l.lb)
			}
		}
	}
	sort.Strings(out)
	return out
}

// expire forgets targets whose draining ended. The caller holds f.mu.
func (f *FakeAWS) expire(tg *targetGroup) {
	now := time.Now()
	for id, t := range tg.targets {
		if !t.drainEnd.IsZero() && !now.Before(t.drainEnd) {
			delete(tg.targets, id)
		}
	}
}

func (f *FakeAWS) drainDelay(tg *targetGroup) time.Duration {
	secs := 300
	if v, ok := tg.attrs["deregistration_delay.timeout_seconds"]; ok {
		secs, _ = strconv.Atoi(v)
	}
	return time.Duration(secs) * f.drainUnit
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
	if q := f.failures[action]; len(q) > 0 {
		f.failures[action] = q[1:]
		writeError(w, svc, q[0])
		return
	}
	var res *node
	var err *apiError
	switch svc {
	case EC2:
		res, err = f.ec2(action, p)
	case AutoScaling:
		res, err = f.autoscaling(action, p)
	default:
		res, err = f.elb(action, p)
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
