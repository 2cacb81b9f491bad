package bake

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Manifest is the JSON file written by packer's manifest post-processor.
// The file accumulates: every run appends its builds (unless packer runs
// with -force), so use [Manifest.LastRun] to get the latest run's builds.
type Manifest struct {
	Builds      []ManifestBuild `json:"builds"`
	LastRunUUID string          `json:"last_run_uuid"`
}

// ManifestBuild is one entry of a manifest's "builds".
//
// Name is the source block's name (packer_build_name): for
// `source "file" "x"` it is "x", also when a build block renames the source
// or is itself named (the machine-readable target is then e.g.
// "mybuild.file.renamed").
type ManifestBuild struct {
	Name          string            `json:"name"`
	BuilderType   string            `json:"builder_type"`
	BuildTime     int64             `json:"build_time"`
	Files         []ManifestFile    `json:"files"`
	ArtifactID    string            `json:"artifact_id"`
	PackerRunUUID string            `json:"packer_run_uuid"`
	CustomData    map[string]string `json:"custom_data"`
}

// ManifestFile is one artifact file recorded in the manifest.
type ManifestFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// ParseManifest decodes a manifest post-processor file.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("bake: parse packer manifest: %w", err)
	}
	return m, nil
}

// LastRun returns the builds recorded by the most recent packer run, i.e.
// those whose packer_run_uuid equals last_run_uuid. It returns nil when the
// manifest names no last run.
func (m Manifest) LastRun() []ManifestBuild {
	if m.LastRunUUID == "" {
		return nil
	}
	var out []ManifestBuild
	for _, b := range m.Builds {
		if b.PackerRunUUID == m.LastRunUUID {
			out = append(out, b)
		}
	}
	return out
}

var (
	// amazon-style "region:id" pair as produced by the amazon builders'
	// Artifact.Id(): "us-east-1:ami-123,us-west-2:ami-456".
	looseRegionPair = regexp.MustCompile(`^([a-z0-9]+(?:-[a-z0-9]+)*):([^:,\s]+)$`)
	// For builder types we do not know to be regional (e.g. an
	// amazon-import post-processor after a vmware build) only accept real
	// looking AWS regions and AMI ids, so docker's "sha256:..." stays whole.
	strictRegionPair = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+-[0-9]+):(ami-[0-9a-f]+)$`)
)

// ParseArtifactID splits an artifact id into region -> id.
//
// Amazon-style ids ("us-east-1:ami-123,us-west-2:ami-456") give one entry
// per region. They are recognised for "amazon-*" builder types, and for
// other builder types only when every part is a real-looking region and an
// AMI id. Anything else (including ids that repeat a region, e.g. several
// EBS volumes in one region) gives {"": id}.
func ParseArtifactID(builderType, id string) map[string]string {
	re := strictRegionPair
	if strings.HasPrefix(builderType, "amazon-") {
		re = looseRegionPair
	}
	if id != "" {
		out := map[string]string{}
		ok := true
		for _, part := range strings.Split(id, ",") {
			m := re.FindStringSubmatch(part)
			if m == nil {
				ok = false
				break
			}
			if _, dup := out[m[1]]; dup {
				ok = false
				break
			}
			out[m[1]] = m[2]
		}
		if ok {
			return out
		}
	}
	return map[string]string{"": id}
}

// Result is what a packer build produced, according to the manifest's last
// run, cross-checked against packer's own artifact lines.
type Result struct {
	Builds  []BuildResult
	RunUUID string
}

// BuildResult is one build of the last run.
type BuildResult struct {
	// Name and BuilderType are as in the manifest ("x", "file").
	Name        string
	BuilderType string
	// Target is the machine-readable target whose artifact matched
	// ("file.x", "mybuild.amazon-ebs.ubuntu").
	Target     string
	ArtifactID string
	// Artifacts is ParseArtifactID(BuilderType, ArtifactID).
	Artifacts map[string]string
	// Files are the artifact's files as recorded in the manifest.
	Files []string
}

// ResultFrom builds a Result from the manifest's last run. Every build of it
// must have its artifact_id reported by packer in an `artifact,N,id` line of
// a matching target: "<builder_type>.<name>", optionally prefixed by the
// build block's name ("mybuild.file.x"); when no target has that name (the
// build block renamed the source) any target of the same builder type
// counts. Duplicate artifact lines (the manifest post-processor re-emits its
// input artifact) are fine. A mismatch is an error naming both values.
func ResultFrom(events []Event, manifest Manifest) (Result, error) {
	last := manifest.LastRun()
	if len(last) == 0 {
		return Result{}, fmt.Errorf("bake: packer manifest has no builds for its last run %q", manifest.LastRunUUID)
	}
	arts := Artifacts(events)
	res := Result{RunUUID: manifest.LastRunUUID}
	var errs []error
	for _, b := range last {
		target, seen, ok := matchArtifact(arts, b)
		if !ok {
			full := b.BuilderType + "." + b.Name
			if len(seen) == 0 {
				errs = append(errs, fmt.Errorf("bake: build %q: manifest artifact_id %q but packer reported no artifact for it", full, b.ArtifactID))
			} else {
				errs = append(errs, fmt.Errorf("bake: build %q: manifest artifact_id %q does not match packer's artifact id %s", full, b.ArtifactID, quoteList(seen)))
			}
			continue
		}
		var files []string
		for _, f := range b.Files {
			files = append(files, f.Name)
		}
		res.Builds = append(res.Builds, BuildResult{
			Name:        b.Name,
			BuilderType: b.BuilderType,
			Target:      target,
			ArtifactID:  b.ArtifactID,
			Artifacts:   ParseArtifactID(b.BuilderType, b.ArtifactID),
			Files:       files,
		})
	}
	if len(errs) > 0 {
		return Result{}, errors.Join(errs...)
	}
	return res, nil
}

// matchArtifact finds an artifact line reporting b's id: first among the
// targets named like b, then (renamed sources) among all targets of b's
// builder type. seen lists the distinct ids of the closest candidates, for
// the error message.
func matchArtifact(arts []ArtifactLine, b ManifestBuild) (target string, seen []string, ok bool) {
	full := b.BuilderType + "." + b.Name
	byName := func(t string) bool { return t == full || strings.HasSuffix(t, "."+full) }
	byType := func(t string) bool {
		return strings.HasPrefix(t, b.BuilderType+".") || strings.Contains(t, "."+b.BuilderType+".")
	}
	for _, match := range []func(string) bool{byName, byType} {
		var ids []string
		for _, a := range arts {
			if a.Nil || !match(a.Build) {
				continue
			}
			if a.ID == b.ArtifactID {
				return a.Build, nil, true
			}
			if !contains(ids, a.ID) {
				ids = append(ids, a.ID)
			}
		}
		if len(seen) == 0 {
			seen = ids
		}
	}
	return "", seen, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
