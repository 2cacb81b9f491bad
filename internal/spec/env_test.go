package spec

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/contract"
)

const withEnv = `service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
env:
  LOG_LEVEL: debug
  GREETING: "hi there"
  DB_PASSWORD: {secret: "file:///etc/imago/db-password"}
  API_TOKEN:
    secret: https://vault.example.com/v1/token
`

func TestEnvTakesValuesAndSecretReferences(t *testing.T) {
	r, err := ParseRollout([]byte(withEnv))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	assert.Equal(t, map[string]contract.EnvValue{
		"LOG_LEVEL":   {Value: "debug"},
		"GREETING":    {Value: "hi there"},
		"DB_PASSWORD": {Secret: "file:///etc/imago/db-password"},
		"API_TOKEN":   {Secret: "https://vault.example.com/v1/token"},
	}, r.Env)

	// The JSON form (the API's, the workflow input's) says the same, and a
	// secret stays a reference.
	data, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"env":{"API_TOKEN":{"secret":"https://vault.example.com/v1/token"},"DB_PASSWORD":{"secret":"file:///etc/imago/db-password"},"GREETING":"hi there","LOG_LEVEL":"debug"}`)
	var back Rollout
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, r.Env, back.Env)
}

func TestEnvProblemsNameTheFieldAndLine(t *testing.T) {
	r, err := ParseRollout([]byte(`service: hello
image: {id: img-3f2a00000000}
listen: 127.0.0.1:9080
env:
  PORT: "8080"
  HOST: 0.0.0.0
  2FAST: x
  IMAGO_HOME: /tmp
  REL: {secret: "file://etc/secret"}
  RELPATH: {secret: "file:relative"}
  GOPHER: {secret: "gopher://x"}
  TYPO: {secrte: "file:///x"}
  LIST: [a, b]
`))
	require.Error(t, err) // the typo and the list do not decode
	err = r.Normalize()
	require.Error(t, err)
	var es contract.FieldErrors
	require.ErrorAs(t, err, &es)
	got := map[string]int{}
	for _, e := range es {
		got[e.Field] = e.Line
	}
	assert.Equal(t, map[string]int{
		"env.PORT":           5,
		"env.HOST":           6,
		"env.2FAST":          7,
		"env.IMAGO_HOME":     8,
		"env.REL.secret":     9,
		"env.RELPATH.secret": 10,
		"env.GOPHER.secret":  11,
		"env.TYPO.secrte":    12,
		"env.LIST":           13,
	}, got, "%v", err)
	assert.Contains(t, err.Error(), "env.PORT: line 5: PORT is set by the provider for every instance")
	assert.Contains(t, err.Error(), "must be an absolute path")
}

func TestEnvIsRefusedForAWS(t *testing.T) {
	r, err := ParseRollout([]byte("service: hello\nprovider: aws\nimage: {id: img-3f2a00000000}\nenv: {A: b}\n"))
	require.NoError(t, err)
	err = r.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "env: line 4: the aws provider cannot give instances an environment")
}

func TestEnvJSONProblemsAreReportedWithTheirPath(t *testing.T) {
	var r Rollout
	require.NoError(t, json.Unmarshal([]byte(`{"service":"hello","image":{"id":"img-3f2a00000000"},"listen":"127.0.0.1:9080","env":{"A":3,"B":{"vault":"x"}}}`), &r))
	err := r.Normalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "env.A: want a string")
	assert.Contains(t, err.Error(), `env.B: unknown field "vault"`)
}

func TestBakeEntrypointWithBadVariablesNamesItsLine(t *testing.T) {
	b, err := ParseBake([]byte("service: hello\nsource: " + t.TempDir() + "\nentrypoint: [./hello, --port, \"${PORT\"]\n"))
	require.NoError(t, err)
	err = b.Normalize()
	assert.ErrorContains(t, err, `entrypoint: line 3: entrypoint "./hello --port ${PORT" cannot be expanded: word 3 "${PORT": ${ is not closed by }`)

	b, err = ParseBake([]byte("service: hello\nsource: " + t.TempDir() + "\nentrypoint: [./hello, --port, $PORT, --greeting, \"${GREETING}\"]\n"))
	require.NoError(t, err)
	err = b.Normalize()
	assert.ErrorContains(t, err, `entrypoint: line 3: entrypoint "./hello --port $PORT --greeting ${GREETING}" uses GREETING, which is neither PORT, HOST nor a key of env: a bake tests its image on an instance that has only PORT and HOST`)

	b, err = ParseBake([]byte("service: hello\nsource: " + t.TempDir() + "\nentrypoint: [./hello, --addr, \"${HOST}:$PORT\"]\n"))
	require.NoError(t, err)
	assert.NoError(t, b.Normalize())
}
