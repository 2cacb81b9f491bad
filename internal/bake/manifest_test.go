package bake

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseManifestFixture(t *testing.T) {
	m := fixtureManifest(t)
	const run = "90c95cf6-2815-f492-91ea-ce94e6f38ff1"
	want := Manifest{
		Builds: []ManifestBuild{
			{Name: "x", BuilderType: "file", BuildTime: 1795438737, Files: []ManifestFile{{Name: "out.txt", Size: 2}}, ArtifactID: "File", PackerRunUUID: run},
			{Name: "y", BuilderType: "null", BuildTime: 1795438737, ArtifactID: "Null", PackerRunUUID: run},
		},
		LastRunUUID: run,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("ParseManifest:\n got %#v\nwant %#v", m, want)
	}
	if got := m.LastRun(); !reflect.DeepEqual(got, want.Builds) {
		t.Errorf("LastRun: %#v", got)
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, in := range []string{"", "{", `{"builds": {}}`, `{"builds": [{"build_time": "now"}]}`, `{"builds": [{"custom_data": {"a": 1}}]}`, `[]`} {
		if _, err := ParseManifest([]byte(in)); err == nil {
			t.Errorf("ParseManifest(%q): no error", in)
		}
	}
}

const twoRunManifest = `{
  "builds": [
    {"name": "a", "builder_type": "file", "build_time": 1, "files": [{"name": "a.txt", "size": 1}], "artifact_id": "File", "packer_run_uuid": "run-1", "custom_data": {"k": "v"}},
    {"name": "b", "builder_type": "amazon-ebs", "build_time": 2, "files": null, "artifact_id": "us-east-1:ami-0123,us-west-2:ami-0456", "packer_run_uuid": "run-2", "custom_data": null},
    {"name": "c", "builder_type": "null", "build_time": 2, "files": null, "artifact_id": "Null", "packer_run_uuid": "run-2", "custom_data": null}
  ],
  "last_run_uuid": "run-2"
}`

func TestManifestLastRun(t *testing.T) {
	m, err := ParseManifest([]byte(twoRunManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Builds[0].CustomData["k"] != "v" {
		t.Errorf("custom_data: %#v", m.Builds[0].CustomData)
	}
	var names []string
	for _, b := range m.LastRun() {
		names = append(names, b.Name)
	}
	if !reflect.DeepEqual(names, []string{"b", "c"}) {
		t.Errorf("LastRun names = %q", names)
	}
	if got := (Manifest{Builds: m.Builds}).LastRun(); got != nil {
		t.Errorf("LastRun without last_run_uuid = %#v", got)
	}
}

func TestParseArtifactID(t *testing.T) {
	tests := []struct {
		builderType, id string
		want            map[string]string
	}{
		{"amazon-ebs", "us-east-1:ami-123,us-west-2:ami-456", map[string]string{"us-east-1": "ami-123", "us-west-2": "ami-456"}},
		{"amazon-ebs", "us-east-1:ami-123", map[string]string{"us-east-1": "ami-123"}},
		{"amazon-ebssurrogate", "cn-north-1:ami-0abc", map[string]string{"cn-north-1": "ami-0abc"}},
		{"amazon-chroot", "us-gov-west-1:ami-1", map[string]string{"us-gov-west-1": "ami-1"}},
		// amazon-import post-processor after a non-amazon builder
		{"vmware-iso", "eu-central-1:ami-0a1b2c", map[string]string{"eu-central-1": "ami-0a1b2c"}},
		// several volumes in one region: not a region map
		{"amazon-ebsvolume", "us-east-1:vol-1,us-east-1:vol-2", map[string]string{"": "us-east-1:vol-1,us-east-1:vol-2"}},
		{"amazon-ebs", "us-east-1:ami-1,", map[string]string{"": "us-east-1:ami-1,"}},
		{"amazon-ebs", "", map[string]string{"": ""}},
		{"docker", "sha256:0123abcd", map[string]string{"": "sha256:0123abcd"}},
		{"file", "File", map[string]string{"": "File"}},
		{"null", "Null", map[string]string{"": "Null"}},
		{"googlecompute", "my-image-123", map[string]string{"": "my-image-123"}},
	}
	for _, tt := range tests {
		if got := ParseArtifactID(tt.builderType, tt.id); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseArtifactID(%q, %q) = %v, want %v", tt.builderType, tt.id, got, tt.want)
		}
	}
}

func TestResultFromFixture(t *testing.T) {
	res, err := ResultFrom(fixtureEvents(t), fixtureManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{
		RunUUID: "90c95cf6-2815-f492-91ea-ce94e6f38ff1",
		Builds: []BuildResult{
			{Name: "x", BuilderType: "file", Target: "file.x", ArtifactID: "File", Artifacts: map[string]string{"": "File"}, Files: []string{"out.txt"}},
			{Name: "y", BuilderType: "null", Target: "null.y", ArtifactID: "Null", Artifacts: map[string]string{"": "Null"}},
		},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("ResultFrom:\n got %#v\nwant %#v", res, want)
	}
}

func TestResultFromMismatch(t *testing.T) {
	m := fixtureManifest(t)
	m.Builds[0].ArtifactID = "Elsewhere"
	_, err := ResultFrom(fixtureEvents(t), m)
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{`"file.x"`, `"Elsewhere"`, `"File"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if strings.Contains(err.Error(), "null.y") {
		t.Errorf("error %q blames the good build", err)
	}
}

func TestResultFromMissingArtifact(t *testing.T) {
	var evs []Event
	for _, e := range fixtureEvents(t) {
		if e.Target != "null.y" {
			evs = append(evs, e)
		}
	}
	_, err := ResultFrom(evs, fixtureManifest(t))
	if err == nil || !strings.Contains(err.Error(), `"null.y"`) || !strings.Contains(err.Error(), "no artifact") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ResultFrom(fixtureEvents(t), Manifest{}); err == nil {
		t.Fatal("empty manifest: no error")
	}
}

func TestResultFromAmazonAndNamedBuilds(t *testing.T) {
	lines := []string{
		// manifest post-processor re-emits the artifact: indexes 0 and 1
		"1,golden.amazon-ebs.b,artifact,0,id,us-east-1:ami-0123%!(PACKER_COMMA)us-west-2:ami-0456",
		"1,golden.amazon-ebs.b,artifact,1,id,us-east-1:ami-0123%!(PACKER_COMMA)us-west-2:ami-0456",
		// a renamed source: target "null.renamed", manifest name "c"
		"1,null.renamed,artifact,0,id,Null",
		"1,null.renamed,artifact,1,id,Null",
	}
	var evs []Event
	for _, l := range lines {
		ev, ok := ParseLine(l)
		if !ok {
			t.Fatal(l)
		}
		evs = append(evs, ev)
	}
	m, err := ParseManifest([]byte(twoRunManifest))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ResultFrom(evs, m)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{
		RunUUID: "run-2",
		Builds: []BuildResult{
			{Name: "b", BuilderType: "amazon-ebs", Target: "golden.amazon-ebs.b", ArtifactID: "us-east-1:ami-0123,us-west-2:ami-0456",
				Artifacts: map[string]string{"us-east-1": "ami-0123", "us-west-2": "ami-0456"}},
			{Name: "c", BuilderType: "null", Target: "null.renamed", ArtifactID: "Null", Artifacts: map[string]string{"": "Null"}},
		},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("ResultFrom:\n got %#v\nwant %#v", res, want)
	}

	// A different AMI in the artifact lines is a mismatch naming both.
	evs[0].Data[2] = "us-east-1:ami-9999"
	evs[1].Data[2] = "us-east-1:ami-9999"
	_, err = ResultFrom(evs, m)
	if err == nil || !strings.Contains(err.Error(), `"us-east-1:ami-9999"`) || !strings.Contains(err.Error(), `"us-east-1:ami-0123,us-west-2:ami-0456"`) {
		t.Fatalf("err = %v", err)
	}
}
