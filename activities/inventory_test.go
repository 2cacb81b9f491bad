package activities

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/catalog"
)

func TestRecordDeploymentAndPreviousImage(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, id := range []string{"img-v1", "img-v2", "img-v3"} {
		if _, err := cat.Publish(ctx, catalog.Image{ID: id, Service: "hello", Builder: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	a := &Activities{Catalog: cat}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)

	previous := func(current string) PreviousImageResult {
		t.Helper()
		val, err := env.ExecuteActivity(a.PreviousImage, PreviousImageInput{Service: "hello", Environment: "prod", Current: current})
		if err != nil {
			t.Fatal(err)
		}
		var res PreviousImageResult
		if err := val.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := previous(""); res.Found {
		t.Errorf("PreviousImage with no deployments = %+v, want not found", res)
	}

	recordOne := func(d catalog.Deployment) catalog.Deployment {
		t.Helper()
		val, err := env.ExecuteActivity(a.RecordDeployment, d)
		if err != nil {
			t.Fatal(err)
		}
		var got catalog.Deployment
		if err := val.Get(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// RunID and RolloutID come from the calling workflow when left empty, so a
	// retry is recognised.
	d1 := recordOne(catalog.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: catalog.OutcomeSucceeded})
	if d1.RunID == "" || d1.RolloutID == "" || d1.Seq != 1 {
		t.Errorf("recorded %+v; want the workflow's run and rollout IDs", d1)
	}
	if again := recordOne(catalog.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: catalog.OutcomeSucceeded}); again.Seq != 1 {
		t.Errorf("retried record = seq %d, want 1", again.Seq)
	}
	if res := previous("img-v1"); res.Found {
		t.Errorf("PreviousImage with only the current image = %+v, want not found", res)
	}
	recordOne(catalog.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v2", RunID: "run-2", Outcome: catalog.OutcomeSucceeded})
	recordOne(catalog.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v3", RunID: "run-3", Outcome: catalog.OutcomeSucceeded})
	if res := previous("img-v3"); !res.Found || res.ImageID != "img-v2" {
		t.Errorf("PreviousImage(current v3) = %+v, want img-v2", res)
	}
	if res := previous("img-v1"); !res.Found || res.ImageID != "img-v3" {
		t.Errorf("PreviousImage(current v1) = %+v, want img-v3", res)
	}
	if _, err := cat.Revoke(ctx, "img-v2", catalog.RevokeOptions{Reason: "CVE"}); err != nil {
		t.Fatal(err)
	}
	if res := previous("img-v3"); !res.Found || res.ImageID != "img-v1" {
		t.Errorf("PreviousImage(current v3) after revoking v2 = %+v, want img-v1", res)
	}

	_, err = env.ExecuteActivity(a.RecordDeployment, catalog.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: "fine"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrInvalidDeployment || !appErr.NonRetryable() {
		t.Errorf("bad outcome = %v, want a non-retryable %s", err, ErrInvalidDeployment)
	}
}
