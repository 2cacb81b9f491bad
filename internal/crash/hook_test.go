//go:build imago_crash

package crash

import (
	"context"
	"strings"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

func TestFromEnvUnsetIsNil(t *testing.T) {
	t.Setenv(EnvVar, "")
	i, err := FromEnv()
	if i != nil || err != nil {
		t.Fatalf("FromEnv() = %v, %v; want nil, nil", i, err)
	}
	t.Setenv(EnvVar, "sometime:Provision")
	if _, err := FromEnv(); err == nil {
		t.Fatal("a malformed point must be an error")
	}
}

// The interceptor fires exactly at the chosen point (a recording kill stands in
// for SIGKILL here; the crash suite in internal/app kills real workers).
func TestFiresAtThePoint(t *testing.T) {
	var ran []string
	act := func(ctx context.Context, name string) (string, error) {
		ran = append(ran, name)
		return name, nil
	}
	for _, c := range []struct {
		at       string
		calls    int
		firesAt  int    // 1-based call that fires; 0 never
		ranFirst bool   // the activity body ran before the kill
		msg      string // part of the kill message
	}{
		{"before:Act", 2, 1, false, "before it runs"},
		{"after:Act#2", 3, 2, true, "after it returned"},
		{"after:Other", 2, 0, true, ""},
		{"mid:Act@0s", 1, 1, true, "returned before the mid point"},
	} {
		p, err := Parse(c.at)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		var ranAtKill []int
		w := &workerInterceptor{p: p}
		w.kill = func(msg string) { msgs = append(msgs, msg); ranAtKill = append(ranAtKill, len(ran)) }
		ran = nil
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestActivityEnvironment()
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{w}})
		env.RegisterActivityWithOptions(act, activity.RegisterOptions{Name: "Act"})
		for i := 0; i < c.calls; i++ {
			if _, err := env.ExecuteActivity("Act", "x"); err != nil {
				t.Fatalf("%s: %v", c.at, err)
			}
		}
		if c.firesAt == 0 {
			if len(msgs) != 0 {
				t.Errorf("%s fired: %v", c.at, msgs)
			}
			continue
		}
		if len(msgs) != 1 || !strings.Contains(msgs[0], c.msg) || !strings.Contains(msgs[0], c.at) && !strings.Contains(msgs[0], p.String()) {
			t.Errorf("%s: kill messages %q; want one containing %q", c.at, msgs, c.msg)
			continue
		}
		want := c.firesAt - 1
		if c.ranFirst {
			want = c.firesAt
		}
		if ranAtKill[0] != want {
			t.Errorf("%s: killed after %d runs of the activity; want %d", c.at, ranAtKill[0], want)
		}
	}
}
