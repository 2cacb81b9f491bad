// Package ociimage turns a local imago image (the deterministic tar.gz of a bake's
// staged files, internal/image) into an OCI image, with go-containerregistry and no
// container engine, and writes it to the destinations a bake names:
//
//	oci-layout://DIR       an OCI image layout (skopeo's oci:DIR, podman's oci:DIR)
//	docker-archive://FILE  a `docker save` tarball (docker load, podman load, skopeo docker-archive:FILE)
//	registry://HOST/REPO:TAG  pushed to a registry (Push), with the Docker credential
//	                       helpers' credentials and a transport the caller guards
//
// The image has one layer: the imago archive itself, so the layer's digest is the
// image's imago digest. Its config carries the entrypoint, PORT, the exposed port
// and labels: org.opencontainers.image.title and imago's image ID, digest and input
// digest (LabelImageID, LabelDigest, LabelInputDigest) beside the bake's own labels.
package ociimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imago/imago/internal/atomicfile"
)

// Labels imago sets on every OCI image it writes.
const (
	LabelTitle       = "org.opencontainers.image.title"
	LabelImageID     = "dev.imago.image.id"
	LabelDigest      = "dev.imago.image.digest"
	LabelInputDigest = "dev.imago.image.input-digest"
)

// DefaultPort is the port the image's PORT variable names and its config exposes:
// imago's programs listen on $PORT.
const DefaultPort = 8080

// Destination schemes.
const (
	SchemeOCILayout     = "oci-layout"
	SchemeDockerArchive = "docker-archive"
	SchemeRegistry      = "registry"
)

// Config is what the OCI image's config says about the imago image.
type Config struct {
	ImageID     string
	Service     string
	Digest      string // the imago archive's digest (sha256:…)
	InputDigest string
	Entrypoint  []string
	Labels      map[string]string
	Port        int // 0 means DefaultPort
	// Base is the OCI image this one is built on (nil: none): its layers come
	// first, its config's env (PORT replaced), labels and platform are kept.
	Base v1.Image
}

// FromArchive builds the OCI image whose single layer is the imago archive at path.
// The image has no creation time (its bytes depend on the inputs only), so the
// same archive and config always give the same manifest digest.
func FromArchive(path string, c Config) (v1.Image, error) {
	layer, err := tarball.LayerFromFile(path, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("oci image: layer from %s: %w", path, err)
	}
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	labels := maps.Clone(c.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelTitle] = c.Service
	labels[LabelImageID] = c.ImageID
	labels[LabelDigest] = c.Digest
	if c.InputDigest != "" {
		labels[LabelInputDigest] = c.InputDigest
	}
	img := c.Base
	if img == nil {
		img = empty.Image
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{CreatedBy: "imago bake " + c.ImageID, Created: epoch}})
	if err != nil {
		return nil, fmt.Errorf("oci image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("oci image: %w", err)
	}
	cf = cf.DeepCopy()
	if cf.OS == "" {
		cf.OS, cf.Architecture = "linux", "amd64"
	}
	cf.Created = epoch
	cf.Config.Entrypoint = c.Entrypoint
	cf.Config.Cmd = nil // the base's arguments were its own entrypoint's
	cf.Config.WorkingDir = "/"
	env := []string{"PORT=" + strconv.Itoa(port)}
	for _, e := range cf.Config.Env {
		if !strings.HasPrefix(e, "PORT=") {
			env = append(env, e)
		}
	}
	cf.Config.Env = env
	if cf.Config.ExposedPorts == nil {
		cf.Config.ExposedPorts = map[string]struct{}{}
	}
	cf.Config.ExposedPorts[strconv.Itoa(port)+"/tcp"] = struct{}{}
	for k, v := range labels {
		if cf.Config.Labels == nil {
			cf.Config.Labels = map[string]string{}
		}
		cf.Config.Labels[k] = v
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("oci image: %w", err)
	}
	return img, nil
}

// Destination is one place a bake writes its OCI image to.
type Destination struct {
	Scheme string // SchemeOCILayout, SchemeDockerArchive or SchemeRegistry
	Path   string // a file or directory; for SchemeRegistry the image reference HOST/REPO[:TAG]
}

func (d Destination) String() string { return d.Scheme + "://" + d.Path }

// ParseDestination parses oci-layout://DIR, docker-archive://FILE or
// registry://HOST/REPO[:TAG] (no tag: latest). A relative path is resolved
// against dir.
func ParseDestination(s, dir string) (Destination, error) {
	scheme, p, ok := strings.Cut(s, "://")
	if !ok {
		return Destination{}, fmt.Errorf("%q is not a destination URL: use oci-layout://DIR, docker-archive://FILE or registry://HOST/REPO:TAG", s)
	}
	switch scheme {
	case SchemeOCILayout, SchemeDockerArchive:
	case SchemeRegistry:
		if last := p[strings.LastIndex(p, "/")+1:]; !strings.Contains(last, ":") {
			p += ":latest"
		}
		ref, err := name.NewTag(p, name.StrictValidation)
		if err != nil || !strings.Contains(p, "/") {
			return Destination{}, fmt.Errorf("%q: want registry://HOST[:PORT]/REPO[:TAG], e.g. registry://ghcr.io/acme/hello:v2", s)
		}
		return Destination{Scheme: scheme, Path: ref.String()}, nil
	default:
		return Destination{}, fmt.Errorf("%q: unknown scheme %q; use oci-layout://DIR, docker-archive://FILE or registry://HOST/REPO:TAG", s, scheme)
	}
	if p == "" {
		return Destination{}, fmt.Errorf("%q names no path", s)
	}
	if !filepath.IsAbs(p) && dir != "" {
		p = filepath.Join(dir, p)
	}
	return Destination{Scheme: scheme, Path: filepath.Clean(p)}, nil
}

// IsFile reports whether d is a file or directory on this machine (not a registry).
func (d Destination) IsFile() bool { return d.Scheme != SchemeRegistry }

// Push pushes img to the registry destination d with go-containerregistry's
// remote package: credentials from the Docker credential helpers and config
// (authn.DefaultKeychain: $DOCKER_CONFIG/config.json, docker-credential-*), every
// connection through rt, which the caller guards (imago: internal/netguard).
// A registry on a loopback address is spoken to in plain HTTP (go-containerregistry's
// rule for localhost and 127.0.0.0/8); any other over TLS.
func Push(ctx context.Context, img v1.Image, d Destination, rt http.RoundTripper) error {
	if d.Scheme != SchemeRegistry {
		return fmt.Errorf("destination %s is not a registry", d)
	}
	ref, err := name.NewTag(d.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(rt)); err != nil {
		return fmt.Errorf("push to %s: %w", d, err)
	}
	return nil
}

// Write writes img to d, tagged (docker-archive) or annotated (oci-layout) with
// <service>:<tag>. An oci-layout directory that already holds a layout gets the
// image added (an image with the same tag is replaced); a docker-archive file is
// replaced atomically. Directories are created 0700, the archive 0600.
func Write(img v1.Image, d Destination, service, tag string) error {
	switch d.Scheme {
	case SchemeOCILayout:
		return writeLayout(img, d.Path, service+":"+tag)
	case SchemeDockerArchive:
		return writeDockerArchive(img, d.Path, service, tag)
	case SchemeRegistry:
		return fmt.Errorf("destination %s: a registry is pushed to with Push", d)
	}
	return fmt.Errorf("destination %s: unknown scheme", d)
}

// epoch is the creation time of every image imago writes: a fixed time, so the
// same archive always makes the same manifest digest.
var epoch = v1.Time{Time: time.Unix(0, 0).UTC()}

func writeLayout(img v1.Image, dir, refName string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("oci-layout://%s: %w", dir, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "index.json")); !errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("oci-layout://%s is not an OCI layout: %w", dir, err)
		}
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("oci-layout://%s: %w", dir, err)
		}
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": refName}
	matcher := func(desc v1.Descriptor) bool { return desc.Annotations["org.opencontainers.image.ref.name"] == refName }
	if err := p.ReplaceImage(img, matcher, layout.WithAnnotations(ann)); err != nil {
		return fmt.Errorf("oci-layout://%s: %w", dir, err)
	}
	return nil
}

func writeDockerArchive(img v1.Image, file, service, tag string) error {
	ref, err := name.NewTag(service+":"+tag, name.WithDefaultRegistry("imago.local"))
	if err != nil {
		return fmt.Errorf("docker-archive://%s: %w", file, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("docker-archive://%s: %w", file, err)
	}
	err = atomicfile.WriteFunc(file, func(w io.Writer) error { return tarball.Write(ref, img, w) })
	if err != nil {
		return fmt.Errorf("docker-archive://%s: %w", file, err)
	}
	return nil
}
