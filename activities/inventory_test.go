package activities

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

func TestRecordDeploymentAndPreviousImage(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, id := range []string{"img-v1", "img-v2", "img-v3"} {
		if _, err := cat.Publish(ctx, contract.Image{ID: id, Service: "hello", Builder: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	a := &Activities{Catalog: cat}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)

	// previous returns the image PreviousImage rolls back to, or the type of its error.
	previous := func() (contract.PreviousImageResult, string) {
		t.Helper()
		val, err := env.ExecuteActivity(a.PreviousImage, contract.PreviousImageInput{Service: "hello", Environment: "prod"})
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			if !appErr.NonRetryable() {
				t.Errorf("PreviousImage error %v is retryable", err)
			}
			return contract.PreviousImageResult{}, appErr.Type()
		}
		if err != nil {
			t.Fatal(err)
		}
		var res contract.PreviousImageResult
		if err := val.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res, ""
	}
	if res, errType := previous(); errType != ErrNoPreviousImage {
		t.Errorf("PreviousImage with no deployments = %+v, %q; want %s", res, errType, ErrNoPreviousImage)
	}

	recordOne := func(d contract.Deployment) contract.Deployment {
		t.Helper()
		val, err := env.ExecuteActivity(a.RecordDeployment, d)
		if err != nil {
			t.Fatal(err)
		}
		var got contract.Deployment
		if err := val.Get(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// RunID and RolloutID come from the calling workflow when left empty, so a
	// retry is recognised.
	d1 := recordOne(contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: contract.OutcomeSucceeded})
	if d1.RunID == "" || d1.RolloutID == "" || d1.Seq != 1 {
		t.Errorf("recorded %+v; want the workflow's run and rollout IDs", d1)
	}
	if again := recordOne(contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: contract.OutcomeSucceeded}); again.Seq != 1 {
		t.Errorf("retried record = seq %d, want 1", again.Seq)
	}
	if res, errType := previous(); errType != ErrNoPreviousImage {
		t.Errorf("PreviousImage with only the live image = %+v, %q; want %s", res, errType, ErrNoPreviousImage)
	}
	recordOne(contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v2", RunID: "run-2", Outcome: contract.OutcomeSucceeded})
	recordOne(contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v3", RunID: "run-3", Outcome: contract.OutcomeSucceeded})
	if res, _ := previous(); res != (contract.PreviousImageResult{ImageID: "img-v2", From: "img-v3"}) {
		t.Errorf("PreviousImage (live v3) = %+v, want img-v2 from img-v3", res)
	}
	// A rollback to v1 makes v1 live: v3 is then the previous one.
	recordOne(contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v1", RunID: "run-4", Action: contract.ActionRollback, Outcome: contract.OutcomeSucceeded})
	if res, _ := previous(); res != (contract.PreviousImageResult{ImageID: "img-v3", From: "img-v1"}) {
		t.Errorf("PreviousImage (live v1) = %+v, want img-v3 from img-v1", res)
	}
	recordOne(contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v3", RunID: "run-5", Outcome: contract.OutcomeSucceeded})
	if _, err := cat.Revoke(ctx, "img-v2", catalog.RevokeOptions{Reason: "CVE"}); err != nil {
		t.Fatal(err)
	}
	if res, _ := previous(); res != (contract.PreviousImageResult{ImageID: "img-v1", From: "img-v3"}) {
		t.Errorf("PreviousImage (live v3) after revoking v2 = %+v, want img-v1: a revoked image is skipped", res)
	}

	_, err = env.ExecuteActivity(a.RecordDeployment, contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: "fine"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != contract.ErrInvalidDeployment || !appErr.NonRetryable() {
		t.Errorf("bad outcome = %v, want a non-retryable %s", err, contract.ErrInvalidDeployment)
	}
}
