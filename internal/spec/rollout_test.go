package spec

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const full = `
service: hello
environment: dev
provider: local
image: {id: img-3f2a00000000}
fleet: {size: 3}
listen: 127.0.0.1:9080
health: {path: /healthz, interval: 1s, timeout: 60s}
checks:
  - {path: /, expectStatus: 200, expectBody: "v2"}
strategy: {type: blueGreen}
soak: 30s
`

func TestParseFullSpec(t *testing.T) {
	r, err := ParseRollout([]byte(full))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, "hello", r.Service)
	assert.Equal(t, 3, r.Fleet.Size)
	assert.Equal(t, 60*time.Second, r.Health.Timeout.D())
	assert.Equal(t, []contract.Check{{Path: "/", ExpectStatus: 200, ExpectBody: "v2"}}, r.Checks)
	assert.Equal(t, 30*time.Second, r.SoakDuration())
	assert.Equal(t, "rollout/dev/hello", r.WorkflowID())
}

func TestDefaultsFillWhatIsLeftOut(t *testing.T) {
	r, err := ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\nchecks: [{path: /}]\n"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, "dev", r.Environment)
	assert.Equal(t, "local", r.Provider)
	assert.Equal(t, DefaultFleetSize, r.Fleet.Size)
	assert.Equal(t, contract.Health{Path: "/healthz", Interval: contract.Duration(time.Second), Timeout: contract.Duration(time.Minute)}, r.Health)
	assert.Equal(t, 200, r.Checks[0].ExpectStatus)
	assert.Equal(t, contract.BlueGreen, r.Strategy.Type)
	assert.Equal(t, 30*time.Second, r.SoakDuration())
}

func TestExplicitZeroSoakIsKept(t *testing.T) {
	r, err := ParseRollout([]byte("service: hello\nimage: {id: img-3f2a00000000}\nlisten: 127.0.0.1:9080\nsoak: 0s\n"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, time.Duration(0), r.SoakDuration())
}

func TestValidationReportsEveryProblemWithItsFieldPath(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: Hello_World
fleet: {size: -1}
listen: nowhere
health: {path: healthz, interval: 5s, timeout: 1s}
checks: [{path: /, expectStatus: 999}]
strategy: {type: yolo}
`))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	assert.True(t, IsInvalid(err))
	var fields []string
	for _, e := range err.(contract.FieldErrors) {
		fields = append(fields, e.Field)
	}
	// In the order of the file; image, left out, has no line and comes last.
	assert.Equal(t, []string{"service", "fleet.size", "listen", "health.path", "health.timeout", "checks[0].expectStatus", "strategy.type", "image"}, fields)
	msg := err.Error()
	assert.Contains(t, msg, `fleet.size: line 3: must be between 1 and 10000, got -1`)
	assert.Contains(t, msg, `image: is required: set image.id, image.channel or image.bake (or pass --image ID)`)
	assert.Contains(t, msg, `listen: line 4: "nowhere" is not host:port`)
}

func TestUnknownFieldsAndBadDurationsAreErrors(t *testing.T) {
	_, err := ParseRollout([]byte("service: hello\nfleets: {size: 3}\n"))
	require.Error(t, err)
	assert.True(t, IsInvalid(err))
	assert.Contains(t, err.Error(), "fleets: line 2: unknown field; the fields here are service, environment,")

	_, err = ParseRollout([]byte("service: hello\nsoak: thirty\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `soak: line 2: "thirty" is not a duration; write it as 30s, 5m or 1h30m`)

	_, err = ParseRollout([]byte(""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the spec is empty")
}

func TestDurationRoundTripsThroughJSON(t *testing.T) {
	r, err := ParseRollout([]byte(full))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	data, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"timeout":"1m0s"`)
	var back Rollout
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, r, back)
}

// FuzzParseRollout: decoding and validating any input never panics, and a spec
// that validates keeps validating after a JSON round trip (what Temporal stores).
func FuzzParseRollout(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("service: hello\nimage: {id: img-1}\nlisten: 127.0.0.1:1\n"))
	f.Add([]byte("soak: -5s\nfleet: {size: 100000}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRollout(data)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("parse error is not a spec error: %v", err)
			}
			return
		}
		if r.Normalize() != nil {
			return
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Rollout
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("round trip of %s: %v", enc, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("valid spec invalid after round trip: %v", err)
		}
	})
}

func TestCanarySpecParsesStepsPausesAndAnalyses(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
strategy:
  type: canary
  steps:
    - setWeight: 10
    - pause: 30s
    - analysis: errors
    - setWeight: 50
    - pause: {}
analyses:
  errors: {provider: router, max: 0.05, interval: 2s, count: 3}
approval: {required: true, timeout: 1h}
verify: {analysis: errors}
`))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	steps := r.Strategy.Steps
	require.Len(t, steps, 5)
	assert.Equal(t, 10, *steps[0].SetWeight)
	assert.Equal(t, 30*time.Second, steps[1].Pause.Duration.D())
	assert.Equal(t, "errors", steps[2].Analysis)
	assert.True(t, steps[4].Pause.Indefinite())
	a := r.Analyses["errors"]
	assert.Equal(t, "errorRate", a.Metric)
	assert.Equal(t, 4, *a.ConsecutiveErrorLimit)
	assert.Equal(t, 10, a.MinRequests)
	assert.Equal(t, time.Hour, r.Approval.Timeout.D())
}

func TestStrategyProblemsAreReportedByPath(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
strategy:
  type: canary
  steps:
    - setWeight: 50
    - setWeight: 20
    - analysis: nope
    - {setWeight: 60, pause: 1s}
analyses:
  bad: {provider: graphite}
verify: {analysis: missing}
`))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "strategy.steps[1].setWeight: line 9: 20 is below the previous weight 50")
	assert.Contains(t, msg, `strategy.steps[2].analysis: line 10: "nope" is not defined under analyses`)
	assert.Contains(t, msg, "strategy.steps[3]: line 11: set exactly one of setWeight, pause, analysis")
	assert.Contains(t, msg, `analyses.bad.provider: line 13: "graphite": use router, prometheus or http`)
	assert.Contains(t, msg, `verify.analysis: line 14: "missing" is not defined under analyses`)
}

func TestOnNoDataIsValidatedByPathAndLine(t *testing.T) {
	r, err := ParseRollout([]byte(`
service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
strategy:
  type: canary
  steps: [{analysis: errors}, {analysis: quiet}]
analyses:
  errors:
    provider: prometheus
    address: http://prometheus:9090
    query: sum(rate(imago_router_errors_total{fleet="{{fleet}}"}[1m]))
    max: 0.05
    onNoData: ignore
  quiet: {provider: router, max: 0.05, onNoData: pass}
`))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	require.Len(t, es, 1, "only errors' onNoData is wrong: %v", err)
	assert.Equal(t, "analyses.errors.onNoData", es[0].Field)
	assert.Equal(t, 14, es[0].Line)
	assert.Contains(t, err.Error(), `analyses.errors.onNoData: line 14: "ignore": want inconclusive (the default: wait for a person), fail or pass`)
	assert.Equal(t, "pass", r.Analyses["quiet"].Spec().OnNoData)
}

func TestRollingWavesAreACountOrAPercent(t *testing.T) {
	for _, tc := range []struct {
		waves contract.Waves
		n     int
		want  int
	}{{"1", 3, 1}, {"2", 5, 2}, {"25%", 10, 3}, {"100%", 4, 4}, {"9", 3, 3}, {"", 3, 1}} {
		got, err := tc.waves.Size(tc.n)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%q of %d", tc.waves, tc.n)
	}
	_, err := contract.Waves("0%").Size(3)
	assert.Error(t, err)
}

// A spec encodes as its contract data, which the Rollout workflow receives:
// the same JSON names, and a round trip through the workflow's type (env
// values and secrets, fleet, strategy, …) gives the spec back.
func TestRolloutEncodesAsItsContractData(t *testing.T) {
	r, err := ParseRollout([]byte(full + "env: {LOG_LEVEL: debug, DB_PASSWORD: {secret: \"file:///etc/imago/db\"}}\n"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	asSpec, err := json.Marshal(r)
	require.NoError(t, err)
	asContract, err := json.Marshal(r.Rollout)
	require.NoError(t, err)
	assert.JSONEq(t, string(asSpec), string(asContract))
	assert.Contains(t, string(asSpec), `"env":{"DB_PASSWORD":{"secret":"file:///etc/imago/db"},"LOG_LEVEL":"debug"}`)
	assert.Contains(t, string(asSpec), `"fleet":{"size":3}`)

	var back contract.Rollout
	require.NoError(t, json.Unmarshal(asSpec, &back))
	assert.Equal(t, r.Rollout, back)
}
