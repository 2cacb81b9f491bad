package activities

import (
	"reflect"
	"slices"
	"testing"

	"github.com/imago/imago/internal/contract"
)

// TestActivityNamesAreTheContracts: the worker registers each method of
// *Activities under its name (RegisterActivity), and the workflows call
// activities by contract.Activity*: both lists must be the same, or a
// workflow schedules an activity no worker runs.
func TestActivityNamesAreTheContracts(t *testing.T) {
	typ := reflect.TypeFor[*Activities]()
	var methods []string
	for i := range typ.NumMethod() {
		methods = append(methods, typ.Method(i).Name)
	}
	want := slices.Clone(contract.Activities)
	slices.Sort(want)
	slices.Sort(methods)
	if !slices.Equal(methods, want) {
		t.Fatalf("methods of *Activities (registered as activity types):\n  %v\ncontract.Activities:\n  %v", methods, want)
	}
}
