package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

func TestBakeAnsibleStepsResolveAgainstTheFileAndKeepShellStepsStrings(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yml"), []byte("- hosts: localhost\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bake.yaml"), []byte("service: hello\nfiles: [main.go]\nentrypoint: [./hello]\n"+
		"provision:\n  - go build .\n  - {ansible: site.yml, extraVars: {greeting: hi}}\n"), 0o600))
	b, err := LoadBake(filepath.Join(dir, "bake.yaml"))
	require.NoError(t, err)
	require.NoError(t, b.Normalize())
	assert.Equal(t, []contract.ProvisionStep{{Shell: "go build ."}, {Ansible: filepath.Join(dir, "site.yml"), ExtraVars: map[string]string{"greeting": "hi"}}}, b.Provision)

	// A shell step is a JSON string, as provision was before it had other kinds
	// (recorded histories and input digests); both kinds round-trip.
	data, err := json.Marshal(b.Provision)
	require.NoError(t, err)
	assert.JSONEq(t, `["go build .", {"ansible": "`+filepath.Join(dir, "site.yml")+`", "extraVars": {"greeting": "hi"}}]`, string(data))
	var back []contract.ProvisionStep
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, b.Provision, back)
}

func TestBakeAnsibleProblemsNameTheirFieldAndLine(t *testing.T) {
	src := t.TempDir()
	for yaml, want := range map[string]string{
		"provision:\n  - {ansible: nowhere.yml}\n":                                      "provision[0].ansible: line 5: nowhere.yml is not a playbook file",
		"provision:\n  - {ansible: " + src + ", extraVars: {a-b: x}}\n":                 "provision[0].ansible: line 5: " + src + " is not a playbook file",
		"provision:\n  - {ansible: /etc/hostname, extraVars: {a-b: x}}\n":               `provision[0].extraVars: line 5: "a-b" is not an Ansible variable name`,
		"provision:\n  - {ansible: /etc/hostname, playbok: x}\n":                        "provision[0].playbok: line 5: unknown field; the fields here are ansible, extraVars",
		"provision:\n  - [a, b]\n":                                                      "provision[0]: line 5: ",
		"provision:\n  - {extraVars: {a: b}}\n":                                         "provision[0].extraVars: line 5: are for an ansible step",
		"provision:\n  - {ansible: /etc/hostname, extraVars: {imago_staging_dir: x}}\n": "imago_staging_dir is set by imago",
	} {
		doc := "service: hello\nsource: " + src + "\nentrypoint: [./hello]\n" + yaml
		b, err := ParseBake([]byte(doc))
		if err == nil {
			err = b.Normalize()
		}
		assert.ErrorContains(t, err, want, yaml)
	}
}
