package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// TestLifecycleActivities: the plan lists what the rule does; applying it
// deprecates and deletes (tombstones stay); applying a decision that no
// longer holds — the image went live since the plan — is refused; a rollout's
// resolve step refuses the deprecated image unless the spec allows it, and the
// deleted one always.
func TestLifecycleActivities(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	now := time.Now().UTC()
	for id, age := range map[string]time.Duration{"img-live": 300, "img-old": 200, "img-stale": 40, "img-late": 50} {
		if _, err := cat.Publish(ctx, contract.Image{ID: id, Service: "hello", Builder: "test", Created: now.Add(-age * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cat.RecordDeployment(ctx, contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-live", RunID: "r1", Outcome: contract.OutcomeSucceeded}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.SetLifecycle(ctx, contract.LifecycleRule{Service: "hello", DeprecateAfter: contract.Duration(30 * 24 * time.Hour), DeleteAfter: contract.Duration(90 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	a := &Activities{Catalog: cat}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)

	val, err := env.ExecuteActivity(a.PlanLifecycle)
	if err != nil {
		t.Fatal(err)
	}
	var ds []contract.LifecycleDecision
	if err := val.Get(&ds); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	byID := map[string]contract.LifecycleDecision{}
	for _, d := range ds {
		got[d.ImageID] = d.Action
		byID[d.ImageID] = d
	}
	want := map[string]string{"img-live": "keep", "img-old": "delete", "img-stale": "deprecate", "img-late": "deprecate"}
	if len(got) != len(want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("plan %s: %s, want %s", id, got[id], w)
		}
	}
	for _, id := range []string{"img-old", "img-stale"} {
		if _, err := env.ExecuteActivity(a.ApplyLifecycle, contract.ApplyLifecycleInput{Decision: byID[id]}); err != nil {
			t.Fatalf("apply %s: %v", id, err)
		}
	}
	// img-late goes live after the plan: the apply refuses to deprecate it.
	if _, err := cat.RecordDeployment(ctx, contract.Deployment{Service: "hello", Environment: "staging", ImageID: "img-late", RunID: "r2", Outcome: contract.OutcomeSucceeded}); err != nil {
		t.Fatal(err)
	}
	_, err = env.ExecuteActivity(a.ApplyLifecycle, contract.ApplyLifecycleInput{Decision: byID["img-late"]})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("apply to an image live since the plan = %v, want a non-retryable refusal", err)
	}
	wantIn(t, err.Error(), "image img-late is no longer to deprecate: keep now (live in staging)")

	old, _ := cat.Get(ctx, "img-old")
	stale, _ := cat.Get(ctx, "img-stale")
	late, _ := cat.Get(ctx, "img-late")
	if old.Deleted == nil || old.Deleted.Rule != "lifecycle rule hello#1" || stale.Deprecated == nil || late.Deprecated != nil {
		t.Fatalf("after apply: old deleted=%+v, stale deprecated=%+v, late deprecated=%+v", old.Deleted, stale.Deprecated, late.Deprecated)
	}

	resolve := func(ref contract.ImageRef) (string, error) {
		val, err := env.ExecuteActivity(a.ResolveImage, contract.ResolveImageInput{Service: "hello", Ref: ref})
		if err != nil {
			return "", err
		}
		var res contract.ResolveImageResult
		return res.ImageID, val.Get(&res)
	}
	_, err = resolve(contract.ImageRef{ID: "img-stale"})
	if !errors.As(err, &app) || app.Type() != contract.ErrImageDeprecated || !app.NonRetryable() {
		t.Fatalf("resolve a deprecated image = %v, want a non-retryable %s", err, contract.ErrImageDeprecated)
	}
	wantIn(t, err.Error(), "image img-stale is deprecated by lifecycle rule hello#1 since", "--allow-deprecated")
	if id, err := resolve(contract.ImageRef{ID: "img-stale", AllowDeprecated: true}); err != nil || id != "img-stale" {
		t.Errorf("resolve a deprecated image with allowDeprecated = %q, %v", id, err)
	}
	_, err = resolve(contract.ImageRef{ID: "img-old", AllowDeprecated: true})
	if !errors.As(err, &app) || app.Type() != contract.ErrImageRevoked {
		t.Fatalf("resolve a deleted image = %v, want a refusal", err)
	}
	wantIn(t, err.Error(), "image img-old was deleted by lifecycle rule hello#1")
}

func wantIn(t *testing.T, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%q does not contain %q", s, p)
		}
	}
}
