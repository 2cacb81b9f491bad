package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imago/imago/internal/contract"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExamplePipelineLoads(t *testing.T) {
	p, err := LoadPipeline("../../examples/hello/pipeline.yaml")
	require.NoError(t, err)
	assert.Equal(t, "hello", p.Name)
	require.NotNil(t, p.Bake)
	assert.Equal(t, "hello", p.Bake.Service)
	require.Len(t, p.Stages, 2)
	assert.Equal(t, "staging", p.Stages[0].Rollout.Environment)
	assert.Equal(t, "prod", p.Stages[1].Rollout.Environment)
	assert.True(t, p.Stages[1].Approval.Required)
	assert.Equal(t, contract.ImageRef{}, p.Stages[1].Rollout.Image, "the pipeline sets the image")
	assert.Equal(t, 3, p.Stages[1].Rollout.Fleet.Size)
}

func TestPipelineReportsEveryProblemWithItsPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("staging.yaml", "service: other\nenvironment: staging\nlisten: 127.0.0.1:9081\nimage: {id: img-abc}\n")
	write("prod.yaml", "service: hello\nenvironment: staging\nlisten: 127.0.0.1:9082\nfleet: {size: 50000}\n")
	write("p.yaml", "name: Bad_Name\nbake: missing.yaml\nonBaseChange: true\nstages:\n  - rollout: staging.yaml\n  - rollout: prod.yaml\n  - {}\n")
	_, err := LoadPipeline(filepath.Join(dir, "p.yaml"))
	require.Error(t, err)
	require.True(t, IsInvalid(err), "%v", err)
	for _, want := range []string{
		"name: line 1: \"Bad_Name\" must be",
		"bake: line 2: read bake spec",
		"stages[0].rollout.image: line 5: is set by the pipeline",
		"stages[1].rollout.fleet.size: prod.yaml line 4: must be between 1 and 10000",
		"stages[2].rollout: line 7: is required",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestPipelineUnknownFieldIsAnError(t *testing.T) {
	_, err := ParsePipeline([]byte("name: x\nstage: []\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stage: line 2: unknown field; the fields here are name, bake, image, onBaseChange, stages")
}

// The pipeline file's own decoding problems come with those of its stages' files.
func TestPipelineListsItsDecodingProblemsWithItsStagesProblems(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prod.yaml"), []byte("service: hello\nenvironment: prod\nlisten: 127.0.0.1:9082\nsoak: forever\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("name: hello\nimage: {channel: stable}\nstages:\n  - rollout: prod.yaml\n    approval: {required: yes please}\n"), 0o600))
	_, err := LoadPipeline(filepath.Join(dir, "p.yaml"))
	require.True(t, IsInvalid(err), "%v", err)
	assert.Contains(t, err.Error(), `stages[0].approval.required: line 5: "yes please" is not true or false`)
	assert.Contains(t, err.Error(), `stages[0].rollout.soak: prod.yaml line 4: "forever" is not a duration`)
}
