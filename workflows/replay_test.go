package workflows

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imago/imago/internal/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestReplayRecordedHistories replays real histories recorded from the integration
// tests, every file: those of older workflow code too (`make record-histories`
// adds today's beside them, never over them). A change to workflow code that
// would break running workflows fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories; run: make record-histories")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Rollout, workflow.RegisterOptions{Name: contract.WorkflowRollout})
			r.RegisterWorkflowWithOptions(Bake, workflow.RegisterOptions{Name: contract.WorkflowBake})
			r.RegisterWorkflowWithOptions(Pipeline, workflow.RegisterOptions{Name: contract.WorkflowPipeline})
			r.RegisterWorkflowWithOptions(Reaper, workflow.RegisterOptions{Name: contract.WorkflowReaper})
			r.RegisterWorkflowWithOptions(Campaign, workflow.RegisterOptions{Name: contract.WorkflowCampaign})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// TestRecordedHistoriesCoverEveryVersionChange: each change ID this package
// passes to workflow.GetVersion is in a Version marker of some recorded history,
// so the replay test replays the code after the change too, not only before it
// (`make record-histories` records today's paths).
func TestRecordedHistoriesCoverEveryVersionChange(t *testing.T) {
	changes := versionChanges(t)
	require.NotEmpty(t, changes)
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	recorded := map[string][]string{} // change ID → the files that recorded it
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var h historypb.History
		require.NoError(t, protojson.Unmarshal(data, &h), f)
		for _, ev := range h.GetEvents() {
			m := ev.GetMarkerRecordedEventAttributes()
			if m.GetMarkerName() != "Version" {
				continue
			}
			for _, p := range m.GetDetails()["change-id"].GetPayloads() {
				var id string
				require.NoError(t, json.Unmarshal(p.GetData(), &id), f)
				recorded[id] = append(recorded[id], filepath.Base(f))
			}
		}
	}
	for _, c := range changes {
		assert.NotEmpty(t, recorded[c], "no recorded history has the GetVersion change %q; record one with: make record-histories", c)
	}
}

// versionChanges lists the change IDs of the workflow.GetVersion calls in this
// package's code, string literals or string constants.
func versionChanges(t *testing.T) []string {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	consts := map[string]string{}
	var calls []ast.Expr
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if i < len(n.Values) {
						if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[id.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "GetVersion" && len(n.Args) == 4 {
					calls = append(calls, n.Args[1])
				}
			}
			return true
		})
	}
	var out []string
	for _, arg := range calls {
		switch a := arg.(type) {
		case *ast.BasicLit:
			id, _ := strconv.Unquote(a.Value)
			out = append(out, id)
		case *ast.Ident:
			id, ok := consts[a.Name]
			require.True(t, ok, "GetVersion change ID %s at %s is not a string constant of this package", a.Name, fset.Position(a.Pos()))
			out = append(out, id)
		default:
			t.Fatalf("GetVersion change ID at %s is neither a string literal nor a constant", fset.Position(arg.Pos()))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
