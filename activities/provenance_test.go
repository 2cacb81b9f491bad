package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/provenance"
)

// writeTree writes files (path relative to dir: content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// The input digest of a bake without Ansible is what it was before the roots it
// reads were shared with the provenance (the golden digest is what the code
// before gave).
func TestTheInputDigestOfABakeIsUnchanged(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"src/main.go": "package main\n", "src/lib/x.go": "package lib\n", "hello.sh": "echo hello\n"})
	b := contract.Bake{Service: "web", Builder: contract.BuilderLocal, Source: filepath.Join(dir, "src"), Files: []string{filepath.Join(dir, "hello.sh")},
		Provision: []contract.ProvisionStep{{Shell: "go build -o hello ."}}, Variables: map[string]string{"VERSION": "v1"},
		Entrypoint: []string{"./hello"}, Labels: map[string]string{"team": "platform"}}
	out, err := (&Activities{}).BakeDigest(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:e89520a24674f11be3a2338d114a5a5f0bae186454ad401f3a869d303922c475"; out.InputDigest != want {
		t.Fatalf("input digest = %s, want %s", out.InputDigest, want)
	}
}

// A bake with an Ansible step lists the playbook's directory (the playbook, its
// roles) among its provenance materials, named after the playbook, with the
// digest its input digest reads; a changed role changes both.
func TestProvenanceMaterialsListTheAnsiblePlaybook(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"main.go":                           "package main\n",
		"ansible/site.yml":                  "- hosts: all\n  roles: [motd]\n",
		"ansible/roles/motd/tasks/main.yml": "- copy: {content: hello, dest: greeting.txt}\n",
	})
	playbook := filepath.Join(dir, "ansible", "site.yml")
	b := contract.Bake{Service: "web", Builder: contract.BuilderLocal, Files: []string{filepath.Join(dir, "main.go")},
		Provision:  []contract.ProvisionStep{{Shell: "true"}, {Ansible: playbook}, {Ansible: playbook, ExtraVars: map[string]string{"again": "yes"}}},
		Entrypoint: []string{"./hello"}, Variables: map[string]string{"VERSION": "v1"}}
	a := &Activities{Worker: "test-worker"}
	materials := func() (map[string]provenance.Material, string) {
		t.Helper()
		out := t.TempDir()
		if err := a.writeProvenanceInputs(b, nil, out, time.Now()); err != nil {
			t.Fatal(err)
		}
		var in provenanceInputs
		if err := readJSON(filepath.Join(out, provenanceInputsFile), &in); err != nil {
			t.Fatal(err)
		}
		ms := map[string]provenance.Material{}
		for _, m := range in.Materials {
			if _, dup := ms[m.Name]; dup {
				t.Errorf("material %s listed twice: %+v", m.Name, in.Materials)
			}
			ms[m.Name] = m
		}
		dig, err := a.BakeDigest(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		return ms, dig.InputDigest
	}
	ms, digest := materials()
	if len(ms) != 2 {
		t.Errorf("materials = %+v, want file:main.go and ansible:site.yml", ms)
	}
	m, ok := ms["ansible:site.yml"]
	if !ok {
		t.Fatalf("no ansible:site.yml among the materials %+v", ms)
	}
	h := sha256.New()
	if err := hashTree(h, filepath.Join(dir, "ansible")); err != nil {
		t.Fatal(err)
	}
	if want := "file://" + filepath.ToSlash(filepath.Join(dir, "ansible")); m.URI != want {
		t.Errorf("URI = %s, want %s", m.URI, want)
	}
	if want := "sha256:" + hex.EncodeToString(h.Sum(nil)); m.Digest != want {
		t.Errorf("digest = %s, want the playbook directory's %s", m.Digest, want)
	}

	writeTree(t, dir, map[string]string{"ansible/roles/motd/tasks/main.yml": "- copy: {content: bye, dest: greeting.txt}\n"})
	ms2, digest2 := materials()
	if ms2["ansible:site.yml"].Digest == m.Digest {
		t.Error("a changed role left the material's digest as it was")
	}
	if ms2["file:main.go"] != ms["file:main.go"] {
		t.Error("an unchanged file's material changed")
	}
	if digest2 == digest {
		t.Error("a changed role left the input digest as it was")
	}
}
