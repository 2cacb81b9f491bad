package ociimage

import (
	"fmt"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// Labels of an image built on an OCI base: the OCI annotation spec's names
// (github.com/opencontainers/image-spec, annotations.md).
const (
	LabelBaseDigest = "org.opencontainers.image.base.digest"
	LabelBaseName   = "org.opencontainers.image.base.name"
)

const annotationRefName = "org.opencontainers.image.ref.name"

// Base is an OCI image in a layout on this machine that a bake builds on:
// oci-layout://DIR (the layout's only image), oci-layout://DIR:REF (the image
// annotated org.opencontainers.image.ref.name REF, skopeo's oci:DIR:REF) or
// oci-layout://DIR@sha256:… (the image with that manifest digest).
type Base struct {
	Dir    string
	Ref    string
	Digest string
}

func (b Base) String() string {
	s := SchemeOCILayout + "://" + b.Dir
	if b.Ref != "" {
		s += ":" + b.Ref
	}
	if b.Digest != "" {
		s += "@" + b.Digest
	}
	return s
}

// ParseBase parses an OCI base; a relative DIR is resolved against dir.
func ParseBase(s, dir string) (Base, error) {
	scheme, p, ok := strings.Cut(s, "://")
	if !ok || scheme != SchemeOCILayout {
		return Base{}, fmt.Errorf("%q: want oci-layout://DIR, oci-layout://DIR:REF or oci-layout://DIR@sha256:…", s)
	}
	var b Base
	if at := strings.LastIndex(p, "@"); at >= 0 {
		h, err := v1.NewHash(p[at+1:])
		if err != nil {
			return Base{}, fmt.Errorf("%q: %v", s, err)
		}
		b.Digest, p = h.String(), p[:at]
	}
	if i := strings.Index(p[strings.LastIndex(p, "/")+1:], ":"); i >= 0 {
		i += strings.LastIndex(p, "/") + 1
		b.Ref, p = p[i+1:], p[:i]
	}
	if p == "" {
		return Base{}, fmt.Errorf("%q names no directory", s)
	}
	if !filepath.IsAbs(p) && dir != "" {
		p = filepath.Join(dir, p)
	}
	b.Dir = filepath.Clean(p)
	return b, nil
}

// Image reads the base's image from its layout (a multi-platform index: its
// linux/amd64 image) and returns it with its manifest digest. With Digest set
// the image must have that digest.
func (b Base) Image() (v1.Image, v1.Hash, error) {
	p, err := layout.FromPath(b.Dir)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("base %s: %w", b, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("base %s: %w", b, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("base %s: %w", b, err)
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if b.Ref == "" || d.Annotations[annotationRefName] == b.Ref {
			found = append(found, d)
		}
	}
	if b.Digest != "" && b.Ref == "" {
		// A digest names the image itself, listed or not (a child of an index).
		img, err := idx.Image(mustHash(b.Digest))
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("base %s: no image %s in the layout: %w", b, b.Digest, err)
		}
		return img, mustHash(b.Digest), nil
	}
	if len(found) != 1 {
		return nil, v1.Hash{}, fmt.Errorf("base %s: the layout has %d images that match; name one with oci-layout://DIR:REF or @sha256:…", b, len(found))
	}
	img, err := imageOf(idx, found[0])
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("base %s: %w", b, err)
	}
	h, err := img.Digest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("base %s: %w", b, err)
	}
	if b.Digest != "" && h.String() != b.Digest {
		return nil, v1.Hash{}, fmt.Errorf("base %s: %s is %s", b, b.Ref, h)
	}
	return img, h, nil
}

func mustHash(s string) v1.Hash { h, _ := v1.NewHash(s); return h }

// imageOf is the image d names in idx: itself, or an index's linux/amd64 image.
func imageOf(idx v1.ImageIndex, d v1.Descriptor) (v1.Image, error) {
	if !d.MediaType.IsIndex() {
		return idx.Image(d.Digest)
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, err
	}
	want := v1.Platform{OS: "linux", Architecture: "amd64"}
	descs, err := partial.FindManifests(child, func(c v1.Descriptor) bool { return c.Platform != nil && c.Platform.Satisfies(want) })
	if err != nil {
		return nil, err
	}
	if len(descs) == 0 {
		return nil, fmt.Errorf("index %s has no linux/amd64 image", d.Digest)
	}
	return child.Image(descs[0].Digest)
}
