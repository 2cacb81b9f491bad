package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// problems parses and normalizes a rollout spec and returns what a user reads.
func problems(t *testing.T, yaml string) string {
	t.Helper()
	r, _ := ParseRollout([]byte(yaml))
	err := r.Normalize()
	require.Error(t, err)
	require.True(t, IsInvalid(err), "%v", err)
	return err.Error()
}

const valid = "service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\n"

// Each bad input the README's user met is named by its field path and line.
func TestBadInputNamesTheFieldAndTheLine(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"an explicit fleet size of 0 is not the default", valid + "fleet: {size: 0}\n",
			"fleet.size: line 4: must be between 1 and 10000, got 0"},
		{"a duration that is not one", valid + "soak: forever\n",
			`soak: line 4: "forever" is not a duration; write it as 30s, 5m or 1h30m`},
		{"a pause without a unit", valid + "strategy:\n  type: canary\n  steps:\n    - setWeight: 10\n    - pause: 20\n",
			"strategy.steps[1].pause: line 8: 20 has no unit; write 20s, 20m or 20h"},
		{"a pause's duration", valid + "strategy:\n  type: canary\n  steps:\n    - pause: {duration: soon}\n",
			`strategy.steps[0].pause.duration: line 7: "soon" is not a duration`},
		{"an unknown field inside a pause", valid + "strategy:\n  type: canary\n  steps:\n    - pause: {duraton: 1m}\n",
			"strategy.steps[0].pause.duraton: line 7: unknown field; the fields here are duration"},
		{"a Prometheus address without a scheme", valid + "analyses:\n  prom:\n    provider: prometheus\n    address: 127.0.0.1:9090\n    query: up\n    max: 1\n",
			`analyses.prom.address: line 7: "127.0.0.1:9090" has no scheme; write http://127.0.0.1:9090`},
		{"an http analysis URL without a scheme", valid + "analyses:\n  biz: {provider: http, url: stats.internal/api, field: x, min: 1}\n",
			`analyses.biz.url: line 5: "stats.internal/api" has no scheme; write http://stats.internal/api`},
		{"a Prometheus analysis without its address", valid + "analyses:\n  prom:\n    provider: prometheus\n    query: up\n    max: 1\n",
			"analyses.prom.address: line 5: (the Prometheus base URL) is required with provider prometheus"},
		{"a word for a number", valid + "retain: many\n", `retain: line 4: "many" is not a whole number`},
		{"a scalar for a list", valid + "checks: /healthz\n", `checks: line 4: want a list, got "/healthz"`},
		{"a list for a mapping", valid + "health: [/healthz]\n", "health: line 4: want a mapping (path, interval, timeout: …), got a list"},
		{"a number for a fleet", valid + "fleet: 3\n", "fleet: line 4: want a mapping (size: …), got \"3\""},
		{"a list for a duration", valid + "soak: [1m]\n", "soak: line 4: want a duration such as 30s or 5m"},
		{"a list for a pause", valid + "strategy:\n  type: canary\n  steps: [{pause: [1m]}]\n", "strategy.steps[0].pause: line 6: want a mapping (duration: …), got a list"},
		{"a mapping for a word", valid + "provider: {name: local}\n", "provider: line 4: want text, got a mapping"},
		{"a field given twice", valid + "soak: 1m\nsoak: 2m\n", "soak: line 5: is set twice (first on line 4)"},
		{"not YAML", "service: hello\n  image: [\n", "line 2: "},
		{"not a mapping", "- service: hello\n", "line 1: want a mapping of fields (service: hello, …), got a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, problems(t, tc.yaml), tc.want)
		})
	}
}

// All the problems of one file come in one error, in the order of its lines:
// what could not be decoded and what validation found, none hiding another.
func TestEveryProblemOfAFileIsListedInOrderOfItsLines(t *testing.T) {
	spec := `service: hello
image: {id: img-3f2a00000000}
fleet: {size: 0}
strategy:
  type: canary
  steps:
    - setWeight: 10
    - pause: 20
    - analysis: prom
analyses:
  prom:
    provider: prometheus
    query: up
    max: 0.05
soak: forever
retain: many
`
	r, err := ParseRollout([]byte(spec))
	require.Error(t, err, "decoding alone already reports what it could not decode")
	assert.Equal(t, []string{"strategy.steps[1].pause", "soak", "retain"}, fieldsOf(t, err))

	err = r.Normalize()
	require.Error(t, err)
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	assert.Equal(t, []string{"fleet.size", "strategy.steps[1].pause", "analyses.prom.address", "soak", "retain", "listen"}, fieldsOf(t, err))
	lines := make([]int, len(es))
	for i, e := range es {
		lines[i] = e.Line
	}
	assert.Equal(t, []int{3, 8, 11, 15, 16, 0}, lines, "sorted by line; listen, left out, has none and comes last")
	// strategy.steps[1] is not also "set exactly one of setWeight, pause, analysis":
	// that follows from its pause, already reported.
	assert.NotContains(t, err.Error(), "set exactly one")
	assert.Equal(t, `invalid spec:
  fleet.size: line 3: must be between 1 and 10000, got 0
  strategy.steps[1].pause: line 8: 20 has no unit; write 20s, 20m or 20h
  analyses.prom.address: line 11: (the Prometheus base URL) is required with provider prometheus
  soak: line 15: "forever" is not a duration; write it as 30s, 5m or 1h30m
  retain: line 16: "many" is not a whole number
  listen: is required for the local provider: the router's address, e.g. 127.0.0.1:9080`, err.Error())
}

func TestAFleetLeftOutOrEmptyGetsTheDefaultSize(t *testing.T) {
	for _, y := range []string{valid, valid + "fleet: {}\n", valid + "fleet: {size: ~}\n"} {
		r, err := ParseRollout([]byte(y))
		require.NoError(t, err)
		require.NoError(t, r.Normalize())
		assert.Equal(t, DefaultFleetSize, r.Fleet.Size, y)
	}
}

// YAML's anchors, aliases and merge keys work as they do in yaml.v3.
func TestAnchorsAliasesAndMergeKeysDecode(t *testing.T) {
	r, err := ParseRollout([]byte(valid + "checks: [&c {path: /a, expectStatus: 204}, *c]\nfleet: {size: 3}\nhealth:\n  <<: {path: /h, interval: 2s}\n  timeout: 9s\n"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, []contract.Check{{Path: "/a", ExpectStatus: 204}, {Path: "/a", ExpectStatus: 204}}, r.Checks)
	assert.Equal(t, contract.Health{Path: "/h", Interval: contract.Duration(2 * time.Second), Timeout: contract.Duration(9 * time.Second)}, r.Health)

	assert.Contains(t, problems(t, valid+"health:\n  <<: {path: /h, interval: soon}\n"), `health.interval: line 5: "soon" is not a duration`)
}

// A spec that normalized keeps no trace of its file: it equals itself after a
// JSON round trip, as Temporal stores it.
func TestANormalizedSpecForgetsItsFile(t *testing.T) {
	r, err := ParseRollout([]byte(valid))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Nil(t, r.src)
}

// A bake file's decoding problems and validation problems come together too.
func TestBakeFileListsDecodingAndValidationProblemsTogether(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bake.yaml")
	require.NoError(t, os.WriteFile(file, []byte("service: hello\nsource: nowhere\nforce: maybe\ntest:\n  health: {interval: soon}\n"), 0o600))
	b, err := LoadBake(file)
	require.True(t, IsInvalid(err), "%v", err)
	err = b.Normalize()
	require.True(t, IsInvalid(err), "%v", err)
	msg := err.Error()
	for _, want := range []string{
		"source: line 2: " + filepath.Join(dir, "nowhere") + " is not a directory",
		`force: line 3: "maybe" is not true or false`,
		`test.health.interval: line 5: "soon" is not a duration`,
		"entrypoint: is required",
	} {
		assert.Contains(t, msg, want)
	}
	assert.Less(t, strings.Index(msg, "source:"), strings.Index(msg, "force:"))
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	var out []string
	for _, e := range es {
		out = append(out, e.Field)
	}
	return out
}

// Sent as JSON (the API), an explicit size of 0 is an error too, and a size that
// is not a number is reported with its path among the other problems.
func TestJSONFleetSizeZeroIsAnErrorAndLeftOutIsTheDefault(t *testing.T) {
	normalize := func(body string) error {
		var r Rollout
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		r.Service, r.Image, r.Listen = "hello", contract.ImageRef{ID: "img-3f2a00000000"}, "127.0.0.1:9080"
		return r.Normalize()
	}
	assert.NoError(t, normalize(`{"fleet": {}}`))
	assert.NoError(t, normalize(`{"fleet": {"size": null}}`))
	assert.EqualError(t, normalize(`{"fleet": {"size": 0}}`), "invalid spec:\n  fleet.size: must be between 1 and 10000, got 0")
	assert.EqualError(t, normalize(`{"fleet": {"size": "three", "sise": 3}}`),
		"invalid spec:\n  fleet.sise: unknown field; the fields here are size\n  fleet.size: \"three\" is not a whole number")
	assert.EqualError(t, normalize(`{"fleet": 3}`), "invalid spec:\n  fleet: want an object such as {\"size\": 3}, got 3")
}
