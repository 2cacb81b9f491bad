package awsfake

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	amiPattern    = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	ltNamePattern = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)
)

func (f *FakeAWS) ec2(action string, p url.Values, now time.Time) (*node, *apiError) {
	switch action {
	case "DescribeImages":
		return f.describeImages(p)
	case "CreateLaunchTemplate":
		return f.createLaunchTemplate(p, now)
	case "DescribeLaunchTemplates":
		return f.describeLaunchTemplates(p)
	case "DeleteLaunchTemplate":
		return f.deleteLaunchTemplate(p)
	case "DescribeInstances":
		return f.describeInstances(p, now)
	case "DescribeSubnets":
		return f.describeSubnets(p)
	}
	return nil, fail("InvalidAction", "The action %s is not valid for this web service (fake AWS).", action)
}

func (f *FakeAWS) describeImages(p url.Values) (*node, *apiError) {
	var out []*node
	for _, id := range list(p, "ImageId") {
		if !amiPattern.MatchString(id) {
			return nil, fail("InvalidAMIID.Malformed", "Invalid id: %q (expecting \"ami-...\")", id)
		}
		im, ok := f.images[id]
		if !ok {
			return nil, fail("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
		out = append(out, el("", tx("imageId", im.id), tx("imageState", im.state), tx("name", im.id)))
	}
	return el("", items("imagesSet", out)), nil
}

func ec2TagSet(name string, m map[string]string) *node {
	var out []*node
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, el("", tx("key", k), tx("value", m[k])))
	}
	return items(name, out)
}

func ltNode(lt *launchTemplate) *node {
	return el("launchTemplate",
		tx("launchTemplateId", lt.id), tx("launchTemplateName", lt.name),
		ts("createTime", lt.created), num("defaultVersionNumber", 1), num("latestVersionNumber", 1),
		ec2TagSet("tagSet", lt.tags))
}

func (f *FakeAWS) createLaunchTemplate(p url.Values, now time.Time) (*node, *apiError) {
	name := p.Get("LaunchTemplateName")
	if !ltNamePattern.MatchString(name) {
		return nil, fail("InvalidLaunchTemplateName.MalformedException", "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.")
	}
	token := p.Get("ClientToken")
	fp := fingerprint(p, "LaunchTemplateName", "LaunchTemplateData", "TagSpecification", "VersionDescription")
	if lt, ok := f.templates[name]; ok {
		switch {
		case token != "" && token == lt.clientToken && fp == lt.fingerprint:
			return el("", ltNode(lt)), nil // an idempotent retry
		case token != "" && token == lt.clientToken:
			return nil, fail("IdempotentParameterMismatch", "The client token %s was already used with different parameters.", token)
		}
		return nil, fail("InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
	}
	img := p.Get("LaunchTemplateData.ImageId")
	if img == "" || p.Get("LaunchTemplateData.InstanceType") == "" {
		return nil, fail("MissingParameter", "The launch template data must name an image and an instance type (fake AWS).")
	}
	lt := &launchTemplate{
		id: "lt-" + randHex(17), name: name, clientToken: token, fingerprint: fp,
		imageID: img, instanceType: p.Get("LaunchTemplateData.InstanceType"), profile: p.Get("LaunchTemplateData.IamInstanceProfile.Arn"),
		instanceTags: map[string]string{}, tags: map[string]string{}, created: now.UTC(),
	}
	for _, i := range indexes(p, "LaunchTemplateData.TagSpecification") {
		if p.Get(i+".ResourceType") == "instance" {
			lt.instanceTags = tags(p, i+".Tag")
		}
	}
	for _, i := range indexes(p, "TagSpecification") {
		if p.Get(i+".ResourceType") == "launch-template" {
			lt.tags = tags(p, i+".Tag")
		}
	}
	f.templates[name] = lt
	return el("", ltNode(lt)), nil
}

// ec2Filters returns the Filter.N.Name → values of an EC2 request.
func ec2Filters(p url.Values) map[string][]string {
	out := map[string][]string{}
	for _, i := range indexes(p, "Filter") {
		out[p.Get(i+".Name")] = append(out[p.Get(i+".Name")], list(p, i+".Value")...)
	}
	return out
}

// tagsMatch reports whether tags pass the tag-key and tag:<key> filters.
func tagsMatch(tags map[string]string, filters map[string][]string) bool {
	for name, values := range filters {
		ok := false
		for _, v := range values {
			if name == "tag-key" {
				_, ok = tags[v]
			} else if k, isTag := strings.CutPrefix(name, "tag:"); isTag {
				got, has := tags[k]
				ok = has && got == v
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (f *FakeAWS) describeLaunchTemplates(p url.Values) (*node, *apiError) {
	filters := ec2Filters(p)
	for name := range filters {
		if name != "tag-key" && !strings.HasPrefix(name, "tag:") {
			return nil, fail("InvalidParameterValue", "The filter '%s' is invalid (fake AWS supports tag-key, tag:<key>)", name)
		}
	}
	names := list(p, "LaunchTemplateName")
	var found []*launchTemplate
	for _, n := range names {
		lt, ok := f.templates[n]
		if !ok {
			return nil, fail("InvalidLaunchTemplateName.NotFoundException",
				"At least one of the launch templates specified in the request does not exist.")
		}
		found = append(found, lt)
	}
	if len(names) == 0 {
		for _, lt := range f.templates {
			found = append(found, lt)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].name < found[j].name })
	var match []*launchTemplate
	for _, lt := range found {
		if tagsMatch(lt.tags, filters) {
			match = append(match, lt)
		}
	}
	size := 100
	if n := atoi(p.Get("MaxResults")); n > 0 && n < size {
		size = n
	}
	start, end, err := page(len(match), size, p.Get("NextToken"), "lt-page-")
	if err != nil {
		return nil, err
	}
	var out []*node
	for _, lt := range match[start:end] {
		n := ltNode(lt)
		out = append(out, n)
	}
	res := el("", items("launchTemplates", out))
	if end < len(match) {
		res.kids = append(res.kids, tx("nextToken", "lt-page-"+strconv.Itoa(end)))
	}
	return res, nil
}

func (f *FakeAWS) deleteLaunchTemplate(p url.Values) (*node, *apiError) {
	name := p.Get("LaunchTemplateName")
	lt, ok := f.templates[name]
	if !ok {
		return nil, fail("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
	}
	delete(f.templates, name)
	return el("", ltNode(lt)), nil
}

// describeInstances answers by instance ID (an ID EC2 does not show yet, or no
// longer, is InvalidInstanceID.NotFound) or by the instance-id filter (such
// IDs are left out), as EC2 does.
func (f *FakeAWS) describeInstances(p url.Values, now time.Time) (*node, *apiError) {
	ids := list(p, "InstanceId")
	filters := ec2Filters(p)
	for name := range filters {
		if name != "instance-id" {
			return nil, fail("InvalidParameterValue", "The filter '%s' is invalid (fake AWS supports instance-id)", name)
		}
	}
	byID := len(ids) > 0
	if wanted, ok := filters["instance-id"]; ok {
		ids = wanted
	} else if !byID {
		for id := range f.instances {
			ids = append(ids, id)
		}
		sort.Strings(ids)
	}
	var out []*node
	for _, id := range ids {
		in, ok := f.instances[id]
		if !ok || now.Before(in.visible) {
			if byID {
				return nil, fail("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
			}
			continue
		}
		codes := map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopped": 80}
		var ip *node
		if in.state != "terminated" {
			ip = tx("privateIpAddress", in.ip)
		}
		out = append(out, el("",
			tx("reservationId", "r-"+in.id[2:]), tx("ownerId", Account),
			items("instancesSet", []*node{el("",
				tx("instanceId", in.id), tx("imageId", in.imageID), tx("instanceType", in.instanceType),
				el("instanceState", tx("code", strconv.Itoa(codes[in.state])), tx("name", in.state)),
				ip, ts("launchTime", in.launched), tx("subnetId", in.subnet),
				el("placement", tx("availabilityZone", in.zone)), ec2TagSet("tagSet", in.tags),
			)}),
		))
	}
	return el("", items("reservationSet", out)), nil
}

func (f *FakeAWS) describeSubnets(p url.Values) (*node, *apiError) {
	ids := list(p, "SubnetId")
	var out []*node
	for _, id := range ids {
		zone, ok := f.subnets[id]
		if !ok {
			return nil, fail("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
		out = append(out, el("", tx("subnetId", id), tx("availabilityZone", zone), tx("vpcId", "vpc-0abc12345678def01"), tx("state", "available")))
	}
	return el("", items("subnetSet", out)), nil
}
