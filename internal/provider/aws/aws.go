// Package aws is imago's "aws" provider driver: AMIs, launch templates, Auto
// Scaling groups and Application Load Balancer target groups (aws-sdk-go-v2).
//
// What one fleet is on AWS, every resource named after the fleet ID (derived
// from the provision token, so a retried Provision adopts what an earlier
// attempt made):
//
//	launch template <fleetID>   version 1: the AMI, instance type, security groups
//	target group    <fleetID>   HTTP on Config.Port, health check from the request (the spec)
//	Auto Scaling group <fleetID> min = max = desired = size, registered in the target group
//
// All three carry the tags imago:service, imago:environment, imago:token,
// imago:image and imago:fleet, plus one imago:<key> tag per request label (the
// rollout sets imago:rollout and imago:run); instances get them through the
// launch template and the group. ListFleets finds fleets by these tags on all
// three kinds, so what a provision that died half way left is listed too.
//
// The router of a service and environment is an ALB listener (Config.Listeners).
// Its last default action forwards to the fleets' target groups with the
// route's weights (actions before it, such as authenticate-oidc, stay); an
// empty route answers 503 (a fixed response). Provision puts the new target
// group in that forward at weight 0: the load balancer health-checks only
// target groups a listener names, and a fleet must be healthy by the load
// balancer before it takes traffic. An instance is running when its group
// says InService and the load balancer says healthy; SetRoute refuses to give
// weight to a target group without a healthy target. A fleet that leaves the
// route stays in the forward at weight 0, checked, until it is terminated.
//
// Terminate takes the target group out of the listener, waits until the load
// balancer lets go of it, detaches it from the group, waits until the group's
// instances are gone from it (the detach is asynchronous, then they drain for
// the deregistration delay), reporting progress (provider.ReportProgress),
// then deletes the group (ForceDelete), the launch template and the target
// group. It refuses to touch a fleet the listener still sends traffic to.
package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provider"
)

// Tag keys imago puts on every resource of a fleet.
const (
	TagService     = "imago:service"
	TagEnvironment = "imago:environment"
	TagToken       = "imago:token"
	TagImage       = "imago:image"
	TagFleet       = "imago:fleet"
	// TagPrefix prefixes the tag of each request label: label rollout is tag imago:rollout.
	TagPrefix = "imago:"
)

// reserved are the tag keys labels cannot use.
var reserved = map[string]bool{TagService: true, TagEnvironment: true, TagToken: true, TagImage: true, TagFleet: true}

// Defaults of Config fields.
const (
	DefaultPort                = 80
	DefaultHealthCheckPath     = "/healthz"
	DefaultDeregistrationDelay = 30 * time.Second
	DefaultPollInterval        = 5 * time.Second
	DefaultHealthCheckGrace    = 300 * time.Second
	DefaultIAMPropagation      = 2 * time.Minute // Terraform's propagationTimeout for the same retry
)

// How long the driver waits for AWS to let go of a target group (Terraform
// retries DeleteTargetGroup on ResourceInUse for as long), and to show a
// group it just created.
const (
	releaseTimeout    = 2 * time.Minute
	visibilityTimeout = 30 * time.Second
)

// ImageSource resolves imago catalog image IDs to AMIs; *catalog.Catalog
// satisfies it. An image baked with an amazon-* Packer builder records its AMIs
// by region in Image.Artifacts.
type ImageSource interface {
	Get(ctx context.Context, id string) (contract.Image, error)
}

// Config configures the aws driver.
type Config struct {
	// Region is the AWS region fleets run in (required), e.g. "eu-west-1".
	Region string
	// VPCID is the VPC of the target groups (required).
	VPCID string
	// Subnets are the subnets the Auto Scaling groups launch instances in (at
	// least one; several spread a fleet over availability zones).
	Subnets []string
	// SecurityGroups are attached to every instance (optional: the VPC default).
	SecurityGroups []string
	// InstanceType of every instance (required), e.g. "t3.small".
	InstanceType string
	// KeyName is the EC2 key pair for SSH access (optional).
	KeyName string
	// IAMInstanceProfile is the instance profile ARN instances run with (optional).
	IAMInstanceProfile string
	// UserData is the instances' user data, base64-encoded (optional).
	UserData string
	// Port is the port instances serve on: the target groups' port and the port
	// of every Instance.Address. Default 80.
	Port int
	// HealthCheckPath is the target groups' health check when a request does not
	// carry one (ProvisionRequest.Health). Default "/healthz".
	HealthCheckPath string
	// HealthCheckGracePeriod is how long a new instance's failed health checks do
	// not get it replaced. Default 300s.
	HealthCheckGracePeriod time.Duration
	// DeregistrationDelay is the target groups' deregistration delay: how long the
	// load balancer drains a terminated fleet's connections. Default 30s.
	DeregistrationDelay time.Duration
	// Listeners maps a router ("<environment>/<service>", RouteKey.String()) to
	// the ARN of the ALB listener that serves it. A key with no listener has no
	// router: Route reports an empty route and SetRoute fails.
	Listeners map[string]string
	// Images resolves catalog image IDs to AMIs (optional). Without it, and for
	// image IDs of the form "ami-...", the image ID is the AMI ID.
	Images ImageSource
	// Endpoint overrides the endpoint of EC2, Auto Scaling and Elastic Load
	// Balancing (tests point it at a fake; also for VPC endpoints or proxies).
	Endpoint string
	// Credentials overrides the default credential chain (environment, shared
	// files, instance role).
	Credentials awssdk.CredentialsProvider
	// HTTPClient overrides the SDK's HTTP client.
	HTTPClient *http.Client
	// MaxAttempts is how often the SDK tries a call (retrying throttling and 5xx);
	// 0 means the SDK's default (3), 1 disables retries.
	MaxAttempts int
	// RetryMaxBackoff caps the SDK's backoff between attempts; 0 means the SDK's
	// default (20s). Tests against a fake shorten it.
	RetryMaxBackoff time.Duration
	// IAMPropagationTimeout is how long Provision retries a launch whose
	// instance profile IAM has not propagated yet ("Invalid IAM Instance
	// Profile"), counted from the launch template's creation. Default 2m.
	IAMPropagationTimeout time.Duration
	// PollInterval is how often Terminate looks whether the target group drained.
	// Default 5s.
	PollInterval time.Duration
}

// Driver is the aws provider driver. It keeps no state of its own: everything
// is read from AWS, so any number of workers may share an account.
type Driver struct {
	cfg Config
	ec2 *ec2.Client
	asg *autoscaling.Client
	elb *elbv2.Client
}

var _ provider.Driver = (*Driver)(nil)

var (
	arnListener = regexp.MustCompile(`^arn:[a-z-]+:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/app/.+`)
	awsID       = func(prefix string) *regexp.Regexp { return regexp.MustCompile(`^` + prefix + `-[0-9a-f]{8,17}$`) }
	vpcID       = awsID("vpc")
	subnetID    = awsID("subnet")
	sgID        = awsID("sg")
	amiID       = awsID("ami")
)

// Validate checks cfg and returns every problem at once, each saying how to fix it.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Region == "" {
		add("aws provider: region is required (e.g. eu-west-1)")
	}
	if !vpcID.MatchString(c.VPCID) {
		add("aws provider: vpc %q is not a VPC ID: use the ID of the VPC the target groups live in, e.g. vpc-0abc12345678def01", c.VPCID)
	}
	if len(c.Subnets) == 0 {
		add("aws provider: at least one subnet is required: the subnets the Auto Scaling groups launch instances in")
	}
	for _, s := range c.Subnets {
		if !subnetID.MatchString(s) {
			add("aws provider: subnet %q is not a subnet ID, e.g. subnet-0abc12345678def01", s)
		}
	}
	for _, s := range c.SecurityGroups {
		if !sgID.MatchString(s) {
			add("aws provider: security group %q is not a security group ID, e.g. sg-0abc12345678def01", s)
		}
	}
	if c.InstanceType == "" {
		add("aws provider: instance type is required (e.g. t3.small)")
	}
	if c.Port < 0 || c.Port > 65535 {
		add("aws provider: port %d is out of range: use the port instances serve on, 1..65535", c.Port)
	}
	if c.HealthCheckPath != "" && !strings.HasPrefix(c.HealthCheckPath, "/") {
		add("aws provider: health check path %q must start with /", c.HealthCheckPath)
	}
	if c.DeregistrationDelay < 0 || c.DeregistrationDelay > time.Hour {
		add("aws provider: deregistration delay %s is out of range: use 0s..3600s", c.DeregistrationDelay)
	}
	keys := make([]string, 0, len(c.Listeners))
	for k := range c.Listeners {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env, svc, ok := strings.Cut(k, "/")
		if !ok || provider.CheckName("environment", env) != nil || provider.CheckName("service", svc) != nil {
			add("aws provider: listener key %q must be <environment>/<service>, e.g. prod/web", k)
		}
		if !arnListener.MatchString(c.Listeners[k]) {
			add("aws provider: listener of %s: %q is not an ALB listener ARN (arn:aws:elasticloadbalancing:<region>:<account>:listener/app/...)", k, c.Listeners[k])
		}
	}
	return errors.Join(errs...)
}

// Open checks cfg and returns a driver. Without cfg.Credentials it loads the
// default AWS configuration (environment, shared files, instance role).
func Open(ctx context.Context, cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.HealthCheckPath == "" {
		cfg.HealthCheckPath = DefaultHealthCheckPath
	}
	if cfg.HealthCheckGracePeriod == 0 {
		cfg.HealthCheckGracePeriod = DefaultHealthCheckGrace
	}
	if cfg.DeregistrationDelay == 0 {
		cfg.DeregistrationDelay = DefaultDeregistrationDelay
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.IAMPropagationTimeout <= 0 {
		cfg.IAMPropagationTimeout = DefaultIAMPropagation
	}
	var ac awssdk.Config
	if cfg.Credentials != nil {
		// Explicit credentials: nothing from the environment.
		ac = awssdk.Config{Region: cfg.Region, Credentials: cfg.Credentials}
	} else {
		var err error
		if ac, err = config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region)); err != nil {
			return nil, fmt.Errorf("aws provider: load AWS configuration: %w", err)
		}
	}
	if cfg.HTTPClient != nil {
		ac.HTTPClient = cfg.HTTPClient
	}
	if ac.HTTPClient == nil {
		ac.HTTPClient = awshttp.NewBuildableClient()
	}
	ac.HTTPClient = plainBodyClient{ac.HTTPClient}
	if cfg.MaxAttempts > 0 {
		ac.RetryMaxAttempts = cfg.MaxAttempts
	}
	if cfg.RetryMaxBackoff > 0 {
		// The SDK's standard retryer (the default), with a shorter backoff cap.
		ac.Retryer = func() awssdk.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxBackoff = cfg.RetryMaxBackoff
				if cfg.MaxAttempts > 0 {
					o.MaxAttempts = cfg.MaxAttempts
				}
			})
		}
	}
	var base *string
	if cfg.Endpoint != "" {
		base = awssdk.String(cfg.Endpoint)
	}
	d := &Driver{
		cfg: cfg,
		ec2: ec2.NewFromConfig(ac, func(o *ec2.Options) { o.BaseEndpoint = base }),
		asg: autoscaling.NewFromConfig(ac, func(o *autoscaling.Options) { o.BaseEndpoint = base }),
		elb: elbv2.NewFromConfig(ac, func(o *elbv2.Options) { o.BaseEndpoint = base }),
	}
	if err := d.checkZones(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// checkZones refuses subnets in an Availability Zone that the load balancer of
// a configured listener does not enable: the load balancer would never check
// or route to their instances (their targets stay unused, Target.NotInUse), so
// no fleet there could become healthy.
func (d *Driver) checkZones(ctx context.Context) error {
	if len(d.cfg.Listeners) == 0 {
		return nil
	}
	subnets, err := d.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: d.cfg.Subnets})
	if err != nil {
		return wrap(err, "aws provider: describe subnets %v", d.cfg.Subnets)
	}
	zoneOf := map[string]string{}
	for _, s := range subnets.Subnets {
		zoneOf[awssdk.ToString(s.SubnetId)] = awssdk.ToString(s.AvailabilityZone)
	}
	keys := make([]string, 0, len(d.cfg.Listeners))
	for k := range d.cfg.Listeners {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var problems []string
	for _, k := range keys {
		arn := d.cfg.Listeners[k]
		out, err := d.elb.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{arn}})
		if apiCode(err) == "ListenerNotFound" || err == nil && len(out.Listeners) == 0 {
			problems = append(problems, fmt.Sprintf("listener of %s: %s does not exist", k, arn))
			continue
		}
		if err != nil {
			return wrap(err, "aws provider: describe listener %s of %s", arn, k)
		}
		lbArn := awssdk.ToString(out.Listeners[0].LoadBalancerArn)
		lbs, err := d.elb.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{lbArn}})
		if err != nil {
			return wrap(err, "aws provider: describe load balancer %s of listener %s", lbArn, arn)
		}
		enabled := map[string]bool{}
		var names []string
		for _, lb := range lbs.LoadBalancers {
			for _, z := range lb.AvailabilityZones {
				enabled[awssdk.ToString(z.ZoneName)] = true
				names = append(names, awssdk.ToString(z.ZoneName))
			}
		}
		sort.Strings(names)
		for _, s := range d.cfg.Subnets {
			if z := zoneOf[s]; !enabled[z] {
				problems = append(problems, fmt.Sprintf(
					"subnet %s is in %s, which load balancer %s (listener %s of %s) does not enable (it enables %v): "+
						"its instances would stay unused (Target.NotInUse) and never become healthy; enable the zone on the load balancer or drop the subnet",
					s, z, lbArn, arn, k, names))
			}
		}
	}
	if len(problems) > 0 {
		return provider.Errorf(provider.FailedPrecondition, "aws provider: %s", strings.Join(problems, "; "))
	}
	return nil
}

// plainBodyClient hands net/http request bodies that only Read and Close.
//
// The SDK wraps a request body in a reader whose WriteTo returns io.EOF once the
// SDK closed it, which it does as soon as the response headers arrive. net/http,
// after sending Content-Length bytes, copies the rest of the body (through
// WriteTo) to check for extra bytes; when a fast endpoint answers before that
// check, the io.EOF counts as a write error, net/http closes the connection, and
// reading the response fails with "use of closed network connection". Without
// WriteTo, a closed body reads as a clean end.
type plainBodyClient struct{ c awssdk.HTTPClient }

func (p plainBodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.WithContext(req.Context())
		req.Body = plainBody{req.Body}
	}
	return p.c.Do(req)
}

type plainBody struct{ rc io.ReadCloser }

func (b plainBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b plainBody) Close() error               { return b.rc.Close() }

// Close releases the driver (fleets and listeners stay).
func (d *Driver) Close() error { return nil }

// FleetID is the fleet ID (and the name of its Auto Scaling group, launch
// template and target group) Provision derives from a request token. It fits
// the 32 characters a target group name allows.
func FleetID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "imago-" + hex.EncodeToString(sum[:])[:12]
}

var fleetIDPattern = regexp.MustCompile(`^imago-[0-9a-f]{12}$`)

// tagKey is what AWS allows in a tag key (and value): letters, digits, spaces and _.:/=+-@.
var tagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// fleetTags returns the tags of a fleet's resources, sorted by key.
func fleetTags(id string, req contract.ProvisionRequest) ([][2]string, error) {
	tags := map[string]string{
		TagService: req.Service, TagEnvironment: req.Environment, TagToken: req.Token, TagImage: req.ImageID, TagFleet: id,
	}
	for k, v := range req.Labels {
		key := TagPrefix + k
		if k == "" || reserved[key] {
			return nil, provider.Errorf(provider.InvalidArgument, "label %q is reserved on AWS (imago sets tag %s itself): rename it", k, key)
		}
		if len(key) > 128 || len(v) > 256 || !tagChars.MatchString(key) || !tagChars.MatchString(v) {
			return nil, provider.Errorf(provider.InvalidArgument,
				"label %s=%q cannot be an AWS tag: keys up to %d and values up to 256 characters of letters, digits, spaces and _.:/=+-@",
				k, v, 128-len(TagPrefix))
		}
		tags[key] = v
	}
	for _, v := range []string{req.Token, req.ImageID} {
		if len(v) > 256 || !tagChars.MatchString(v) {
			return nil, provider.Errorf(provider.InvalidArgument,
				"provision: %q cannot be an AWS tag value: up to 256 characters of letters, digits, spaces and _.:/=+-@", v)
		}
	}
	if len(tags) > 45 {
		return nil, provider.Errorf(provider.InvalidArgument, "provision: %d labels are too many for AWS tags (at most 40)", len(req.Labels))
	}
	out := make([][2]string, 0, len(tags))
	for k, v := range tags {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// fleetFromTags fills the fleet fields the tags of its resources record.
func fleetFromTags(id string, tags map[string]string) contract.Fleet {
	f := contract.Fleet{
		ID: id, Service: tags[TagService], Environment: tags[TagEnvironment], ImageID: tags[TagImage], Token: tags[TagToken],
		Instances: []contract.Instance{},
	}
	for k, v := range tags {
		if strings.HasPrefix(k, TagPrefix) && !reserved[k] {
			if f.Labels == nil {
				f.Labels = map[string]string{}
			}
			f.Labels[strings.TrimPrefix(k, TagPrefix)] = v
		}
	}
	return f
}

// noRegion refuses a request for a target region: the driver runs in its
// Config.Region only, and must not deploy there what asked for another.
func noRegion(what, region string) error {
	if region == "" {
		return nil
	}
	return provider.Errorf(provider.InvalidArgument,
		"%s: target region %s: the aws provider deploys to its configured region only; run a worker per region and remove target.region", what, region)
}

func (d *Driver) listener(key contract.RouteKey) (string, bool) {
	arn, ok := d.cfg.Listeners[key.String()]
	return arn, ok && arn != ""
}

// resolveAMI returns the AMI of image id in the driver's region.
func (d *Driver) resolveAMI(ctx context.Context, id string) (string, error) {
	if amiID.MatchString(id) {
		return id, nil
	}
	if d.cfg.Images == nil {
		return "", provider.Errorf(provider.InvalidArgument,
			"provision: image %q is not an AMI ID (ami-...) and the aws provider has no image catalog to look it up in", id)
	}
	img, err := d.cfg.Images.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return "", &provider.Error{Code: provider.NotFound, Msg: "provision: image " + id, Err: err}
	}
	if err != nil {
		return "", err
	}
	if ami := img.Artifacts[d.cfg.Region]; amiID.MatchString(ami) {
		return ami, nil
	}
	regions := make([]string, 0, len(img.Artifacts))
	for r := range img.Artifacts {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	return "", provider.Errorf(provider.FailedPrecondition,
		"provision: image %s (builder %s) has no AMI in region %s (it has artifacts for %v): bake it with an amazon-* builder that copies it to %s",
		id, img.Builder, d.cfg.Region, regions, d.cfg.Region)
}

// Error codes of the AWS APIs, by the portable code they map to.
var (
	notFoundCodes = map[string]bool{
		"InvalidAMIID.NotFound": true, "InvalidAMIID.Unavailable": true, "TargetGroupNotFound": true,
		"InvalidLaunchTemplateName.NotFoundException": true, "InvalidLaunchTemplateId.NotFound": true,
	}
	invalidCodes = map[string]bool{
		"ValidationError": true, "InvalidParameterValue": true, "InvalidParameterCombination": true,
		"InvalidAMIID.Malformed": true, "IdempotentParameterMismatch": true, "InvalidParameter": true,
		"MissingParameter": true, "DuplicateTargetGroupName": true,
	}
	preconditionCodes = map[string]bool{
		"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true, "AuthFailure": true,
		"InvalidClientTokenId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true, "OptInRequired": true,
		"ListenerNotFound": true, "ResourceInUse": true, "LimitExceeded": true, "TooManyTargetGroups": true,
		"TargetGroupAssociationLimit": true, "InvalidConfigurationRequest": true, "InvalidSubnetID.NotFound": true,
		"InvalidGroup.NotFound": true, "InvalidVpcID.NotFound": true, "TooManyActions": true, "InvalidLoadBalancerAction": true,
		"LoadBalancerNotFound": true,
	}
	authCodes = map[string]bool{
		"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true, "AuthFailure": true,
		"InvalidClientTokenId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
	}
)

// apiCode returns the AWS error code of err, "" when it is not an API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wrap gives an AWS error its portable code; what says what the driver was doing.
// Throttling, 5xx and network errors stay Unknown (retryable).
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", msg, err)
	}
	code := apiCode(err)
	switch {
	case authCodes[code]:
		return &provider.Error{Code: provider.FailedPrecondition,
			Msg: msg + " (the worker's AWS credentials lack a permission: see the IAM policy in docs/aws.md)", Err: err}
	case notFoundCodes[code]:
		return &provider.Error{Code: provider.NotFound, Msg: msg, Err: err}
	case invalidCodes[code]:
		return &provider.Error{Code: provider.InvalidArgument, Msg: msg, Err: err}
	case preconditionCodes[code]:
		return &provider.Error{Code: provider.FailedPrecondition, Msg: msg, Err: err}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// waitUntil calls check every PollInterval until it reports done or fails, or
// limit passes (then it returns false and no error). Each round that is not
// done reports check's status as progress, so an activity heartbeats.
func (d *Driver) waitUntil(ctx context.Context, limit time.Duration, check func() (done bool, status string, err error)) (bool, error) {
	deadline := time.Now().Add(limit)
	for {
		done, status, err := check()
		if err != nil || done {
			return done, err
		}
		provider.ReportProgress(ctx, "%s", status)
		if !time.Now().Before(deadline) {
			return false, nil
		}
		if err := sleep(ctx, min(d.cfg.PollInterval, time.Until(deadline)+time.Millisecond)); err != nil {
			return false, fmt.Errorf("%s: %w", status, err)
		}
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
