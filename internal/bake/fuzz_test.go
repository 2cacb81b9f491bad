package bake

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Seeds: every fixture line here, plus testdata/fuzz/FuzzParseLine.
func FuzzParseLine(f *testing.F) {
	for _, l := range fixtureLines(f) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ev, ok := ParseLine(line)
		if !ok {
			return
		}
		if ev.Type == "" || strings.ContainsAny(ev.Target, ",\n\r") || strings.ContainsAny(ev.Type, ",\n\r") {
			t.Fatalf("ParseLine(%q) = %#v: bad target/type", line, ev)
		}
		if ev.Time.Unix() < 0 {
			t.Fatalf("ParseLine(%q): negative time %v", line, ev.Time)
		}
		// Encoding the event the way packer does must give it back.
		enc := formatLine(ev)
		ev2, ok := ParseLine(enc)
		if !ok {
			t.Fatalf("ParseLine(%q) = %#v, re-encoded as %q which does not parse", line, ev, enc)
		}
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("ParseLine(%q) = %#v\nre-encoded %q parses as %#v", line, ev, enc, ev2)
		}
		ev.UI()
		for _, a := range Artifacts([]Event{ev}) {
			if a.Build != ev.Target || a.Index < 0 {
				t.Fatalf("Artifacts(%#v) = %#v", ev, a)
			}
		}
	})
}

// Seeds: the fixture manifest here, plus testdata/fuzz/FuzzParseManifest.
func FuzzParseManifest(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "file-null-build.manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(twoRunManifest))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		last := m.LastRun()
		n := 0
		for _, b := range m.Builds {
			if m.LastRunUUID != "" && b.PackerRunUUID == m.LastRunUUID {
				n++
			}
		}
		if len(last) != n {
			t.Fatalf("LastRun returned %d builds, want %d", len(last), n)
		}
		// Artifact lines agreeing with the manifest must pass the cross-check.
		// Like packer, number artifacts per target: builds sharing a
		// target (two manifest post-processors in one build) get distinct
		// indexes.
		var evs []Event
		next := map[string]int{}
		for _, b := range last {
			target := b.BuilderType + "." + b.Name
			for range 2 { // the manifest post-processor re-emits its input
				i := next[target]
				next[target]++
				evs = append(evs, Event{Target: target, Type: TypeArtifact, Data: []string{strconv.Itoa(i), "id", b.ArtifactID}})
			}
		}
		res, err := ResultFrom(evs, m)
		if len(last) == 0 {
			if err == nil {
				t.Fatal("ResultFrom: no error for a manifest without a last run")
			}
			return
		}
		if err != nil {
			t.Fatalf("ResultFrom: %v", err)
		}
		if len(res.Builds) != len(last) || res.RunUUID != m.LastRunUUID {
			t.Fatalf("ResultFrom = %#v for last run %#v", res, last)
		}
		for i, b := range res.Builds {
			if b.ArtifactID != last[i].ArtifactID || b.Name != last[i].Name {
				t.Fatalf("build %d = %#v, manifest %#v", i, b, last[i])
			}
			checkArtifactMap(t, b.BuilderType, b.ArtifactID, b.Artifacts)
		}
	})
}

// checkArtifactMap checks that ParseArtifactID's map describes id exactly.
func checkArtifactMap(t *testing.T, builderType, id string, m map[string]string) {
	t.Helper()
	if len(m) == 0 {
		t.Fatalf("ParseArtifactID(%q, %q) is empty", builderType, id)
	}
	if v, ok := m[""]; ok {
		if len(m) != 1 || v != id {
			t.Fatalf("ParseArtifactID(%q, %q) = %v", builderType, id, m)
		}
		return
	}
	var pairs []string
	for r, v := range m {
		if r == "" || v == "" {
			t.Fatalf("ParseArtifactID(%q, %q) = %v", builderType, id, m)
		}
		pairs = append(pairs, r+":"+v)
	}
	parts := strings.Split(id, ",")
	sort.Strings(pairs)
	sort.Strings(parts)
	if !reflect.DeepEqual(pairs, parts) {
		t.Fatalf("ParseArtifactID(%q, %q) = %v", builderType, id, m)
	}
}
