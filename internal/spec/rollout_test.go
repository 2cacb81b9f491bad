package spec

import (
	"encoding/json"
	"testing"
	"time"

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
	assert.Equal(t, []Check{{Path: "/", ExpectStatus: 200, ExpectBody: "v2"}}, r.Checks)
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
	assert.Equal(t, Health{Path: "/healthz", Interval: Duration(time.Second), Timeout: Duration(time.Minute)}, r.Health)
	assert.Equal(t, 200, r.Checks[0].ExpectStatus)
	assert.Equal(t, BlueGreen, r.Strategy.Type)
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
	for _, e := range err.(Errors) {
		fields = append(fields, e.Field)
	}
	assert.Equal(t, []string{"service", "image", "fleet.size", "listen", "health.path", "health.timeout", "checks[0].expectStatus", "strategy.type"}, fields)
	msg := err.Error()
	assert.Contains(t, msg, `fleet.size: must be between 1 and 1000, got -1`)
	assert.Contains(t, msg, `image: is required: set image.id, image.channel or image.bake (or pass --image ID)`)
	assert.Contains(t, msg, `listen: "nowhere" is not host:port`)
}

func TestUnknownFieldsAndBadDurationsAreErrors(t *testing.T) {
	_, err := ParseRollout([]byte("service: hello\nfleets: {size: 3}\n"))
	require.Error(t, err)
	assert.True(t, IsInvalid(err))
	assert.Contains(t, err.Error(), "field fleets not found")

	_, err = ParseRollout([]byte("service: hello\nsoak: thirty\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"thirty" is not a duration; write it as 30s, 5m or 1h30m`)

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
