package awsfake

import (
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"time"
)

var (
	amiPattern    = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	ltNamePattern = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)
)

func (f *FakeAWS) ec2(action string, p url.Values) (*node, *apiError) {
	switch action {
	case "DescribeImages":
		return f.describeImages(p)
	case "CreateLaunchTemplate":
		return f.createLaunchTemplate(p)
	case "DeleteLaunchTemplate":
		return f.deleteLaunchTemplate(p)
	case "DescribeInstances":
		return f.describeInstances(p)
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

func ltNode(lt *launchTemplate) *node {
	return el("launchTemplate",
		tx("launchTemplateId", lt.id), tx("launchTemplateName", lt.name),
		ts("createTime", lt.created), num("defaultVersionNumber", 1), num("latestVersionNumber", 1))
}

func (f *FakeAWS) createLaunchTemplate(p url.Values) (*node, *apiError) {
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
		imageID: img, instanceType: p.Get("LaunchTemplateData.InstanceType"),
		instanceTags: map[string]string{}, tags: map[string]string{}, created: time.Now().UTC(),
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

func (f *FakeAWS) deleteLaunchTemplate(p url.Values) (*node, *apiError) {
	name := p.Get("LaunchTemplateName")
	lt, ok := f.templates[name]
	if !ok {
		return nil, fail("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
	}
	delete(f.templates, name)
	return el("", ltNode(lt)), nil
}

func (f *FakeAWS) describeInstances(p url.Values) (*node, *apiError) {
	ids := list(p, "InstanceId")
	if len(ids) == 0 {
		for id := range f.instances {
			ids = append(ids, id)
		}
		sort.Strings(ids)
	}
	var out []*node
	for _, id := range ids {
		in, ok := f.instances[id]
		if !ok {
			return nil, fail("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		codes := map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
		var tagNodes []*node
		keys := make([]string, 0, len(in.tags))
		for k := range in.tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tagNodes = append(tagNodes, el("", tx("key", k), tx("value", in.tags[k])))
		}
		var ip *node
		if in.state != "terminated" {
			ip = tx("privateIpAddress", in.ip)
		}
		out = append(out, el("",
			tx("reservationId", "r-"+in.id[2:]), tx("ownerId", Account),
			items("instancesSet", []*node{el("",
				tx("instanceId", in.id), tx("imageId", in.imageID), tx("instanceType", in.instanceType),
				el("instanceState", tx("code", strconv.Itoa(codes[in.state])), tx("name", in.state)),
				ip, ts("launchTime", in.launched), items("tagSet", tagNodes),
			)}),
		))
	}
	return el("", items("reservationSet", out)), nil
}
