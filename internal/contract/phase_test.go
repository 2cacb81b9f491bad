package contract

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// Every Phase constant has its own string: "bake-time" (a rollout watching
// its new fleet) is not the pipelines' "baking", and no two phases read the
// same in status, the ImagoPhase attribute or the events.
func TestPhaseStringsAreUnique(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "phase.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Phase" {
				continue
			}
			for i, name := range v.Names {
				lit, ok := v.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				str, _ := strconv.Unquote(lit.Value)
				if other, dup := seen[str]; dup {
					t.Errorf("%s and %s are both %q", other, name.Name, str)
				}
				seen[str] = name.Name
			}
		}
	}
	if seen["bake-time"] != "PhaseBakeTime" || seen["baking"] != "PhaseBaking" {
		t.Errorf("the phases parsed: %v", seen)
	}
	// The final phases are Outcomes' forms: none of them is another phase's string.
	for _, o := range []Outcome{OutcomeSucceeded, OutcomeFailed, OutcomeAborted, OutcomeRolledBack, OutcomeCanceled, OutcomeSkipped} {
		if name, dup := seen[string(o)]; dup {
			t.Errorf("%s is the outcome %q too", name, o)
		}
	}
}
