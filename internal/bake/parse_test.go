package bake

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func fixtureLines(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "file-null-build.machine-readable.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

func fixtureEvents(t testing.TB) []Event {
	t.Helper()
	var evs []Event
	for i, line := range fixtureLines(t) {
		ev, ok := ParseLine(line)
		if !ok {
			t.Fatalf("fixture line %d not machine-readable: %q", i+1, line)
		}
		evs = append(evs, ev)
	}
	return evs
}

func fixtureManifest(t testing.TB) Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "file-null-build.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// formatLine encodes e the way packer's MachineReadableUi.Machine does.
// (Packer always writes data, so its lines always have the third comma;
// nil Data is written without it, as ParseLine reads such lines.)
func formatLine(e Event) string {
	head := strconv.FormatInt(e.Time.Unix(), 10) + "," + e.Target + "," + e.Type
	if e.Data == nil {
		return head
	}
	args := make([]string, len(e.Data))
	for i, v := range e.Data {
		v = strings.ReplaceAll(v, ",", "%!(PACKER_COMMA)")
		v = strings.ReplaceAll(v, "\r", `\r`)
		v = strings.ReplaceAll(v, "\n", `\n`)
		args[i] = v
	}
	return head + "," + strings.Join(args, ",")
}

func TestParseLine(t *testing.T) {
	ts := time.Unix(1795438737, 0).UTC()
	tests := []struct {
		line string
		want Event
	}{
		{
			"1795438737,,ui,say,==> file.x: Running local shell script: /tmp/packer-shell4146833238",
			Event{ts, "", "ui", []string{"say", "==> file.x: Running local shell script: /tmp/packer-shell4146833238"}},
		},
		{
			`1795438737,,ui,say,\n==> Builds finished. The artifacts of successful builds are:`,
			Event{ts, "", "ui", []string{"say", "\n==> Builds finished. The artifacts of successful builds are:"}},
		},
		{
			"1795438737,file.x,artifact,0,file,0,out.txt\n",
			Event{ts, "file.x", "artifact", []string{"0", "file", "0", "out.txt"}},
		},
		{
			"1795440411,,ui,message,    null.y: a%!(PACKER_COMMA)b%!(PACKER_COMMA) world\r\n",
			Event{time.Unix(1795440411, 0).UTC(), "", "ui", []string{"message", "    null.y: a,b, world"}},
		},
		{
			`1795440416,,ui,error,Error: Unclosed configuration block\n\n  on bad.pkr.hcl line 1%!(PACKER_COMMA) in source "null" "y":\r\n`,
			Event{time.Unix(1795440416, 0).UTC(), "", "ui", []string{"error", "Error: Unclosed configuration block\n\n  on bad.pkr.hcl line 1, in source \"null\" \"y\":\r\n"}},
		},
		{
			"1795438737,amazon-ebs.ubuntu,artifact,0,id,us-east-1:ami-123%!(PACKER_COMMA)us-west-2:ami-456",
			Event{ts, "amazon-ebs.ubuntu", "artifact", []string{"0", "id", "us-east-1:ami-123,us-west-2:ami-456"}},
		},
		{
			// packer always writes the comma after the type, even with no data
			"1795438737,,error-count,",
			Event{ts, "", "error-count", []string{""}},
		},
		{
			"1795438737,,version",
			Event{ts, "", "version", nil},
		},
		{
			// data containing an escaped comma next to a real one
			"1,t,x,%!(PACKER_COMMA),,%!(PACKER_COMMA)%!(PACKER_COMMA)",
			Event{time.Unix(1, 0).UTC(), "t", "x", []string{",", "", ",,"}},
		},
	}
	for _, tt := range tests {
		got, ok := ParseLine(tt.line)
		if !ok {
			t.Errorf("ParseLine(%q) not ok", tt.line)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseLine(%q)\n got %#v\nwant %#v", tt.line, got, tt.want)
		}
	}
}

func TestParseLineRejectsPlainText(t *testing.T) {
	for _, line := range []string{
		"",
		"\n",
		"panic: runtime error: invalid memory address or nil pointer dereference",
		"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1234]",
		"goroutine 1 [running]:",
		"    file.x: hello, world",
		"==> file.x: Running local shell script",
		"Error: Unclosed configuration block",
		"1795438737",
		"1795438737,",
		"1795438737,file.x",
		"1795438737,,,say",
		"x1795438737,,ui,say,hi",
		"-1795438737,,ui,say,hi",
		"17954387370000000000000000,,ui,say,hi",
		"1795438737,,ui say,hi",
		"1795438737,,ui,say,two\nlines",
		"2024/01/01 12:00:00 packer-plugin-amazon plugin: something, else",
	} {
		if ev, ok := ParseLine(line); ok {
			t.Errorf("ParseLine(%q) = %#v, want not machine-readable", line, ev)
		}
	}
}

func TestParseLineFixture(t *testing.T) {
	evs := fixtureEvents(t)
	if len(evs) != len(fixtureLines(t)) {
		t.Fatalf("got %d events", len(evs))
	}
	var says []string
	for _, e := range evs {
		if kind, text, ok := e.UI(); ok && kind == UISay {
			says = append(says, text)
		}
		if e.Time != time.Unix(1795438737, 0).UTC() {
			t.Errorf("time %v", e.Time)
		}
	}
	if len(says) == 0 || says[0] != "==> file.x: Running local shell script: /tmp/packer-shell4146833238" {
		t.Errorf("say lines: %q", says)
	}
	if !contains(says, "\n==> Wait completed after 19 milliseconds 907 microseconds") {
		t.Errorf("escaped newline not decoded: %q", says)
	}
}

func TestArtifactsFixture(t *testing.T) {
	got := Artifacts(fixtureEvents(t))
	null := func(i int) ArtifactLine {
		return ArtifactLine{Build: "null.y", Index: i, ID: "Null", BuilderID: "fnoeding.null", String: "Did not export anything. This is the null builder"}
	}
	file := func(i int) ArtifactLine {
		return ArtifactLine{Build: "file.x", Index: i, ID: "File", BuilderID: "packer.file", String: "Stored file: out.txt", Files: []string{"out.txt"}}
	}
	want := []ArtifactLine{null(0), null(1), file(0), file(1)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Artifacts:\n got %#v\nwant %#v", got, want)
	}
}

func TestArtifactsEscapedAndNil(t *testing.T) {
	lines := []string{
		"1,amazon-ebs.ubuntu,artifact-count,1",
		"1,amazon-ebs.ubuntu,artifact,0,builder-id,mitchellh.amazonebs",
		"1,amazon-ebs.ubuntu,artifact,0,id,us-east-1:ami-123%!(PACKER_COMMA)us-west-2:ami-456",
		`1,amazon-ebs.ubuntu,artifact,0,string,AMIs were created:\nus-east-1: ami-123\nus-west-2: ami-456\n`,
		"1,amazon-ebs.ubuntu,artifact,0,files-count,0",
		"1,amazon-ebs.ubuntu,artifact,0,end",
		"1,b.null.z,artifact,0,nil",
		"1,b.null.z,artifact,0,end",
		"1,file.x,artifact,0,file,0,a%!(PACKER_COMMA)b.txt",
		"1,file.x,artifact,0,file,1,c.txt",
		"1,file.x,artifact,x,id,ignored",
	}
	var evs []Event
	for _, l := range lines {
		ev, ok := ParseLine(l)
		if !ok {
			t.Fatalf("ParseLine(%q) not ok", l)
		}
		evs = append(evs, ev)
	}
	want := []ArtifactLine{
		{Build: "amazon-ebs.ubuntu", Index: 0, ID: "us-east-1:ami-123,us-west-2:ami-456", BuilderID: "mitchellh.amazonebs",
			String: "AMIs were created:\nus-east-1: ami-123\nus-west-2: ami-456\n"},
		{Build: "b.null.z", Index: 0, Nil: true},
		{Build: "file.x", Index: 0, Files: []string{"a,b.txt", "c.txt"}},
	}
	if got := Artifacts(evs); !reflect.DeepEqual(got, want) {
		t.Errorf("Artifacts:\n got %#v\nwant %#v", got, want)
	}
}
