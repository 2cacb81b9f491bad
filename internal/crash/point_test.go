package crash

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Point{
		"before:Provision":    {When: Before, Activity: "Provision", N: 1},
		"after:SetRoute#2":    {When: After, Activity: "SetRoute", N: 2},
		"mid:WaitHealthy":     {When: Mid, Activity: "WaitHealthy", N: 1, Delay: time.Second},
		"mid:BakeBuild#3@2s":  {When: Mid, Activity: "BakeBuild", N: 3, Delay: 2 * time.Second},
		" after:Terminate  ":  {When: After, Activity: "Terminate", N: 1},
		"mid:TestImage@100ms": {When: Mid, Activity: "TestImage", N: 1, Delay: 100 * time.Millisecond},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Provision", "during:Provision", "after:", "after:SetRoute#0", "after:SetRoute#x", "after:SetRoute@1s", "mid:X@soon"} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), EnvVar) {
			t.Errorf("Parse(%q) = %v; want an error naming %s", in, err, EnvVar)
		}
	}
}

// Without the imago_crash tag the hook is not in the binary: IMAGO_CRASH_AT,
// even well-formed, arms nothing.
func TestHookOnlyInTaggedBuilds(t *testing.T) {
	t.Setenv(EnvVar, "before:Provision")
	hook, err := FromEnv()
	if Enabled != (hook != nil) || err != nil {
		t.Fatalf("Enabled %v, FromEnv() = %v, %v", Enabled, hook, err)
	}
}
