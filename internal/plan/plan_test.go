package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the plans print")

// target is a real catalog (a file:// bucket in a temp dir) with hello live
// in prod on fleet fl-live, which came up in 800 ms and was healthy 2.5 s later.
func target(t *testing.T, live int) (*catalog.Catalog, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, "file://"+dir)
	require.NoError(t, err)
	t.Cleanup(func() { cat.Close() })
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	_, err = cat.RecordDeployment(ctx, contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-000000000001",
		FleetID: "fl-live", RolloutID: "rollout/prod/hello", RunID: "run-1", Action: contract.ActionRollout, Strategy: contract.BlueGreen,
		Outcome: contract.OutcomeSucceeded, Started: at, Finished: at.Add(time.Minute)})
	require.NoError(t, err)
	require.NoError(t, cat.RecordTiming(ctx, contract.Timing{Service: "hello", Environment: "prod", ImageID: "img-000000000001",
		FleetID: "fl-live", Instances: live, Provision: 800 * time.Millisecond, Healthy: 2500 * time.Millisecond, Measured: at.Add(10 * time.Second)}))
	return cat, dir
}

// tree is every file of dir with its contents: what a plan must not change.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	}))
	return out
}

func load(t *testing.T, name string) spec.Rollout {
	t.Helper()
	r, err := spec.LoadRollout(filepath.Join("testdata", name+".yaml"))
	require.NoError(t, err)
	require.NoError(t, r.Normalize())
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./internal/plan -run %s -update to write it", t.Name())
	require.Equal(t, string(want), string(got), "the printed plan differs from %s (go test ./internal/plan -update rewrites it)", path)
}

// TestPlanPrintsTheTimeline runs the real Rollout workflow for each spec of
// testdata and compares what imago plan prints with its golden file; the
// catalog it read is left as it was.
func TestPlanPrintsTheTimeline(t *testing.T) {
	thursday := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		live  int
		start time.Time
		setup func(*testing.T, *catalog.Catalog)
		check func(*testing.T, *Plan)
	}{
		{name: "bluegreen", live: 3, start: thursday, check: func(t *testing.T, p *Plan) {
			require.Equal(t, 6, p.Peak.Instances, "the new fleet of 3 beside the live 3")
			require.Empty(t, p.Approvals)
			// measured boot (0.8 + 2.5 s); provider local's checks 50 ms, route 50 ms; soak 30 s; terminate 200 ms
			require.Equal(t, 33600*time.Millisecond, p.Duration.D())
		}},
		{name: "canary", live: 3, start: thursday, check: func(t *testing.T, p *Plan) {
			gates := []string{}
			for _, a := range p.Approvals {
				gates = append(gates, a.Gate)
			}
			require.Equal(t, []string{"approval before cutover", "pause 5/7"}, gates, "the approval gate comes before the first traffic step")
		}},
		{name: "rolling", live: 6, start: thursday, check: func(t *testing.T, p *Plan) {
			require.NotNil(t, p.Budget)
			require.Equal(t, Budget{MaxSurge: 1, MaxUnavailable: 0, Most: 7, Fewest: 6, Within: true}, *p.Budget)
			require.Equal(t, 7, p.Peak.Instances)
			require.Equal(t, 6, p.Peak.Serving)
		}},
		{name: "window", live: 3, start: time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC), check: func(t *testing.T, p *Plan) {
			require.Len(t, p.Conflicts, 1)
			require.Equal(t, "window", p.Conflicts[0].Kind)
			// Friday 18:00 Berlin until Monday 09:00 Berlin
			require.Equal(t, 63*time.Hour, p.Conflicts[0].Duration.D())
		}},
		{name: "freeze", live: 3, start: thursday, setup: func(t *testing.T, cat *catalog.Catalog) {
			until := thursday.Add(20 * time.Minute)
			_, err := cat.StartFreeze(context.Background(), contract.Freeze{Environment: "prod", Reason: "database migration", By: "ops",
				Since: thursday.Add(-time.Hour), Until: &until})
			require.NoError(t, err)
		}, check: func(t *testing.T, p *Plan) {
			require.Len(t, p.Conflicts, 1)
			require.Equal(t, "freeze", p.Conflicts[0].Kind)
			require.Equal(t, 20*time.Minute, p.Conflicts[0].Duration.D())
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat, dir := target(t, c.live)
			if c.setup != nil {
				c.setup(t, cat)
			}
			before := tree(t, dir)
			p, err := Run(context.Background(), cat, load(t, c.name), Options{Start: c.start})
			require.NoError(t, err)
			require.Equal(t, contract.PhaseSucceeded, p.Outcome, p.Error)
			var out bytes.Buffer
			require.NoError(t, p.WriteText(&out))
			golden(t, c.name, out.Bytes())
			c.check(t, p)
			require.Equal(t, before, tree(t, dir), "a plan reads the catalog, it never writes it")

			// -o json is the same plan.
			b, err := json.Marshal(p)
			require.NoError(t, err)
			var back Plan
			require.NoError(t, json.Unmarshal(b, &back))
			require.Equal(t, p.Duration, back.Duration)
			require.Equal(t, len(p.Timeline), len(back.Timeline))
		})
	}
}

// TestPlanOfAFirstRolloutUsesStatedDefaults: with nothing measured and
// nothing live, the plan says so and assumes the defaults.
func TestPlanOfAFirstRolloutUsesStatedDefaults(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "file://"+t.TempDir())
	require.NoError(t, err)
	defer cat.Close()
	p, err := Run(ctx, cat, load(t, "bluegreen"), Options{})
	require.NoError(t, err)
	require.Nil(t, p.Live)
	require.Equal(t, DefaultProvision, p.Assumptions[0].Duration.D())
	require.Equal(t, DefaultHealthy, p.Assumptions[1].Duration.D())
	require.Contains(t, p.Assumptions[0].Source, "default")
	// provision, healthy, checks, route (provider local, the spec's default); no soak nor terminate without an old fleet
	require.Equal(t, DefaultProvision+DefaultHealthy+LocalChecks+LocalRoute, p.Duration.D())
}
